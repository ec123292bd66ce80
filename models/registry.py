"""Save and load scripted models (torchgeo-style lookup by name): the one model object
:class:`LoadedModel`, :func:`load_model`, :func:`as_model`, :func:`export_model`.

What a file says about itself (its ``metadata.json``: :func:`base_metadata`,
:func:`stack_metadata`, the checks on load, :func:`weights_sha256`, which :func:`load_model`
checks) is in :mod:`.metadata`; those names are importable from here too.
"""

from __future__ import annotations

import datetime as _dt
import importlib.resources
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from insar_denoise._version import __version__
from insar_denoise.atomic import write_atomic
from insar_denoise.errors import ModelError
from insar_denoise.models.autoencoder import DEFAULT_CHANNELS, DenoisingAutoencoder
from insar_denoise.models.metadata import (  # noqa: F401 (re-exported)
    DEFAULT_METADATA,
    DEFAULT_TILE,
    FORMAT,
    FORMAT_VERSION,
    NORMALIZATION,
    REQUIRED_KEYS,
    STACK_NORMALIZATION,
    _finite_json,
    base_metadata,
    check_metadata,
    default_overlap,
    stack_metadata,
    tiling_for_crop,
    weights_sha256,
)


def export_model(module: nn.Module, metadata: dict[str, Any], path: str | Path) -> Path:
    """Script ``module`` and write it with ``metadata`` atomically to ``path``.

    ``format``, ``format_version``, ``sha256``, ``created`` and ``model_id`` are filled in.
    """
    path = Path(path)
    scripted = module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
    scripted = scripted.cpu().eval()
    meta = _finite_json(dict(metadata))
    meta["format"] = FORMAT
    meta["format_version"] = FORMAT_VERSION
    meta["sha256"] = weights_sha256(scripted)
    meta.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    meta.setdefault("model_id", f"insar-denoise-{meta['sha256'][:12]}")
    meta.setdefault("package_version", __version__)
    extra = {"metadata.json": json.dumps(meta, indent=1, allow_nan=False)}
    return write_atomic(path, lambda tmp: torch.jit.save(scripted, tmp, _extra_files=extra))


def build_untrained(
    window: int = 9, channels: tuple[int, ...] = (4, 8, 8, 8), seed: int = 0
) -> torch.jit.ScriptModule:
    """A small scripted, randomly initialised model with metadata (for tests).

    The metadata is attached as ``module.insar_metadata`` (a plain attribute) so that
    ``export_model(m, m.insar_metadata, path)`` writes a loadable file.
    """
    torch.manual_seed(seed)
    model = DenoisingAutoencoder(window=window, channels=channels)
    scripted = torch.jit.script(model.eval())
    meta = base_metadata(model)
    meta.update({"train_config": None, "sim_config": None, "examples_seen": 0, "val_metrics": None})
    scripted.insar_metadata = meta
    return scripted


@dataclass
class LoadedModel:
    """The one model object: a callable, its metadata, calibration, identity and device.

    :func:`load_model` returns one (weights hashed once); :func:`as_model` turns what a user
    passes (None, a name, a path, a module with ``insar_metadata``) into one. Everything
    downstream (engine, trust, products) takes this object.

    Attributes
    ----------
    module : ``module(displacement (B, N, h, w) mm, dem (B, h, w) m) -> (B, h, w) mm``
        (window models) or the whole-stack call (``kind: stack``); a torch callable.
    metadata : ``window``, ``tile_multiple``, ``receptive_field_px``, ``default_tile``,
        ``default_overlap`` (pixels), ``sha256``, ``model_id``, ...; missing keys take
        :data:`DEFAULT_METADATA`.
    name : identifier written to the output provenance.
    path : the model file (None for an in-memory module).
    device : the torch device the module lives on.
    calibration : the uncertainty calibration stored next to the file
        (``<stem>.calibration.json``, as read), None without one.
    """

    module: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str = "custom"
    path: Path | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    calibration: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.metadata = {**DEFAULT_METADATA, **dict(self.metadata)}

    @property
    def window(self) -> int:
        return int(self.metadata["window"])

    @property
    def tile_multiple(self) -> int:
        return int(self.metadata["tile_multiple"])

    @property
    def kind(self) -> str:
        """``"stack"`` (whole-stack model) or ``"window"``."""
        return str(self.metadata.get("kind", "window"))

    @property
    def sha256(self) -> str | None:
        return self.metadata.get("sha256")

    @property
    def model_id(self) -> str:
        return str(self.metadata.get("model_id", "custom"))

    def to(self, device: torch.device | str) -> LoadedModel:
        """This model on ``device`` (the same object when already there)."""
        device = torch.device(device)
        if device == self.device or not hasattr(self.module, "to"):
            return self
        return replace(self, module=self.module.to(device), device=device)

    def __call__(self, displacement: Tensor, dem: Tensor) -> Tensor:
        """Denoise ``(B, N, H, W)`` mm with ``(B, H, W)`` m DEM; returns ``(B, H, W)`` mm."""
        with torch.inference_mode():
            return self.module(displacement.to(self.device), dem.to(self.device))


