"""Is the noise model estimated from a real stack right? Matched filters on the stack alone.

Under a correct covariance ``C`` the matched filter of any fixed template ``g`` on noise alone,
``z = gᵀC⁻¹d / sqrt(gᵀC⁻¹g)``, has unit std (the test of ``tests/test_evaluation_ideal_
observer.py`` on simulated noise). Here ``d`` is the Envisat stack without injection and
``g`` the shapes that ``real_injection.py`` injects (creep, 20 km bowl, Mogi source) at
random positions, with their straight-line history and with random +-1 histories (which
the stack's own steady signal hardly projects on), under two covariances estimated from the
stack (:func:`insar_denoise.scoring.noise_estimate.estimate_noise_params`): the simulator's
shared-reference model (independent dates sharing date 0's atmosphere, ``date_cov_mm2``
dropped) and the estimated covariance between dates. A std of ``z`` above 1 means the SNRs
computed under that model are overstated about that many times. Simulated noise stacks of
the same size, dates and spacing give the scatter of the estimate itself.

``engine_noise_maps``: the engine's noise maps (:func:`insar_denoise.inference.significance.
noise_combinations`: residuals of a piecewise-linear fit combined with random signs, which
assumes independent dates) against the least-squares cumulative's own noise std under each
estimated covariance, ``sqrt(aᵀSa / mean_j c_jᵀSc_j)`` (a: the cumulative's weights under the
engine's date variances; c_j: the sign combinations; S: the date covariance); on simulated
stacks also under their true noise. JSON out::

    python benchmarks/noise_calibration.py -o experiments/benchmarks/noise_calibration.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from real_injection import DATA, SOURCES, load_stack, pixel_spacing_m, signals  # benchmarks/

from insar_denoise.inference.engine import times_in_days
from insar_denoise.inference.stack_runner import scene_date_variances
from insar_denoise.scoring.ideal_observer import NoiseCovariance, relative_series
from insar_denoise.scoring.noise_estimate import (
    estimate_noise_params,
    shared_reference_covariance,
)
from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.trust.date_correlation import CROP_PX, noise_map_ratio


def projections(stack, ok, dem, spacing, units, histories) -> dict[str, dict[str, float]]:
    """Per covariance (shared reference / estimated) and template set: std and mean of the
    matched filters ``z`` on ``stack`` and the median SNR of the unit templates."""
    noise = estimate_noise_params(stack, ok, spacing, dem)
    d = torch.nan_to_num(relative_series(np.where(ok, stack, 0.0)))
    out = {}
    for label, params in (
        ("shared_reference", dataclasses.replace(noise, date_cov_mm2=None)),
        ("estimated", noise),
    ):
        cov = NoiseCovariance(ok, dem, params)
        for source, us in units.items():
            for kind, hist in histories.items():
                z, snr = [], []
                for u, h in zip(us, hist, strict=True):
                    g = relative_series(h[:, None, None] * u)
                    cg = cov.apply_inverse(g)
                    q = float((cg * g).sum())
                    z.append(float((cg * d).sum()) / np.sqrt(q))
                    snr.append(np.sqrt(q))
                out[f"{label}|{source}|{kind}"] = {
                    "z_std": float(np.std(z)),
                    "z_mean": float(np.mean(z)),
                    "unit_snr_median": float(np.median(snr)),
                }
    return out


#: sign combinations drawn for the engine's noise maps' variance
N_MAPS = 2000


def engine_check(stack, ok, dem, spacing, days, true_noise=None) -> dict[str, float]:
    """:func:`~insar_denoise.trust.date_correlation.noise_map_ratio` under the estimated
    covariance, the shared-reference model fitted to the same stack and (simulated stacks)
    the true one."""
    noise = estimate_noise_params(stack, ok, spacing, dem)
    date_var = scene_date_variances(np.where(ok, stack, 0.0).astype(np.float32), CROP_PX)
    out = {"estimated": noise_map_ratio(days, noise.date_cov_mm2[0].numpy(), date_var, N_MAPS)}
    for label, params in (("shared_reference", noise), ("true", true_noise)):
        if params is not None:
            cov = shared_reference_covariance(params.turb_std_mm[0].double().numpy())
            out[label] = noise_map_ratio(days, cov, date_var, N_MAPS)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA, help="folder: interferograms/, dem.tif")
    p.add_argument("--n", type=int, default=40, help="template positions per source")
    p.add_argument("--sims", type=int, default=3, help="simulated noise stacks")
    p.add_argument("-o", "--output", type=Path, default=Path("noise_calibration.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    ds, _ = load_stack(args.data)
    days = times_in_days(ds["time"].values)
    disp = ds["displacement"].transpose("time", "y", "x").values.astype(np.float64)
    ok = np.isfinite(disp).all(0)
    if "valid" in ds:
        ok &= ds["valid"].values.astype(bool)
    dem = np.nan_to_num(ds["dem"].values.astype(np.float64))
    spacing, n_dates = pixel_spacing_m(ds), disp.shape[0]
    units = {s: signals(s, args.n, ok.shape, days, spacing, 100 + k) for k, s in enumerate(SOURCES)}
    rng = np.random.default_rng(1)
    flips = [np.r_[0.0, rng.choice([-1.0, 1.0], n_dates - 1)] for _ in range(args.n)]
    histories = {"straight_line": [days / days[-1]] * args.n, "random_signs": flips}
    report = {"data": str(args.data), "dates": n_dates, "shape_px": list(ok.shape)}
    report["real"] = projections(disp, ok, dem, spacing, units, histories)
    report["engine_noise_maps"] = {"real": engine_check(disp, ok, dem, spacing, days)}
    cfg = SimConfig(
        size=int(max(ok.shape)),
        n_dates=n_dates,
        pixel_spacing_m=spacing,
        source_probs={"none": 1.0},
        unwrap_prob=0.0,
        holes_prob=0.0,
    )
    sims = simulate_batch(cfg, args.sims, generator=torch.Generator().manual_seed(5))
    for i in range(args.sims):
        stack = sims.displacement[i].numpy()[:, : ok.shape[0], : ok.shape[1]].astype(np.float64)
        sim_dem = sims.dem[i].numpy()[: ok.shape[0], : ok.shape[1]].astype(np.float64)
        report[f"simulated_{i}"] = projections(stack, ok, sim_dem, spacing, units, histories)
        report["engine_noise_maps"][f"simulated_{i}"] = engine_check(
            stack, ok, sim_dem, spacing, days, sims.noise.example(i)
        )
    report["wall_s"] = time.perf_counter() - start
    for key, rec in report["real"].items():
        print(f"real {key:45s} z std {rec['z_std']:6.2f}  unit SNR {rec['unit_snr_median']:.3f}")
    for key, rec in report["engine_noise_maps"].items():
        print(f"engine noise maps, {key}: " + json.dumps({k: round(v, 2) for k, v in rec.items()}))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
