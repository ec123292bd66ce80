"""Uncertainty floors where the significance gate opens everywhere (session 21).

A gate over three quarters of the scene opens everywhere (``significance.WHOLE_SCENE_SHARE``)
and the network's map is returned whole. This script re-draws strong Benchmark v2 sources
with other stack lengths, runs the engine, and for every stack whose gate opened reports the
factors of the cumulative's noise std (1 px) that would hold 68.3 % / 95.4 % of the deforming
pixels' errors (|truth| > 1 mm, medians removed) and the coverage of the bands the engine
writes (``uncertainty``, ``uncertainty_95``). The ``fit`` stacks set
``significance.BAND_OPEN_68`` / ``BAND_OPEN_95`` (the 0.25 grid above their pooled factors);
the ``check`` stacks are other lengths of the same sources.

    python benchmarks/open_gate_bands.py   # ~5 min -> experiments/benchmarks/open_gate_bands.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import torch

import insar_denoise.inference.stack_path as sp
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset
from insar_denoise.models import load_model

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
#: ``(split, scene) -> stack lengths``: the four T = 72 scenes whose gate opened on Benchmark
#: v2 and the same strong sources re-drawn with other stack lengths (``FIT``), then others
#: again (``CHECK``)
FIT_DATES = {
    ("in", 55): (72, 48, 60),
    ("in", 24): (18, 36, 60),
    ("shifted", 27): (72, 36, 48),
    ("shifted", 11): (72,),
    ("shifted", 63): (72, 18, 48, 60),
}
CHECK_DATES = {
    ("in", 55): (40, 54, 66),
    ("in", 24): (30, 44),
    ("shifted", 27): (44, 56, 66),
    ("shifted", 11): (54, 66),
    ("shifted", 63): (54, 66),
}


def stacks(dates: dict) -> list[tuple[str, int, int]]:
    """``(split, scene, dates)`` for every stack length of every source."""
    return [(split, index, t) for (split, index), lengths in dates.items() for t in lengths]


def run_stack(model, split: str, index: int, n_dates: int) -> dict:
    """One stack through the engine: whether its gate opened, the deforming pixels' error
    over the noise std (quantiles) and the coverage of the written bands."""
    spec = {s.index: s for s in design(84, 0, split)}[index]
    if spec.n_dates != n_dates:
        spec = dataclasses.replace(spec, n_dates=n_dates, gap_dates=())
    batch, ds = simulate(spec, split, 192)
    seen: dict = {}
    floors = sp.band_floors

    def keep(gate_map, noise_sd, opened=False):
        seen.update(opened=opened, noise_sd=np.asarray(noise_sd))
        return floors(gate_map, noise_sd, opened=opened)

    sp.band_floors = keep
    try:
        res = denoise_dataset(ds, model, progress=False, return_noise=False)
    finally:
        sp.band_floors = floors
    out = np.asarray(res["cumulative_deformation"].values, np.float64)
    u68 = np.asarray(res["uncertainty"].values)
    u95 = np.asarray(res["uncertainty_95"].values)
    truth = batch.cumulative[0].numpy().astype(np.float64)
    noise_sd = seen.get("noise_sd", np.full(out.shape, np.nan))
    ok = batch.valid[0].numpy() & np.isfinite(out) & np.isfinite(u68) & np.isfinite(noise_sd)
    err = (out - np.median(out[ok])) - (truth - np.median(truth[ok]))
    deforming = ok & (np.abs(truth - np.median(truth[ok])) > 1.0)
    ratio = np.abs(err[deforming]) / noise_sd[deforming]
    return {
        "split": split,
        "scene": index,
        "dates": n_dates,
        "source": spec.source_type,
        "opened": bool(seen.get("opened", False)),
        "rmse_mm": float(np.sqrt(np.mean(err[ok] ** 2))),
        "factor_68": float(np.quantile(ratio, 0.683)),
        "factor_95": float(np.quantile(ratio, 0.954)),
        "cover_68": float(np.mean(np.abs(err[deforming]) <= u68[deforming])),
        "cover_95": float(np.mean(np.abs(err[deforming]) <= u95[deforming])),
        "ratios": ratio,
    }


def summary(rows: list[dict]) -> dict:
    """Pooled factors (and the 0.25 grid above them) and coverage of the opened stacks."""
    opened = [r for r in rows if r["opened"]]
    if not opened:
        return {"opened": 0}
    pooled = np.concatenate([r["ratios"] for r in opened])
    f68, f95 = float(np.quantile(pooled, 0.683)), float(np.quantile(pooled, 0.954))
    cover68 = [r["cover_68"] for r in opened]
    cover95 = [r["cover_95"] for r in opened]
    return {
        "opened": len(opened),
        "pooled_factor_68": f68,
        "pooled_factor_95": f95,
        "grid_68": math.ceil(f68 / 0.25) * 0.25,
        "grid_95": math.ceil(f95 / 0.25) * 0.25,
        "cover_68_min_median_max": [min(cover68), float(np.median(cover68)), max(cover68)],
        "cover_95_min_median_max": [min(cover95), float(np.median(cover95)), max(cover95)],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path, default=OUT / "open_gate_bands.json")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model("default")
    report: dict = {}
    for name, dates in (("fit", FIT_DATES), ("check", CHECK_DATES)):
        rows = []
        for split, index, n_dates in stacks(dates):
            row = run_stack(model, split, index, n_dates)
            rows.append(row)
            print(
                f"{name} {split} {index} T={n_dates} opened={row['opened']} "
                f"rmse {row['rmse_mm']:.2f} mm, factors {row['factor_68']:.2f} / "
                f"{row['factor_95']:.2f}, coverage {row['cover_68']:.2f} / {row['cover_95']:.2f}",
                flush=True,
            )
        report[name] = {
            "summary": summary(rows),
            "stacks": [{k: v for k, v in r.items() if k != "ratios"} for r in rows],
        }
        print(name, json.dumps(report[name]["summary"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
