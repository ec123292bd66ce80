"""Paired check of the single-date unwrapping step on fresh Benchmark v2 scenes.

    python benchmarks/unwrapping_paired.py --seed 1 --split shifted   # ~25 min on one thread

Scenes of another seed than the benchmark's (nobody tuned on them), stacks of at least
``unwrapping.MIN_DATES`` dates, each run through the engine with ``fix_unwrapping`` on and
off; prints and writes the per-scene r, gain and RMSE against the truth (offset-free, as
``evaluate``) and the zero map's RMSE, and the medians of the paired differences.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.evaluation.referee_scoring import offset_free_scores
from insar_denoise.inference.engine import denoise_dataset
from insar_denoise.inference.unwrapping import MIN_DATES
from insar_denoise.models import load_model

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"


def run_scene(spec, split: str, size: int, model) -> dict:
    """Scores of one scene with the step on and off."""
    batch, ds = simulate(spec, split, size)
    truth = batch.cumulative[0].numpy()
    valid = batch.valid[0].numpy()
    row = {"index": spec.index, "n_dates": spec.n_dates, "source_type": spec.source_type}
    for on in (True, False):
        out = denoise_dataset(ds, model, progress=False, fix_unwrapping=on)
        cum = out["cumulative_deformation"].values
        key = "on" if on else "off"
        if spec.source_type == "none":
            ok = valid & np.isfinite(cum)
            row[key] = {"p99_mm": float(np.percentile(np.abs(cum[ok] - np.median(cum[ok])), 99))}
        else:
            row[key] = offset_free_scores(cum, truth, valid)
        if on:
            row["note"] = str(out.attrs.get("insar_denoise_unwrapping", ""))[:200]
    if spec.source_type != "none":
        row["zero_rmse_mm"] = offset_free_scores(np.zeros_like(truth), truth, valid)["rmse_mm"]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--split", default="shifted", choices=("in", "shifted"))
    p.add_argument("--n", type=int, default=84)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("-o", "--output", type=Path, default=None)
    args = p.parse_args()
    out = args.output or OUT / f"unwrapping_paired_{args.split}_seed{args.seed}.json"
    model = load_model("default")
    specs = [s for s in design(args.n, args.seed, args.split) if s.n_dates >= MIN_DATES]
    rows, t0 = [], time.perf_counter()
    for spec in specs:
        row = run_scene(spec, args.split, args.size, model)
        rows.append(row)
        if "rmse_mm" in row["on"]:
            off, on = row["off"], row["on"]
            print(
                f"{spec.index:3d} T{spec.n_dates:2d} {spec.source_type:13s} rmse "
                f"{off['rmse_mm']:.2f} -> {on['rmse_mm']:.2f} (zero {row['zero_rmse_mm']:.2f}) "
                f"gain {off['gain']:.2f} -> {on['gain']:.2f}",
                flush=True,
            )
    sig = [r for r in rows if "rmse_mm" in r["on"]]
    diff = [r["on"]["rmse_mm"] - r["off"]["rmse_mm"] for r in sig]
    summary = {
        "seed": args.seed,
        "split": args.split,
        "n_scenes": len(rows),
        "n_signal": len(sig),
        "median_rmse_off_mm": float(np.median([r["off"]["rmse_mm"] for r in sig])),
        "median_rmse_on_mm": float(np.median([r["on"]["rmse_mm"] for r in sig])),
        "median_rmse_change_mm": float(np.median(diff)),
        "detected_r_0_7": {k: int(sum(r[k]["r"] >= 0.7 for r in sig)) for k in ("on", "off")},
        "better": int(sum(d < -0.05 for d in diff)),
        "worse": int(sum(d > 0.05 for d in diff)),
        "null_p99_mm": {
            k: float(max([r[k]["p99_mm"] for r in rows if "p99_mm" in r[k]] or [0.0]))
            for k in ("on", "off")
        },
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(summary, indent=1))
    out.write_text(json.dumps({"summary": summary, "scenes": rows}, indent=1))


if __name__ == "__main__":
    main()
