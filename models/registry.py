"""Save and load scripted models with their metadata (torchgeo-style lookup by name).

A model file is a TorchScript archive whose ``metadata.json`` extra file says what the
model expects (``window``, ``tile_multiple``, ``receptive_field_px``, ``default_tile``,
``default_overlap``, ``normalization``), how it was trained (``train_config``,
``sim_config``, ``examples_seen``, ``val_metrics``) and a ``sha256`` of its weights, which
:func:`load_model` checks.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.resources
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from insar_denoise._version import __version__
from insar_denoise.atomic import write_atomic
from insar_denoise.errors import ModelError
from insar_denoise.models.autoencoder import (
    DEFAULT_CHANNELS,
    DenoisingAutoencoder,
    count_parameters,
    receptive_field,
)

FORMAT = "insar-denoise-model"
FORMAT_VERSION = 1
DEFAULT_TILE = 256
NORMALIZATION = (
    "inside the model: per date a robust (Huber-IRLS) least-squares plane (offset + ramps) "
    "fitted on valid pixels is removed; the window is divided by 1.4826 x median |x| over "
    "valid pixels of all dates (floor 1e-3 mm), undone on the output; NaN holes -> 0 with the "
    "validity mask as an input channel; DEM: mean removed, divided by 1.4826 x MAD (floor "
    "50 m). Output: cumulative deformation over the window (last - first date), mm, with its "
    "least-squares plane over valid pixels removed (defined up to offset + ramp); NaN where "
    "the pixel is invalid in every date of the window, filled elsewhere."
)
REQUIRED_KEYS = ("format", "format_version", "window", "tile_multiple", "sha256")


def weights_sha256(module: nn.Module) -> str:
    """SHA-256 over the state dict (names, dtypes, shapes and bytes, sorted by name)."""
    digest = hashlib.sha256()
    state = module.state_dict()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(list(tensor.shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def _finite_json(value: Any) -> Any:
    """Copy of ``value`` with non-finite floats replaced by ``None`` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def default_overlap(receptive_field_px: int, tile_multiple: int) -> int:
    """Smallest multiple of ``tile_multiple`` covering the receptive field.

    Blending gives zero weight to the outer half receptive field of each tile, so an overlap
    of a whole receptive field leaves every output pixel computed with its full context.
    """
    return -(-receptive_field_px // tile_multiple) * tile_multiple


def tiling_for_crop(crop_px: int, receptive_field_px: int, tile_multiple: int) -> tuple[int, int]:
    """Default inference ``(tile, overlap)`` of a model trained on ``crop_px`` crops.

    The model normalises each tile (per-date plane, robust amplitude scale), so tiles near
    the training crop keep its inputs in distribution; larger tiles bring long-wavelength
    atmosphere it never saw. ``benchmarks/tile_size.py`` (6 scenes of 384 px, 10 mm sources):
    RMSE 0.77 mm at 96 px tiles with 32 px overlap, 0.81 at 64/32 (twice the cost), 0.82 at
    256/88 and 0.90 at 512/88 (= the map of zeros). Hence 1.5 crops a side and half a crop of
    overlap (at most the receptive field), on multiples of ``tile_multiple``.
    """
    tile = -(-(3 * int(crop_px)) // (2 * tile_multiple)) * tile_multiple
    half = (int(crop_px) // 2) // tile_multiple * tile_multiple
    return tile, min(half, default_overlap(receptive_field_px, tile_multiple))


def base_metadata(model: DenoisingAutoencoder, crop_px: int | None = None) -> dict[str, Any]:
    """Architecture part of the metadata of ``model``.

    ``crop_px``: the training crop side; sets ``default_tile`` / ``default_overlap`` (see
    :func:`tiling_for_crop`). Without it: :data:`DEFAULT_TILE` and a receptive field.
    """
    rf = receptive_field(model)
    if crop_px:
        tile, overlap = tiling_for_crop(crop_px, rf, model.tile_multiple)
    else:
        tile, overlap = DEFAULT_TILE, default_overlap(rf, model.tile_multiple)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": "DenoisingAutoencoder",
        "channels": list(model.channels),
        "n_parameters": count_parameters(model),
        "window": model.window,
        "tile_multiple": model.tile_multiple,
        "receptive_field_px": rf,
        "default_tile": tile,
        "default_overlap": overlap,
        "normalization": NORMALIZATION,
        "output": "cumulative deformation over the window (last minus first date), mm LOS, "
        "positive towards the satellite, offset and ramp removed",
        "package_version": __version__,
    }


STACK_NORMALIZATION = (
    "inside the model: per-date noise variances from robust variances of date differences; "
    "per-pixel weighted least squares on a constant + piecewise-linear ramps in normalised "
    "time; for the CNN, coefficients minus their 33 px local mean, divided by the median "
    "propagated noise of the cumulative map (scale) and compressed by asinh; its corrections "
    "are added in noise units and multiplied back; DEM: 33 px local mean removed, in km. "
    "Output: the "
    "series relative to the first date (defined up to a constant per date, nothing de-planed) "
    "and a detection probability."
)


def stack_metadata(model: nn.Module, crop_px: int) -> dict[str, Any]:
    """Architecture part of the metadata of a whole-stack model (``kind: stack``)."""
    from insar_denoise.models.stack_denoiser import receptive_field_px

    rf = receptive_field_px()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "stack",
        "architecture": "StackDenoiser",
        "channels": list(model.channels),
        "segments": int(model.segments),
        "detect_mm": float(model.detect_mm),
        "n_parameters": count_parameters(model),
        "window": int(model.segments) + 2,
        "min_valid_dates": int(model.segments) + 2,
        "tile_multiple": int(model.tile_multiple),
        "receptive_field_px": rf,
        # tiles of two training crops overlapping by one: the blending weights favour tile
        # centres, away from the edge effects of the network's 33 px local means
        "default_tile": 2 * int(crop_px),
        "default_overlap": int(crop_px),
        "train_crop_px": int(crop_px),
        "normalization": STACK_NORMALIZATION,
        "output": "(series (B, T, H, W) mm LOS relative to the first date, positive towards "
        "the satellite, up to a constant per date; detection (B, H, W) probability)",
        "package_version": __version__,
    }


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


#: metadata a model without its own takes (a bare module or a callable in tests)
DEFAULT_METADATA: dict[str, Any] = {
    "window": 9,
    "tile_multiple": 8,
    "receptive_field_px": 64,
    "default_tile": 256,
    "default_overlap": 32,
}


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
        raise ModelError(
            f"{path}: not a readable TorchScript model (truncated or corrupt?): {first}"
        ) from None
    raw = extra["metadata.json"]
    if not raw:
        raise ModelError(f"{path}: TorchScript file without insar-denoise metadata.json")
    try:
        meta = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ModelError(f"{path}: metadata.json is not valid JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelError(f"{path}: not an insar-denoise model (format is not {FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelError(f"{path}: metadata lacks {', '.join(missing)}")
    if int(meta["format_version"]) > FORMAT_VERSION:
        raise ModelError(
            f"{path}: format_version {meta['format_version']} is newer than this package "
            f"supports ({FORMAT_VERSION}); upgrade insar-denoise"
        )
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
