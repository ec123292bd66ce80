"""The gain target's reach on real noise: the Cramér-Rao bound of each injected source's
geometry in the Envisat stack, carried to the gain and r of its cumulative map.

``benchmarks/real_injection.py`` injects creep, a 20 km bowl and Mogi sources into the
Envisat NSW stack and reads the Model v2 gain target on the injections at ideal-observer
SNR >= 20 (under the noise model estimated from the stack, covariance between dates
included). This script draws the same injections (same seeds, so the same geometry),
computes the bound of :mod:`insar_denoise.evaluation.gain_bound` for each under that noise
model (family and linear history given), and puts the chance that an efficient estimator
lands inside the target beside the model's outcome read from ``--model-from`` (the JSON
``real_injection.py`` wrote; matched by cell and SNR). About a minute.

    python benchmarks/real_injection_reach.py \\
        --model-from experiments/benchmarks/real_injection_s44.json \\
        --output experiments/benchmarks/real_injection_reach.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import real_injection as ri  # benchmarks/

from insar_denoise.evaluation import gain_bound as gb
from insar_denoise.evaluation.report_common import json_ready
from insar_denoise.inference.engine import times_in_days
from insar_denoise.scoring.noise_estimate import estimate_noise_params


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ri.DATA)
    p.add_argument("--model-from", type=Path, required=True, help="real_injection.py's JSON")
    p.add_argument("--amplitudes", type=float, nargs="+", default=[2.0, 5.0, 10.0, 20.0])
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--output", type=Path, default=ri.OUT / "real_injection_reach.json")
    args = p.parse_args(argv)
    ds, _ = ri.load_stack(args.data)
    days = times_in_days(ds["time"].values)
    disp = ds["displacement"].transpose("time", "y", "x").values
    shape = tuple(disp.shape[1:])
    spacing = ri.pixel_spacing_m(ds)
    ok = np.isfinite(disp).all(0)
    if "valid" in ds:
        ok &= ds["valid"].values.astype(bool)
    dem = np.nan_to_num(ds["dem"].values.astype(np.float64))
    noise = estimate_noise_params(disp, ok, spacing, dem)
    history = days / days[-1]
    model = json.loads(args.model_from.read_text())["model_at_snr_20"]["injections"]
    rows: list[dict[str, Any]] = []
    for k, source in enumerate(ri.SOURCES):
        units, batch, cfg = ri.signal_batch(source, args.n, shape, spacing, args.seed + k)
        for i in range(args.n):
            unit = gb.source_scene(batch, cfg, i)  # its geometry; the scene is re-cut below
            for amp in args.amplitudes:
                scene = gb.fit_scale(
                    gb.SourceScene(
                        source_name=unit.source_name,
                        params=unit.params,
                        scale_mm=1.0,
                        history=history,
                        truth=amp * units[i],
                        valid=ok,
                        dem=dem,
                        size=int(cfg.size),
                        pixel_spacing_m=float(cfg.pixel_spacing_m),
                        poisson=float(cfg.poisson),
                    )
                )
                names, d = gb.jacobian(scene)
                fisher = gb.fisher_information(scene, noise, d)
                snr = float(np.sqrt(fisher[-1, -1]) * scene.scale_mm)
                if snr < ri.SNR_TARGET:
                    continue
                cov = np.linalg.pinv(fisher)
                row = {
                    "cell": f"{source}|{amp:g}",
                    "position": i,
                    "snr": snr,
                    "gain_std_amplitude_only": 1.0 / snr,
                    "gain_std": gb.gain_std(scene, names, d, cov),
                    "param_std": dict(
                        zip(names, np.sqrt(np.clip(np.diag(cov), 0, None)).tolist(), strict=True)
                    ),
                    **gb.reach(scene, d, cov, draws=args.draws, seed=i),
                }
                match = [
                    s
                    for s in model
                    if s["cell"] == row["cell"] and abs(s["snr"] - snr) < 1e-3 * snr
                ]
                if match:
                    s = match[0]
                    row["model"] = {key: s[key] for key in ("gain", "r", "response", "response_r")}
                    row["model_inside"] = gb.in_gain_target(s["gain"], s["r"])
                    row["model_inside_response"] = gb.in_gain_target(s["response"], s["response_r"])
                rows.append(row)
                print(
                    f"{row['cell']:14s} pos {i}  SNR {snr:6.1f}  gain std 1/SNR {1 / snr:.3f} "
                    f"CRLB {row['gain_std']:.3f}  reach {row['inside']:.2f}  "
                    f"model {row.get('model_inside')} / "
                    f"response {row.get('model_inside_response')}",
                    flush=True,
                )
    summary = {
        "n": len(rows),
        "matched_to_model": sum("model" in r for r in rows),
        "expected_inside": float(sum(r["inside"] for r in rows)),
        "all_inside_probability": float(np.prod([r["inside"] for r in rows])),
        "model_inside": sum(bool(r.get("model_inside")) for r in rows),
        "model_inside_response": sum(bool(r.get("model_inside_response")) for r in rows),
    }
    report = {"kind": "real_injection_reach", "summary": summary, "injections": rows}
    args.output.write_text(json.dumps(json_ready(report), indent=1, allow_nan=False))
    print(json.dumps(json_ready(summary), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
