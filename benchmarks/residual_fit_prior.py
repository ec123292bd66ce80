"""The gate's residual fit, weighted by the date variances (sessions 6-11) or unweighted
(session 12), on fresh scenes of the training prior.

Benchmark v2 chose the unweighted fit (``evaluate_v2_s12``); the training prior draws each
date's turbulence independently (1-20 mm), so its dates are strongly heteroscedastic, where
a weighted fit's residuals are right and an unweighted one's spread a noisy date into its
neighbours. This script measures that cost: the engine on ``--scenes`` fresh scenes (the
generator and seeds of ``gate_bands.py``), scored offset-free against the truth (r, gain,
RMSE; the zero map's RMSE beside them).

    python benchmarks/residual_fit_prior.py --scenes 16
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

import insar_denoise.inference.significance as sig
from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.inference import denoise_dataset
from insar_denoise.io.scene import scene_dataset
from insar_denoise.models import load_model
from insar_denoise.synth import simulate_scene
from insar_denoise.training.stack import StackTrainConfig

SEED = 9_000_000  # gate_bands.py's scenes


def run(n: int, weighted: bool, model) -> list[dict]:
    """Per-scene scores with the gate's residual fit weighted or not."""
    combos, patterns = sig.cumulative_combos, sig.pattern_combos
    if weighted:
        sig.cumulative_combos = lambda d, v, s, weighted_fit=False: combos(d, v, s, True)
        sig.pattern_combos = lambda d, v, s, weighted_fit=False: patterns(d, v, s, True)
    cfg, rows = StackTrainConfig(), []
    try:
        for i in range(n):
            n_dates = (9, 18, 36, 72)[i % 4]
            sim = dataclasses.replace(cfg.sim_config(n_dates, i % 3 == 0), size=192)
            scene = simulate_scene(sim, SEED + i)
            ds = scene_dataset(scene)[["displacement", "dem"]]
            out = denoise_dataset(ds, model, progress=False, return_noise=False)
            cum, truth = out["cumulative_deformation"].values, scene["cumulative"].astype(float)
            ok = np.isfinite(cum) & scene["valid"] & np.isfinite(truth)
            s = rs.offset_free_scores(cum, truth, ok)
            zero = rs.offset_free_scores(np.zeros_like(truth), truth, ok)["rmse_mm"]
            rows.append({"scene": i, "T": n_dates, **s, "zero_rmse_mm": zero})
    finally:
        sig.cumulative_combos, sig.pattern_combos = combos, patterns
    return rows


def summary(rows: list[dict]) -> dict:
    """Median and mean RMSE, detected share (r >= 0.7), over the scenes."""
    rmse = [r["rmse_mm"] for r in rows]
    return {
        "median_rmse_mm": float(np.median(rmse)),
        "mean_rmse_mm": float(np.mean(rmse)),
        "detected": float(np.mean([(r["r"] or 0.0) >= 0.7 for r in rows])),
        "mean_zero_rmse_mm": float(np.mean([r["zero_rmse_mm"] for r in rows])),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", type=int, default=16)
    p.add_argument("-o", "--output", default="experiments/benchmarks/residual_fit_prior.json")
    args = p.parse_args()
    model = load_model("default")
    result = {}
    for name, weighted in (("weighted", True), ("unweighted", False)):
        rows = run(args.scenes, weighted, model)
        result[name] = {"summary": summary(rows), "scenes": rows}
        print(name, json.dumps(result[name]["summary"]))
    Path(args.output).write_text(json.dumps({"seed": SEED, **result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
