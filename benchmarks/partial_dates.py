"""Benchmark v2's scenes with a block missing on one date: the gate must not test guesses.

A real stack often loses part of one acquisition (a burst, a decorrelated town, the edge of
a frame). Each scene (its design draw, as ``evaluate`` makes it) loses a ``--block`` px
square on its last (or first) date, centred on its largest offset (a scene without
deformation: the centre), and is denoised with the shipped model. Per scene: RMSE, gain
and r of the model and RMSE of the all-zero map, offset-free as ``evaluate`` scores, on
the pixels the intact scene compares (the block included where the output is finite). A
**failure** is an output at least 1 mm and 1.5× worse than the zero map, as in
``fresh_draws.py``. Session 40: a block missing on the last of 9 dates opened the gate on
its edge (`shifted` bowl 32, 0.32 -> 5.69 mm).

    python benchmarks/partial_dates.py \\
        --snr-from experiments/benchmarks/evaluate_v2_bank/metrics.json \\
        --output experiments/benchmarks/partial_dates.json [--date last] [--dates 9 18]

The JSON is rewritten after every scene; ``--resume`` skips the scenes it already holds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from fresh_draws import design_snr, output_record, run_and_write, run_shipped, summary


def block_slices(truth: np.ndarray, size: int) -> tuple[slice, slice]:
    """A ``size`` px square centred on the largest offset of ``truth`` from its median
    (the centre when it is flat), shifted to lie inside the scene."""
    h, w = truth.shape
    offset = np.abs(np.nan_to_num(truth - np.nanmedian(truth)))
    cy, cx = np.unravel_index(int(np.argmax(offset)), offset.shape)
    if offset.max() == 0.0:
        cy, cx = h // 2, w // 2
    y0 = int(np.clip(cy - size // 2, 0, max(0, h - size)))
    x0 = int(np.clip(cx - size // 2, 0, max(0, w - size)))
    return slice(y0, y0 + size), slice(x0, x0 + size)


def score_scene(split: str, index: int, date: str, block: int, size: int) -> dict[str, Any]:
    """Scores of the shipped model on one design scene with a block missing on ``date``."""
    import torch

    torch.set_num_threads(1)
    from insar_denoise.evaluation.referee_scenes import design, simulate

    spec = design(84, 0, split)[index]
    batch, ds = simulate(spec, split, size)
    truth = batch.cumulative[0].numpy().astype(np.float64)
    rows, cols = block_slices(truth, block)
    t = 0 if date == "first" else spec.n_dates - 1
    values = ds["displacement"].values.copy()
    values[t, rows, cols] = np.nan
    ds["displacement"].values = values
    t0 = time.perf_counter()
    res = run_shipped(ds, spec.n_dates)
    cum = res["cumulative_deformation"].values
    return {
        "split": split,
        "index": index,
        "draw": 0,
        "date": date,
        "block": [rows.start, rows.stop, cols.start, cols.stop],
        "block_output_finite": float(np.isfinite(cum[rows, cols]).mean()),
        "source_type": spec.source_type,
        "n_dates": spec.n_dates,
        **output_record(res, truth, batch.valid[0].numpy()),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr-from", type=Path, required=True, help="evaluate's metrics.json")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--date", choices=["last", "first"], default="last")
    p.add_argument("--block", type=int, default=48, help="side (px) of the missing square")
    p.add_argument("--dates", type=int, nargs="+", help="only stacks of these lengths")
    p.add_argument("--splits", nargs="+", default=["in", "shifted"])
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    metrics = json.loads(args.snr_from.read_text())
    snr = design_snr(metrics)
    lengths = {
        (s, int(r["index"])): int(r["n_dates"])
        for s, b in metrics["splits"].items()
        for r in b["scenes"]
    }
    rows: list[dict[str, Any]] = []
    if args.resume and args.output.exists():
        rows = json.loads(args.output.read_text())["scenes"]
    done = {(r["split"], r["index"]) for r in rows}
    jobs = [
        (s, i)
        for (s, i), _ in sorted(snr.items(), key=lambda kv: -kv[1])
        if s in args.splits
        and (s, i) not in done
        and (not args.dates or lengths[(s, i)] in args.dates)
    ]
    print(f"{len(jobs)} scenes to run ({len(done)} held)", flush=True)
    jobs = [(s, i, args.date, args.block, args.size) for s, i in jobs]

    def report(rows_: list[dict[str, Any]]) -> dict[str, Any]:
        square = {"date": args.date, "block_px": args.block}
        return {**square, "scenes": rows_, "summary": summary(rows_)}

    run_and_write(score_scene, jobs, args.workers, snr, rows, args.output, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