#: the torch the shipped TorchScript files were saved and tested with: torch 2.11 cannot read
#: them (session 19, on the lent GPU machine: unknown operator aten::_upsample_lanczos2d_aa)
MIN_TORCH = "2.13"
#: what the public entry points accept as a model (see :func:`as_model`)
ModelLike = LoadedModel | str | os.PathLike | nn.Module | None


def _provenance(name: str, metadata: dict[str, Any]) -> str:
    sha = str(metadata.get("sha256", ""))[:12]
    return f"{name} (sha256 {sha})" if sha else name


def as_model(model: ModelLike, device: str | torch.device = "cpu") -> LoadedModel:
    """The one resolver: ``None`` (``"default"``), a name or path (:func:`load_model`), a
    :class:`LoadedModel` (as is) or a callable module (metadata from its ``insar_metadata``
    or ``metadata`` attribute) as a :class:`LoadedModel`. Call it once per run."""
    if isinstance(model, LoadedModel):
        return model
    if model is None or isinstance(model, str | bytes) or hasattr(model, "__fspath__"):
        name = "default" if model is None else os.fsdecode(model)
        return load_model(name, device=str(device))
    if callable(model):
        meta = getattr(model, "insar_metadata", None) or getattr(model, "metadata", None) or {}
        if hasattr(model, "to"):
            model = model.to(device)
        return LoadedModel(model, dict(meta), type(model).__name__, device=torch.device(device))
    raise ModelError(f"cannot use {type(model).__name__} as a model")


def read_calibration(path: Path) -> dict[str, Any] | None:
    """The calibration JSON stored next to a model file (``<stem>.calibration.json``)."""
    cal_path = path.with_name(f"{path.stem}.calibration.json")
    if not cal_path.is_file():
        return None
    try:
        cal = json.loads(cal_path.read_text())
    except (OSError, ValueError):
        raise ModelError(f"{cal_path}: calibration is not valid JSON") from None
    return {**cal, "path": str(cal_path)}


def default_model_path() -> Path:
    """Path of the packaged default model ``insar_denoise/models/default.pt``."""
    return Path(str(importlib.resources.files("insar_denoise.models") / "default.pt"))


def packaged_models() -> list[str]:
    """Names of the models shipped in the package (``default``, ``window_v1``, ...)."""
    folder = importlib.resources.files("insar_denoise.models")
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt"))


def resolve(name_or_path: str | Path) -> Path:
    """Map a packaged model's name (``"default"``, ``"window_v1"``) to its file; anything
    else is a path."""
    if str(name_or_path) == "default":
        return default_model_path()
    name = str(name_or_path)
    if "/" not in name and not name.endswith(".pt") and name in packaged_models():
        return Path(str(importlib.resources.files("insar_denoise.models") / f"{name}.pt"))
    return Path(name_or_path)


def load_model(name_or_path: str | Path = "default", device: str = "cpu") -> LoadedModel:
    """Load and check a model file.

    Parameters
    ----------
    name_or_path : str or Path
        ``"default"`` (the packaged model) or a path to a file written by :func:`export_model`.
    device : str
        Torch device to load onto (``"cpu"``, ``"cuda"``, ...).

    Raises
    ------
    ModelError
        The file is missing, not TorchScript, truncated, has no or foreign metadata, or its
        weights do not match the recorded hash.
    """
    path = resolve(name_or_path)
    if not path.is_file():
        hint = " (train and export one: insar-denoise export RUN_DIR -o PATH)"
        raise ModelError(f"{path}: model file not found{hint}")
    extra = {"metadata.json": ""}
    try:
        module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as exc:  # torch raises RuntimeError/ValueError for corrupt archives
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Unknown builtin op" in first:  # saved by a newer torch (session 19: 2.11 fails)
            raise ModelError(
                f"{path}: needs a newer torch than this {torch.__version__} ({first}); "
                f"the shipped models load with torch >= {MIN_TORCH}"
            ) from None
        raise ModelError(
            f"{path}: not a readable TorchScript model (truncated or corrupt?): {first}"
        ) from None
    meta = check_metadata(extra["metadata.json"], path)
    digest = weights_sha256(module)
    if digest != meta["sha256"]:
        raise ModelError(f"{path}: weights hash {digest[:12]} != recorded {meta['sha256'][:12]}")
    module.eval()
    return LoadedModel(
        module,
        meta,
        _provenance(str(name_or_path), meta),
        path=path,
        device=torch.device(device),
        calibration=read_calibration(path),
    )


__all__ = [
    "DEFAULT_CHANNELS",
    "DEFAULT_METADATA",
    "ModelLike",
    "as_model",
    "stack_metadata",
    "LoadedModel",
    "base_metadata",
    "build_untrained",
    "default_model_path",
    "export_model",
    "load_model",
    "weights_sha256",
]
