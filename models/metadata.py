"""What a model file says about itself: the metadata of window and whole-stack models
(:func:`base_metadata`, :func:`stack_metadata`, their default tiling), its checks on load
(:func:`check_metadata`) and the hash of the weights (:func:`weights_sha256`).

A model file is a TorchScript archive whose ``metadata.json`` extra file says what the
model expects (``window``, ``tile_multiple``, ``receptive_field_px``, ``default_tile``,
``default_overlap``, ``normalization``), how it was trained (``train_config``,
``sim_config``, ``examples_seen``, ``val_metrics``) and a ``sha256`` of its weights.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from insar_denoise._version import __version__
from insar_denoise.errors import ModelError
from insar_denoise.models.autoencoder import (
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
        # tiles of three training crops overlapping by one: the blending weights favour tile
        # centres, away from the edge effects of the network's 33 px local means; 2.25 runs
        # per pixel (two crops: 4), the same Benchmark v2 (card, design table: inference tiles)
        "default_tile": 3 * int(crop_px),
        "default_overlap": int(crop_px),
        "train_crop_px": int(crop_px),
        "normalization": STACK_NORMALIZATION,
        "output": "(series (B, T, H, W) mm LOS relative to the first date, positive towards "
        "the satellite, up to a constant per date; detection (B, H, W) probability)",
        "package_version": __version__,
    }


#: metadata a model without its own takes (a bare module or a callable in tests)
DEFAULT_METADATA: dict[str, Any] = {
    "window": 9,
    "tile_multiple": 8,
    "receptive_field_px": 64,
    "default_tile": 256,
    "default_overlap": 32,
}


def check_metadata(raw: str, path: Path) -> dict[str, Any]:
    """The parsed ``metadata.json`` of the model file ``path``, checked: an insar-denoise
    model, the :data:`REQUIRED_KEYS` present, a format version this package reads.

    Raises
    ------
    ModelError
        Empty, not JSON, a foreign format, missing keys or a newer format version.
    """
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
    return meta
