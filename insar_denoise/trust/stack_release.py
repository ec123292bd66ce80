"""Release a trained whole-stack model: export its weights and calibrate its uncertainty.

The model's sigma head is trained with a Gaussian likelihood; the released bands are
split-conformal (Vovk et al. 2005, "Algorithmic Learning in a Random World", ch. 2):
``k68`` and ``k95`` are the 68.3 % and 95.4 % quantiles of ``|error| / sigma`` over the
pixels of fresh simulated scenes (seeds disjoint from training and validation), run through
the same engine (tiles and blending) as users' stacks. Errors are those of the cumulative
map against the truth, so the bands also cover signals the model misses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from insar_denoise.models.registry import LoadedModel, export_model, stack_metadata
from insar_denoise.models.stack_denoiser import StackDenoiser
from insar_denoise.synth import simulate_scene
from insar_denoise.training.stack import StackTrainConfig

#: first seed of the calibration scenes (training draws from ``cfg.seed``, validation
#: from ``cfg.val_seed``)
CALIBRATION_SEED = 7_000_000


def load_trained(resume: str | Path, weights: str | Path | None = None) -> tuple:
    """Model (with ``weights`` or the resume state's), its training config and examples seen."""
    state = torch.load(resume, map_location="cpu", weights_only=False)
    cfg = StackTrainConfig(**{**state["config"], "sim": state["config"]["sim"]})
    cfg = dataclasses.replace(cfg, dates=tuple(cfg.dates), widths=tuple(cfg.widths))
    model = StackDenoiser(cfg.segments, cfg.widths, cfg.detect_mm)
    sd = torch.load(weights, map_location="cpu") if weights else state["model"]
    model.load_state_dict(sd)
    # a GPU continuation (scripts/train_stack_device.py) records its own count: batches differ
    return model.eval(), cfg, int(state.get("examples", int(state["step"]) * cfg.batch_size))


def calibration_errors(
    model: LoadedModel, cfg: StackTrainConfig, n_scenes: int = 24, size: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """``|error|`` and predicted sigma (mm) on the valid pixels of fresh scenes."""
    from insar_denoise.inference import denoise_dataset
    from insar_denoise.io.scene import scene_dataset

    errs, sigmas = [], []
    for i in range(n_scenes):
        n_dates = int(np.exp(np.random.default_rng(i).uniform(*np.log(cfg.dates))))
        sim = dataclasses.replace(cfg.sim_config(n_dates, i % 3 == 0), size=size)
        scene = simulate_scene(sim, CALIBRATION_SEED + i)
        ds = scene_dataset(scene)[["displacement", "dem"]]
        out = denoise_dataset(ds, model, progress=False, return_noise=False)
        cum = out["cumulative_deformation"].values
        sig = out["uncertainty"].values / float(model.metadata["sigma_calibration"]["k68"])
        truth = scene["cumulative"]
        ok = np.isfinite(cum) & np.isfinite(sig) & scene["valid"]
        e = cum[ok] - truth[ok]
        errs.append(np.abs(e - np.median(e)))
        sigmas.append(sig[ok])
    return np.concatenate(errs), np.concatenate(sigmas)


def release(
    resume: str | Path,
    output: str | Path,
    weights: str | Path | None = None,
    n_scenes: int = 24,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export the model to ``output`` with calibrated bands; return its metadata."""
    from insar_denoise.models.registry import LoadedModel

    model, cfg, examples = load_trained(resume, weights)
    meta = stack_metadata(model, cfg.crop)
    meta.update(
        train_config={k: v for k, v in dataclasses.asdict(cfg).items() if k != "sim"},
        sim_config=cfg.sim,
        examples_seen=examples,
        sigma_calibration={"k68": 1.0, "k95": 1.0},
        **(extra or {}),
    )
    scripted = torch.jit.script(model)
    err, sig = calibration_errors(LoadedModel(scripted, meta, "calibration"), cfg, n_scenes)
    ratio = err / np.maximum(sig, 1e-6)
    meta["sigma_calibration"] = {
        "k68": float(np.quantile(ratio, 0.683)),
        "k95": float(np.quantile(ratio, 0.954)),
        "n_scenes": int(n_scenes),
        "n_pixels": int(ratio.size),
        "seed": CALIBRATION_SEED,
        "method": "split-conformal quantiles of |error| / sigma on fresh simulated scenes",
    }
    export_model(scripted, meta, output)
    from insar_denoise.models import load_model

    return load_model(output).metadata
