"""The resume state: one file, written atomically, and the model/metadata made from it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from insar_denoise.atomic import write_atomic
from insar_denoise.errors import ConfigError, ModelError
from insar_denoise.models.autoencoder import DenoisingAutoencoder
from insar_denoise.models.registry import base_metadata, export_model
from insar_denoise.training.config import TrainConfig

RESUME_FORMAT = "insar-denoise-resume"
RESUME_VERSION = 1
RESUME_NAME = "resume.pt"
#: Config keys that must not change when a run resumes (they define the model and data).
FROZEN_KEYS = ("window", "channels", "crop")


def save_state(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` with ``torch.save`` to a temporary file, then rename it over ``path``."""
    path = Path(path)
    write_atomic(path, lambda tmp: torch.save(state, tmp))
    return path


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy ``src`` to ``dst`` through a temporary file and a rename."""
    dst = Path(dst)
    write_atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
    return dst


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a resume file, checking its format (``ModelError`` naming the file if wrong)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelError(f"{path}: unreadable resume state ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise ModelError(f"{path}: not an insar-denoise resume state")
    if int(state.get("version", 0)) > RESUME_VERSION:
        raise ModelError(f"{path}: resume state version {state['version']} is too new")
    return state


def check_compatible(saved: dict[str, Any], config: TrainConfig, path: str | Path) -> None:
    """Refuse to resume when a key that defines the model or the data changed."""
    for key in FROZEN_KEYS:
        if saved.get(key) != getattr(config, key):
            raise ConfigError(
                f"{path}: resume state has {key}={saved.get(key)!r} but the config says "
                f"{getattr(config, key)!r}; start a new run folder or restore the config"
            )


def model_from_state(state: dict[str, Any], weights: str = "ema") -> DenoisingAutoencoder:
    """Rebuild the network of a resume state with its EMA (default) or raw weights."""
    cfg = TrainConfig.from_dict(state["config"])
    model = DenoisingAutoencoder(window=cfg.window, channels=tuple(cfg.channels))
    key = "ema" if weights == "ema" and state.get("ema") is not None else "model"
    model.load_state_dict(state[key])
    return model.eval()


def metadata_from_state(state: dict[str, Any], model: DenoisingAutoencoder) -> dict[str, Any]:
    """Model-file metadata: architecture, training config, data distribution, metrics."""
    meta = base_metadata(model, crop_px=int(state["config"].get("crop") or 0) or None)
    history = state.get("history") or []
    meta.update(
        {
            "train_config": state["config"],
            "sim_config": state.get("sim_config"),
            "examples_seen": int(state["examples_seen"]),
            "steps": int(state["step"]),
            "train_wall_s": float(state.get("wall_s", 0.0)),
            "val_metrics": history[-1] if history else None,
            "weights": "ema" if state.get("ema") is not None else "raw",
        }
    )
    return meta


def export_from_state(state: dict[str, Any], path: str | Path, weights: str = "ema") -> Path:
    """Script the model of a resume state and write it with its metadata to ``path``."""
    model = model_from_state(state, weights)
    return export_model(model, metadata_from_state(state, model), path)
