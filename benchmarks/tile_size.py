"""Which inference tile and overlap? Quality and time of ``run`` on scenes larger than a tile.

The model is trained on 64 px crops and normalises each tile (plane removed per date, robust
amplitude scale): on a larger tile it meets long-wavelength atmosphere it never saw. Here
scenes of ``--size`` px (Okada source of ``--amplitude`` mm, turbulence ``--turbulence`` mm
per date, the rest of the training distribution) are denoised whole with several
``(tile, overlap)`` pairs; RMSE and correlation of the de-planed cumulative map against the
de-planed truth are reported next to the map of zeros, with the wall time per pixel and
window (same thread count for all).

    python benchmarks/tile_size.py   # -> experiments/benchmarks/tile_size.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from insar_denoise.inference import denoise_dataset
from insar_denoise.io.scene import scene_dataset
from insar_denoise.models import load_model
from insar_denoise.models.normalization import deplane
from insar_denoise.scoring import metrics
from insar_denoise.synth import SimConfig, simulate_scene

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
PAIRS = ((64, 16), (64, 32), (96, 32), (128, 32), (128, 88), (256, 32), (256, 88), (512, 88))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--size", type=int, default=384)
    p.add_argument("--n", type=int, default=6, help="scenes")
    p.add_argument("--amplitude", type=float, default=10.0)
    p.add_argument("--turbulence", type=float, default=3.0)
    p.add_argument("--pairs", default=",".join(f"{t}/{o}" for t, o in PAIRS))
    p.add_argument("--output", type=Path, default=OUT / "tile_size.json")
    args = p.parse_args(argv)
    model = load_model(args.model)
    pairs = [tuple(int(v) for v in s.split("/")) for s in args.pairs.split(",")]
    std = float(args.turbulence)
    cfg = SimConfig(
        size=args.size, n_dates=int(model.metadata["window"]), turbulence_std_mm=(std, std)
    )
    rows: dict[str, dict[str, list[float]]] = {f"{t}/{o}": {} for t, o in pairs}
    zero = []
    for i in range(args.n):
        scene = simulate_scene(cfg, 100 + i, source="okada", amplitude_mm=args.amplitude)
        ds = scene_dataset(scene)
        truth = torch.from_numpy(scene["cumulative"])[None]
        for tile, overlap in pairs:
            start = time.perf_counter()
            out = denoise_dataset(
                ds, model, tile=tile, overlap=overlap, progress=False, return_noise=False
            )
            wall = time.perf_counter() - start
            est = torch.from_numpy(np.asarray(out["cumulative_deformation"].values, np.float32))[
                None
            ]
            ok = torch.isfinite(est) & torch.isfinite(truth)
            e = deplane(torch.nan_to_num(est), ok)[0].numpy()
            t = deplane(torch.nan_to_num(truth), ok)[0].numpy()
            m = ok[0].numpy()
            row = rows[f"{tile}/{overlap}"]
            row.setdefault("rmse_mm", []).append(metrics.rmse(e, t, m))
            row.setdefault("corr", []).append(metrics.pearson(e, t, m))
            row.setdefault("us_per_px_window", []).append(wall / m.size * 1e6)
            if tile == pairs[0][0] and overlap == pairs[0][1]:
                zero.append(metrics.rmse(np.zeros_like(t), t, m))
        print(f"scene {i}: " + ", ".join(f"{k} {v['rmse_mm'][-1]:.2f}" for k, v in rows.items()))
    summary = {
        k: {
            "rmse_mm": float(np.sqrt(np.mean(np.square(v["rmse_mm"])))),
            "corr_median": float(np.median(v["corr"])),
            "us_per_px_window": float(np.mean(v["us_per_px_window"])),
        }
        for k, v in rows.items()
    }
    report = {
        "model_id": model.metadata.get("model_id"),
        "size_px": args.size,
        "n_scenes": args.n,
        "amplitude_mm": args.amplitude,
        "turbulence_std_mm": std,
        "threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "zero_rmse_mm": float(np.sqrt(np.mean(np.square(zero)))),
        "pairs": summary,
        "per_scene": rows,
    }
    for k, v in summary.items():
        print(
            f"tile/overlap {k:>7}: RMSE {v['rmse_mm']:.2f} mm, median r {v['corr_median']:.2f}, "
            f"{v['us_per_px_window']:.1f} us/px/window"
        )
    print(f"map of zeros: RMSE {report['zero_rmse_mm']:.2f} mm")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
