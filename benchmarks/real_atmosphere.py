"""Real atmosphere: the shipped model on a real Envisat network with and without a 3 mm fault.

The 17 real interferograms of ``tests/data/real_envisat_nsw`` (PyRate test data, 13 dates,
72 x 47 px at ~90 m) hold real atmosphere and no known deformation: a good denoiser leaves
little there (99th percentile of |output|). Then simulated Okada faults (3 mm max |LOS| over
the stack, creeping linearly in time) are added to the same stack: the output
should correlate with the added signal. Everything is de-planed (the model's output is
defined up to a plane). Compared with doing nothing (raw last - first) and the classical
``best`` correction on the same stacks. The model's calibrated uncertainty bands (``run
--uncertainty``) are scored on the same stacks: the share of pixels whose truth (0 without
a fault, the added fault otherwise: the real atmosphere is the noise) lies within +/-1 sigma
and within the 95 % band; calibrated on simulated single windows, here on real atmosphere
and a 13-date stack.

    python benchmarks/real_atmosphere.py   # -> experiments/benchmarks/real_atmosphere.{json,png}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.engine import times_in_days
from insar_denoise.io.layouts import load_inputs
from insar_denoise.models import load_model
from insar_denoise.models.normalization import deplane_np
from insar_denoise.scoring import metrics
from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.trust.uncertainty import predict_with_uncertainty

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "real_envisat_nsw"
OUT = ROOT / "experiments" / "benchmarks"
METHODS = ("model", "raw", "best")


def fault_signals(n: int, shape: tuple[int, int], days: np.ndarray, amp_mm: float, seed: int):
    """``(n, T, H, W)`` Okada fault creep, linear in the real acquisition times, with max
    |cumulative LOS| = ``amp_mm``."""
    cfg = SimConfig(size=int(max(shape)), n_dates=2, amplitude_mm=(1.0, 1.0), source_margin=0.3)
    batch = simulate_batch(
        cfg.with_source("okada"), n, generator=torch.Generator().manual_seed(seed)
    )
    cum = batch.cumulative.numpy()[:, : shape[0], : shape[1]].astype(np.float64)
    cum *= amp_mm / np.abs(cum).reshape(n, -1).max(1)[:, None, None]
    return cum[:, None] * (np.asarray(days, np.float64) / float(days[-1]))[None, :, None, None]


def run(ds: xr.Dataset, model, method: str) -> np.ndarray:
    res = denoise_dataset(ds, model, method=method, progress=False, return_noise=False)
    return np.asarray(res["cumulative_deformation"].values, np.float64)


def band_errors(ds: xr.Dataset, model, est: np.ndarray, truth: np.ndarray, ok: np.ndarray):
    """``(|error| / sigma, |error| / 95 % half-width, sigma)`` over ``ok`` of the model's
    de-planed estimate ``est`` against the de-planed ``truth``."""
    cum, sigma, half = predict_with_uncertainty(
        ds, model, estimate=ds["dem"].copy(data=est.astype(np.float32)), augment=False
    )
    err = np.abs(deplane_np(np.where(ok, cum.values, 0.0).astype(np.float64), ok) - truth)[ok]
    return err / sigma.values[ok], err / half.values[ok], sigma.values[ok]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10, help="number of simulated faults")
    p.add_argument("--amplitude", type=float, default=3.0, help="mm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", type=Path, default=OUT / "real_atmosphere.json")
    args = p.parse_args(argv)
    start = time.perf_counter()
    ifgs = sorted(str(f) for f in (DATA / "interferograms").glob("*.tif"))
    ds, layout = load_inputs(ifgs, dem=DATA / "dem.tif")
    ds = ds.load()
    model = load_model("default")
    days = times_in_days(ds["time"].values)
    disp = ds["displacement"].transpose("time", "y", "x").values.astype(np.float64)
    shape = disp.shape[1:]
    ok0 = np.isfinite(disp).all(0)
    base = {m: run(ds, model, m) for m in METHODS}
    ok = ok0 & np.all([np.isfinite(v) for v in base.values()], axis=0)
    quiet = {
        m: metrics.false_positive_level(np.abs(deplane_np(v.astype(np.float64), ok))[ok])
        for m, v in base.items()
    }
    bands = {"no_signal": [band_errors(ds, model, base["model"], np.zeros(shape), ok)]}
    bands["with_fault"] = []
    signals = fault_signals(args.n, shape, days, args.amplitude, args.seed)
    corr: dict[str, list[float]] = {m: [] for m in METHODS}
    gain: dict[str, list[float]] = {m: [] for m in METHODS}
    example = None
    for i, sig in enumerate(signals):
        ds_i = ds.copy()
        ds_i["displacement"] = ds["displacement"].transpose("time", "y", "x") + sig
        truth = deplane_np((sig[-1] - sig[0]).astype(np.float64), ok)
        for m in METHODS:
            est = run(ds_i, model, m)
            est_d = deplane_np(np.where(ok, est, 0.0).astype(np.float64), ok)
            corr[m].append(metrics.pearson(est_d, truth, ok))
            diff = deplane_np(np.asarray(np.where(ok, est - base[m], 0.0), np.float64), ok)
            gain[m].append(float(np.nansum(diff * truth) / np.nansum(truth * truth)))
            if m == "model":
                bands["with_fault"].append(band_errors(ds_i, model, est, truth, ok))
            if i == 0 and m == "model":
                example = (
                    truth,
                    deplane_np(
                        np.asarray(
                            np.where(ok, disp[-1] + sig[-1] - disp[0] - sig[0], 0), np.float64
                        ),
                        ok,
                    ),
                    est_d,
                )
    report = {
        "data": "tests/data/real_envisat_nsw (17 Envisat interferograms, PyRate test data)",
        "layout": layout,
        "dates": int(disp.shape[0]),
        "shape_px": list(shape),
        "model_id": model.metadata.get("model_id"),
        "examples_seen": model.metadata.get("examples_seen"),
        "no_signal_p99_abs_mm": quiet,
        "added_fault_amplitude_mm": args.amplitude,
        "n_faults": args.n,
        "corr_median": {m: float(np.nanmedian(v)) for m, v in corr.items()},
        "corr_per_fault": corr,
        "gain_median": {m: float(np.nanmedian(v)) for m, v in gain.items()},
        "uncertainty_coverage": {
            k: {
                "within_1sigma": float(np.mean(np.concatenate([b[0] for b in v]) <= 1.0)),
                "within_95_band": float(np.mean(np.concatenate([b[1] for b in v]) <= 1.0)),
                "mean_sigma_mm": float(np.mean(np.concatenate([b[2] for b in v]))),
            }
            for k, v in bands.items()
        },
        "wall_s": round(time.perf_counter() - start, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    figure(base, ok, example, args.output.with_suffix(".png"), args.amplitude)
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "no_signal_p99_abs_mm",
                    "corr_median",
                    "gain_median",
                    "uncertainty_coverage",
                )
            }
        )
    )
    return 0


def figure(base, ok, example, path: Path, amp: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth, raw_sig, model_sig = example
    panels = [
        (
            "real stack: raw last - first",
            deplane_np(np.asarray(np.where(ok, base["raw"], 0), np.float64), ok),
        ),
        (
            "real stack: model output",
            deplane_np(np.asarray(np.where(ok, base["model"], 0), np.float64), ok),
        ),
        (
            "real stack: classical best",
            deplane_np(np.asarray(np.where(ok, base["best"], 0), np.float64), ok),
        ),
        (f"added {amp:g} mm fault (truth)", truth),
        ("stack + fault: raw", raw_sig),
        ("stack + fault: model output", model_sig),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(11, 7.5))
    for ax, (title, img) in zip(axes.ravel(), panels, strict=True):
        lim = max(amp, float(np.nanpercentile(np.abs(img), 99)))
        im = ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        fig.colorbar(im, ax=ax, label="LOS (mm)", shrink=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
