"""The fault-trace search on fresh Benchmark v2 scenes of every kind: which lines pass?

``inference/fault_trace.py`` tests the least-squares cumulative only, so this script needs no
network: for every scene of the given seeds (both splits, 192 px, T = 9/18/36/72) it builds
the least-squares cumulative as the engine does (scene date variances with the shipped
model's crop, its history segments), runs the line search and records the best line's
``z``, the largest share of its step carried by one quarter of the line, and whether it
passes (``z`` above its class's threshold, as ``search_broken`` returns it, and the share at
most ``MAX_QUARTER_SHARE``). Summary per split and source type: the share of scenes with a
passing line (false lines on no-deformation and non-creep scenes; recall on creep scenes,
split by amplitude). JSON out.

    python benchmarks/fault_trace_lines.py --seeds 1 2 \
        -o experiments/benchmarks/fault_trace_lines.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import fault_trace as ft
from insar_denoise.inference.planning import times_in_days
from insar_denoise.inference.significance import cumulative_noise
from insar_denoise.inference.stack_runner import scene_date_variances
from insar_denoise.models import load_model


def model_weighting() -> tuple[int, int]:
    """The shipped model's crop (for the scene date variances) and history segments."""
    meta = load_model("default").metadata
    return int(meta.get("train_crop_px", meta["default_tile"])), int(meta.get("segments", 4))


def stack_cumulative(ds, crop: int, segments: int) -> np.ndarray:
    """The least-squares cumulative of a scene's stack, as the engine builds it (float64)."""
    disp = ds["displacement"].values.astype(np.float32)
    days = times_in_days(ds["time"].values)
    var = scene_date_variances(disp, crop)
    return np.asarray(cumulative_noise(disp - disp[:1], days, var, segments)[1], np.float64)


def best_line(ds, crop: int, segments: int) -> dict:
    """The best line of one scene: ``z``, largest quarter share, ``passes``."""
    p = stack_cumulative(ds, crop, segments)
    ok = np.isfinite(p)
    p = ft.without_relief(p - np.median(p[ok]), ok, ds["dem"].values)  # as find_trace reads it
    z, angle, column, w, threshold = ft.search_broken(p, ok)
    share = float(ft.quarter_shares(p, ok, angle, column, w).max())
    return dict(
        z=round(z, 3),
        quarter_share=round(share, 3),
        passes=bool(z > threshold and share <= ft.MAX_QUARTER_SHARE),
        passes_z_only=bool(z > threshold),
    )


def summarise(rows: list[dict]) -> dict:
    """Share of scenes with a passing line, per split and source type (creep by amplitude)."""
    out: dict = {}
    for split in sorted({r["split"] for r in rows}):
        groups: dict[str, list] = {}
        for r in rows:
            if r["split"] != split:
                continue
            key = r["source"]
            if key == "creep":
                key = "creep_ge_5mm" if r["amplitude_mm"] >= 5 else "creep_lt_5mm"
            groups.setdefault(key, []).append(r)
        out[split] = {
            k: dict(
                n=len(v),
                with_line=float(np.mean([r["passes"] for r in v])),
                with_line_z_only=float(np.mean([r["passes_z_only"] for r in v])),
            )
            for k, v in sorted(groups.items())
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n", type=int, default=84, help="scenes per split in the design")
    ap.add_argument("-o", "--output", type=Path, default=Path("fault_trace_lines.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    crop, segments = model_weighting()
    rows = []
    for seed in args.seeds:
        for split in ("in", "shifted"):
            for spec in design(args.n, seed, split):
                ds = simulate(spec, split, 192)[1]
                row = dict(seed=seed, split=split, index=spec.index, source=spec.source_type)
                row.update(amplitude_mm=float(spec.amplitude_mm), n_dates=len(ds["time"]))
                row.update(best_line(ds, crop, segments))
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = dict(
        threshold=ft.THRESHOLD,
        max_quarter_share=ft.MAX_QUARTER_SHARE,
        seeds=args.seeds,
        summary=summarise(rows),
        scenes=rows,
    )
    print(json.dumps(result["summary"], indent=1))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
