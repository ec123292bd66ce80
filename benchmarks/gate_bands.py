"""Fit the uncertainty bands of gated-off areas (``significance.BAND_68`` / ``BAND_95``).

Where the significance gate does not pass, the output is zero and a signal under the
detection limit may be there. The bands are raised to ``factor x`` the missed-signal scale
(the cumulative's noise std at the finest scale). On fresh scenes from the training prior
(seeds disjoint from training, validation, calibration and ``stack_uncertainty.py``), this
script finds the smallest factors whose bands hold 68.3 % / 95.4 % of the deforming pixels'
errors (|truth| > 2 mm), capped at the detection threshold (a larger signal would have been
detected), and prints the coverage they give.

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
    """Per pixel: |error|, the model's two bands, the missed-signal scale, deforming flag."""
    cfg, cols = StackTrainConfig(), {k: [] for k in ("err", "b68", "b95", "missed", "moving")}
    seen: dict = {}
    add_maps = stack_path._add_maps

    def keep(out, meta, sigma, detection, lazy, missed=None):
        seen.update(missed=missed)
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
        missed = np.nan_to_num(np.asarray(seen["missed"]), nan=0.0) if seen else 0 * b68
        ok = np.isfinite(cum) & np.isfinite(b68) & scene["valid"]
        err = cum[ok] - truth[ok]
        cols["err"].append(np.abs(err - np.median(err)))
        cols["moving"].append(np.abs(truth[ok] - np.median(truth[ok])) > 2.0)
        for key, arr in (("b68", b68), ("b95", b95), ("missed", missed)):
            cols[key].append(arr[ok])
    return {k: np.concatenate(v) for k, v in cols.items()}


def fit(data: dict[str, np.ndarray]) -> dict:
    """Smallest factors reaching the targets on deforming pixels (grid 0.25, cap threshold)."""
    out = {}
    for level, band in (("68", data["b68"]), ("95", data["b95"])):
        mv = data["moving"]
        factor = sig.THRESHOLD
        for f in np.arange(0.0, sig.THRESHOLD + 1e-9, 0.25):
            cover = np.fmax(band, f * data["missed"]) >= data["err"]
            if cover[mv].mean() >= TARGETS[level]:
                factor = float(f)
                break
        cover = np.fmax(band, factor * data["missed"]) >= data["err"]
        table = {
            f"{f:g}": round(float((np.fmax(band, f * data["missed"]) >= data["err"])[mv].mean()), 3)
            for f in (0.0, 1.0, 2.0, 3.0, 4.0, sig.THRESHOLD)
        }
        out[level] = {
            "moving_by_factor": table,
            "factor": factor,
            "moving": float(cover[mv].mean()),
            "all": float(cover.mean()),
            "moving_without": float((band >= data["err"])[mv].mean()),
            "all_without": float((band >= data["err"]).mean()),
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
