"""Design experiments of the whole-stack model: which temporal projection, and what the CNN adds.

Fresh simulated scenes (seeds disjoint from training, validation and calibration), the
training prior with bowls, T in {9, 18, 36, 72}; every variant runs through the same engine
(tiles, blending) as users' stacks. Scores of the cumulative map against the truth **up to
a constant** (medians removed; nothing de-planed): RMSE (mm), gain (least-squares slope of
the output on the truth) and r, as medians over scenes, per T.

    python benchmarks/stack_design.py --scenes 8 --size 128 [--model PATH] [--legacy window_v1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from insar_denoise.inference import denoise_dataset
from insar_denoise.io.scene import scene_dataset
from insar_denoise.models import load_model
from insar_denoise.models.registry import LoadedModel, stack_metadata
from insar_denoise.models.stack_denoiser import StackDenoiser
from insar_denoise.synth import simulate_scene
from insar_denoise.training.stack import StackTrainConfig

SEED = 9_000_000
DATES = (9, 18, 36, 72)


def projection_model(weighted: bool) -> LoadedModel:
    """The untrained model (zero head) = the temporal projection alone, with the scene's
    estimated date weights or with equal weights (ordinary least squares)."""
    model = StackDenoiser().eval()

    def call(x, z, t, date_var=None):
        if not weighted and date_var is not None:
            date_var = torch.ones_like(date_var)
        with torch.no_grad():
            return model(x, z, t, date_var)

    return LoadedModel(call, stack_metadata(model, 64), "projection")


def score(est: np.ndarray, truth: np.ndarray, ok: np.ndarray) -> dict[str, float]:
    """RMSE, gain and r up to a constant (medians removed) on ``ok`` pixels."""
    e = est[ok] - np.median(est[ok])
    t = truth[ok] - np.median(truth[ok])
    denom = float((t * t).sum())
    gain = float((e * t).sum() / denom) if denom > 0 else float("nan")
    r = float(np.corrcoef(e, t)[0, 1]) if e.std() > 0 and t.std() > 0 else float("nan")
    return {"rmse_mm": float(np.sqrt(np.mean((e - t) ** 2))), "gain": gain, "r": r}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=8, help="scenes per T")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--model", default="default")
    p.add_argument("--legacy", default=None, help="also run this window model (e.g. window_v1)")
    p.add_argument("-o", "--output", default="experiments/benchmarks/stack_design.json")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = StackTrainConfig()
    methods = {
        "projection, equal weights": lambda ds: denoise_dataset(
            ds, projection_model(False), progress=False, return_noise=False
        ),
        "projection, estimated weights": lambda ds: denoise_dataset(
            ds, projection_model(True), progress=False, return_noise=False
        ),
        "model": lambda ds: denoise_dataset(ds, args.model, progress=False, return_noise=False),
        "stack (linear rate)": lambda ds: denoise_dataset(ds, method="stack"),
        "raw": lambda ds: denoise_dataset(ds, method="raw"),
    }
    if args.legacy:
        legacy = load_model(args.legacy)
        methods["legacy " + args.legacy] = lambda ds: denoise_dataset(
            ds, legacy, progress=False, return_noise=False, stride=4
        )
    rows: dict[str, dict[int, list[dict]]] = {m: {t: [] for t in DATES} for m in methods}
    start = time.time()
    for n_dates in DATES:
        for i in range(args.scenes):
            sim = dataclasses.replace(cfg.sim_config(n_dates, i % 3 == 0), size=args.size)
            scene = simulate_scene(sim, SEED + 1000 * n_dates + i)
            ds = scene_dataset(scene)[["displacement", "dem"]]
            truth = scene["cumulative"]
            for name, fn in methods.items():
                cum = fn(ds)["cumulative_deformation"].values
                ok = np.isfinite(cum) & scene["valid"]
                rows[name][n_dates].append(score(cum, truth, ok))
        print(f"T={n_dates} done ({time.time() - start:.0f} s)", flush=True)
    summary = {
        name: {
            str(t): {k: float(np.nanmedian([r[k] for r in rs])) for k in ("rmse_mm", "gain", "r")}
            for t, rs in per_t.items()
        }
        for name, per_t in rows.items()
    }
    print(f"{'method':<32}" + "".join(f"  T={t:<2} rmse/gain/r" for t in DATES))
    for name, per_t in summary.items():
        cells = "".join(
            f"  {v['rmse_mm']:5.2f}/{v['gain']:4.2f}/{v['r']:4.2f}  " for v in per_t.values()
        )
        print(f"{name:<32}{cells}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"scenes_per_T": args.scenes, "size": args.size, "summary": summary}, indent=1)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
