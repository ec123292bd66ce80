"""Coverage of the shipped whole-stack model's uncertainty bands on fresh simulated scenes.

Scenes from the training prior (seeds disjoint from training, validation and the conformal
calibration), run through the engine like users' stacks. Coverage = share of pixels whose
true cumulative deformation (up to the scene's median offset) lies within the band; reported
over all pixels, over pixels that deform (|truth| > 2 mm: where a shrinking model misses
signal) and per T. Targets: 68.3 % (1 sigma) and 95.4 % (95 % band).

    python benchmarks/stack_uncertainty.py --scenes 16 --size 128
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from insar_denoise.inference import denoise_dataset
from insar_denoise.io.scene import scene_dataset
from insar_denoise.synth import simulate_scene
from insar_denoise.training.stack import StackTrainConfig

SEED = 8_000_000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=16)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--model", default="default")
    p.add_argument("-o", "--output", default="experiments/benchmarks/stack_uncertainty.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = StackTrainConfig()
    rows = []
    for i in range(args.scenes):
        n_dates = (9, 18, 36, 72)[i % 4]
        sim = dataclasses.replace(cfg.sim_config(n_dates, i % 3 == 0), size=args.size)
        scene = simulate_scene(sim, SEED + i)
        out = denoise_dataset(
            scene_dataset(scene)[["displacement", "dem"]],
            args.model,
            progress=False,
            return_noise=False,
        )
        cum = out["cumulative_deformation"].values
        s68, s95 = out["uncertainty"].values, out["uncertainty_95"].values
        truth = scene["cumulative"]
        ok = np.isfinite(cum) & np.isfinite(s68) & scene["valid"]
        err = cum[ok] - truth[ok]
        err = np.abs(err - np.median(err))
        moving = np.abs(truth[ok] - np.median(truth[ok])) > 2.0
        rows.append(
            {
                "T": n_dates,
                "amplitude_mm": scene["amplitude_mm"],
                "in68": float(np.mean(err <= s68[ok])),
                "in95": float(np.mean(err <= s95[ok])),
                "moving_in68": float(np.mean(err[moving] <= s68[ok][moving]))
                if moving.any()
                else None,
                "moving_in95": float(np.mean(err[moving] <= s95[ok][moving]))
                if moving.any()
                else None,
                "n_moving": int(moving.sum()),
                "n": int(ok.sum()),
            }
        )

    def pooled(key, weight):
        v = [(r[key], r[weight]) for r in rows if r[key] is not None and r[weight] > 0]
        return float(sum(a * w for a, w in v) / max(sum(w for _, w in v), 1))

    summary = {
        "all_1sigma": pooled("in68", "n"),
        "all_95": pooled("in95", "n"),
        "moving_1sigma": pooled("moving_in68", "n_moving"),
        "moving_95": pooled("moving_in95", "n_moving"),
        "per_T": {
            t: {
                "1sigma": float(np.mean([r["in68"] for r in rows if r["T"] == t])),
                "95": float(np.mean([r["in95"] for r in rows if r["T"] == t])),
            }
            for t in (9, 18, 36, 72)
        },
    }
    print(json.dumps(summary, indent=1))
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"summary": summary, "scenes": rows, "seed": SEED}, indent=1))


if __name__ == "__main__":
    main()
