"""Fit the uncertainty band floors of the significance gate (``significance.BAND_*``).

The bands are raised to multiples of the cumulative's noise std at 1 px
(``significance.band_floors``). Where the gate is off the output is zero and a signal under
the detection limit may be there (``BAND_68`` / ``BAND_95``); where it passes, the model's
own band misses its errors on deforming pixels (``BAND_IN_68`` / ``BAND_IN_95``). On fresh
scenes from the training prior (seeds disjoint from training, validation, calibration and
``stack_uncertainty.py``), this script finds, separately outside and inside the gate, the
smallest factors (grid 0.25, capped at the detection threshold) whose bands hold 68.3 % /
95.4 % of the deforming pixels' errors (|truth| > 2 mm), and prints the coverage they give.

    python benchmarks/gate_bands.py --scenes 16 --size 192
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

import insar_denoise.inference.significance as sig
import insar_denoise.inference.stack_path as stack_path
from insar_denoise.inference import denoise_dataset
from insar_denoise.io.scene import scene_dataset
from insar_denoise.models import load_model
from insar_denoise.synth import simulate_scene
from insar_denoise.training.stack import StackTrainConfig

SEED = 9_000_000
TARGETS = {"68": 0.683, "95": 0.954}


def collect(n: int, size: int, model) -> dict[str, np.ndarray]:
    """Per pixel: |error|, the model's two bands, the gate, its noise std, deforming flag."""
    keys = ("err", "b68", "b95", "gate", "noise_sd", "moving")
    cfg, cols = StackTrainConfig(), {k: [] for k in keys}
    seen: dict = {}
    add_maps = stack_path._add_maps

    def keep(out, meta, sigma, detection, lazy, gate_maps=None):
        seen.update(gate_maps=gate_maps)
        return add_maps(out, meta, sigma, detection, lazy, None)  # the model's own bands

    stack_path._add_maps = keep
    for i in range(n):
        n_dates = (9, 18, 36, 72)[i % 4]
        sim = dataclasses.replace(cfg.sim_config(n_dates, i % 3 == 0), size=size)
        scene = simulate_scene(sim, SEED + i)
        ds = scene_dataset(scene)[["displacement", "dem"]]
        out = denoise_dataset(ds, model, progress=False, return_noise=False)
        cum, truth = out["cumulative_deformation"].values, scene["cumulative"]
        b68, b95 = out["uncertainty"].values, out["uncertainty_95"].values
        g, noise_sd = (np.nan_to_num(np.asarray(m), nan=0.0) for m in seen["gate_maps"])
        ok = np.isfinite(cum) & np.isfinite(b68) & scene["valid"]
        err = cum[ok] - truth[ok]
        cols["err"].append(np.abs(err - np.median(err)))
        cols["moving"].append(np.abs(truth[ok] - np.median(truth[ok])) > 2.0)
        for key, arr in (("b68", b68), ("b95", b95), ("gate", g), ("noise_sd", noise_sd)):
            cols[key].append(arr[ok])
    return {k: np.concatenate(v) for k, v in cols.items()}


def _smallest(band, scale, err, target: float) -> float:
    """Smallest factor (grid 0.25, capped at the threshold) with coverage >= target."""
    for f in np.arange(0.0, sig.THRESHOLD + 1e-9, 0.25):
        if (np.fmax(band, f * scale) >= err).mean() >= target:
            return float(f)
    return float(sig.THRESHOLD)


def fit(data: dict[str, np.ndarray]) -> dict:
    """Floor factors outside / inside the gate reaching the targets on deforming pixels."""
    out = {}
    inside, mv, err, sd = data["gate"] > 0.5, data["moving"], data["err"], data["noise_sd"]
    for level, band in (("68", data["b68"]), ("95", data["b95"])):
        factors = {
            where: _smallest(band[m & mv], sd[m & mv], err[m & mv], TARGETS[level])
            for where, m in (("outside", ~inside), ("inside", inside))
        }
        floor = sd * np.where(inside, factors["inside"], factors["outside"])
        cover = np.fmax(band, floor) >= err
        without = band >= err
        out[level] = {
            "factor_outside": factors["outside"],
            "factor_inside": factors["inside"],
            "moving": float(cover[mv].mean()),
            "moving_inside": float(cover[mv & inside].mean()),
            "moving_outside": float(cover[mv & ~inside].mean()),
            "all": float(cover.mean()),
            "moving_without": float(without[mv].mean()),
            "all_without": float(without.mean()),
            "pixels_moving_inside": int((mv & inside).sum()),
            "pixels_moving_outside": int((mv & ~inside).sum()),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=16)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("-o", "--output", default="experiments/benchmarks/gate_bands.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    result = fit(collect(args.scenes, args.size, load_model("default")))
    print(json.dumps(result, indent=1))
    Path(args.output).write_text(json.dumps({"seed": SEED, **result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
