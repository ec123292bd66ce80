"""Checked options of a run: dataset checks, times, tile plan, block size, valid dates.

Pure bookkeeping shared by the window, classical and whole-stack paths of
:func:`insar_denoise.inference.engine.denoise_dataset`; no model and no data are touched
(except ``as_dask``, which wraps an array without computing it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from insar_denoise.errors import ConfigError, InputError
from insar_denoise.inference import masks
from insar_denoise.inference.tiling import round_up

log = logging.getLogger(__name__)


@dataclass
class EngineJob:
    """One :func:`.engine.denoise_dataset` call as its block paths see it: the input, its
    displacement ``(T, H, W)``, times (days since the first date), whether it is dask-backed,
    the provenance ``attrs`` (filled in along the way) and the call's options."""

    ds: xr.Dataset
    src: xr.DataArray
    days: np.ndarray
    lazy: bool
    attrs: dict[str, Any]
    tile: int | None = None
    overlap: int | None = None
    window: int | None = None
    stride: int = 1
    batch_size: int | None = None
    progress: bool = True
    return_noise: bool = True
    chunk: int | None = None
    lam: float = 0.0
    min_valid_dates: int | None = None
    fix_unwrapping: bool = True
    denoise_fine_scales: bool = False
    #: the input's ``(H, W)`` when the scene is it padded (:func:`.stack_path.denoise_padded`)
    padded_from: tuple[int, int] | None = None


def block_inputs(
    ds: xr.Dataset, src: xr.DataArray, chunk: int
) -> tuple[da.Array, da.Array | None, da.Array | None]:
    """Displacement ``(T, H, W)`` and DEM (float32) and validity mask (bool; None when
    absent) as dask arrays in ``chunk`` x ``chunk`` blocks."""
    n_dates = src.shape[0]
    disp = as_dask(src.data, (n_dates, chunk, chunk)).astype(np.float32)
    dem = None
    if "dem" in ds:
        dem = as_dask(ds["dem"].transpose("y", "x").data, (chunk, chunk)).astype(np.float32)
    valid = None
    if "valid" in ds:
        valid = as_dask(ds["valid"].transpose("y", "x").data, (chunk, chunk)).astype(bool)
    return disp, dem, valid


def model_attrs(
    wrapped: Any,
    dev: Any,
    plan: tuple[int, int, int],
    window: int,
    stride: int,
    batch_size: int,
    lam: float | None = None,
) -> dict[str, Any]:
    """Provenance (``insar_denoise_*`` attrs) of a model run; ``plan`` is (tile side used,
    overlap, block side); ``lam`` for window models."""
    used, overlap, chunk = plan
    attrs = {
        "insar_denoise_model": wrapped.name,
        "insar_denoise_model_id": str(wrapped.metadata.get("model_id", "custom")),
        "insar_denoise_tile_px": used,
        "insar_denoise_overlap_px": overlap,
        "insar_denoise_window": window,
        "insar_denoise_stride": int(stride),
        "insar_denoise_chunk_px": chunk,
    }
    if lam is not None:
        attrs["insar_denoise_lambda"] = float(lam)
    attrs["insar_denoise_device"] = str(dev)
    attrs["insar_denoise_batch_size"] = int(batch_size)
    return attrs


def times_in_days(time: xr.DataArray | np.ndarray) -> np.ndarray:
    """Acquisition times as float64 days since the first date (datetime64 or numbers)."""
    t = np.asarray(time)
    if np.issubdtype(t.dtype, np.datetime64):
        return ((t - t[0]) / np.timedelta64(1, "D")).astype(np.float64)
    return t.astype(np.float64) - float(t[0])


def default_chunk(tile: int, overlap: int, most: int | None = None) -> int:
    """Default block core side in pixels: 6 tile steps (``tile - overlap``), at least a tile;
    ``most``: at most this (but still a tile), where a block's memory grows with its side.

    Tiles straddling a block border are computed by both blocks: with ``k`` steps per block
    about ``((k + 1) / k)^2`` tiles are run per scene tile (1.36 for ``k = 6``).
    """
    side = 6 * (tile - overlap)
    return max(tile, side if most is None else min(side, most))


#: dates of a ``(T, h, w)`` window read per dask compute (:func:`read_window`)
DATES_PER_READ = 20


def read_window(a: Any, per_read: int | None = None) -> Any:
    """A dask window computed into numpy in this thread (``(T, h, w)``: ``per_read`` dates
    at a time, default :data:`DATES_PER_READ`, into one array); anything else as it is.

    One compute of the whole window would hold every input chunk it touches (up to 4 per
    date when it crosses chunk borders: 4x the window) until it concatenates them, and
    worker threads would keep that memory in their own heaps."""
    if not hasattr(a, "dask"):
        return a
    if a.ndim != 3:
        return a.compute(scheduler="sync")
    step = int(per_read or DATES_PER_READ)
    out = np.empty(a.shape, a.dtype)
    for t in range(0, a.shape[0], step):
        out[t : t + step] = a[t : t + step].compute(scheduler="sync")
    return out


def as_dask(values: Any, chunks: tuple[int, ...]) -> da.Array:
    """``values`` as a dask array (unchanged if it already is one)."""
    if isinstance(values, da.Array):
        return values
    return da.from_array(np.asarray(values), chunks=chunks)


def check_dataset(ds: xr.Dataset, need_dem: bool) -> None:
    """``InputError`` naming what is missing or malformed in a canonical Dataset."""
    if "displacement" not in ds:
        raise InputError("the dataset has no 'displacement' variable (time, y, x) in mm")
    if set(ds["displacement"].dims) != {"time", "y", "x"}:
        raise InputError(f"displacement must have dims (time, y, x), got {ds.displacement.dims}")
    if need_dem and "dem" not in ds:
        raise InputError("the dataset has no 'dem' variable (y, x) in m, needed by this method")
    if ds.sizes["time"] < 2:
        raise InputError(f"need at least 2 dates, got {ds.sizes['time']}")


def tile_plan(
    meta: dict,
    tile: int | None,
    overlap: int | None,
    hw: tuple[int, int],
    padded_from: tuple[int, int] | None = None,
) -> tuple[int, int, tuple[int, int], int | str]:
    """Checked tile and overlap (px), the tile shape used on this scene and its description
    (``padded_from``: the input's size when the scene ``hw`` is it padded)."""
    h, w = hw
    multiple = int(meta["tile_multiple"])
    if tile is not None and int(tile) < multiple:
        raise ConfigError(
            f"tile={tile} px is too small: at least the model's tile multiple, {multiple} px "
            f"(leave it out for the default, {meta['default_tile']} px)"
        )
    asked = tile is not None
    tile = round_up(int(tile or meta["default_tile"]), multiple)
    overlap = int(meta["default_overlap"] if overlap is None else overlap)
    if overlap < 0:
        raise ConfigError(f"overlap={overlap} px must be 0 or more")
    if overlap >= tile:
        raise ConfigError(
            f"overlap={overlap} px must be smaller than tile={tile} px: "
            "lower overlap= or raise tile="
        )
    # below the model's own default and half its receptive field (or tile): seams may show
    context = min(int(meta["receptive_field_px"]) // 2, tile // 2, int(meta["default_overlap"]))
    if overlap < context:
        log.warning(
            "overlap %d px is less than %d px (the model's default overlap, at most half "
            "its %s px receptive field): tile edges may show",
            overlap,
            context,
            meta["receptive_field_px"],
        )
    tile_hw = (
        min(tile, round_up(h + 2 * overlap, multiple)),
        min(tile, round_up(w + 2 * overlap, multiple)),
    )
    if tile_hw == (tile, tile):
        return tile, overlap, tile_hw, tile
    return tile, overlap, tile_hw, _clamped(tile, tile_hw, (h, w), overlap, asked, padded_from)


def _clamped(
    tile: int,
    tile_hw: tuple[int, int],
    hw: tuple[int, int],
    overlap: int,
    asked: bool,
    padded_from: tuple[int, int] | None = None,
) -> int | str:
    """Say that ``tile`` was cut to the scene plus its overlap (a warning when the caller
    asked for it, else info); return the tile used (px, or ``HxW`` when not square)."""
    used = tile_hw[0] if tile_hw[0] == tile_hw[1] else f"{tile_hw[0]}x{tile_hw[1]}"
    scene = f"{hw[0]}x{hw[1]} px"
    if padded_from is not None:
        scene = f"{padded_from[0]}x{padded_from[1]} px, padded to {scene}"
    log.log(
        logging.WARNING if asked else logging.INFO,
        "tile=%d px is larger than the scene (%s) plus overlap=%d px: tiles of %s px used",
        tile,
        scene,
        overlap,
        used,
    )
    return used


def min_valid_dates(value: int | None, n_dates: int, window: int | None) -> int:
    """``min_valid_dates``, defaulted and checked (``ConfigError`` naming the option)."""
    if value is None:
        return masks.default_min_valid_dates(n_dates, window)
    if not 2 <= int(value) <= n_dates:
        raise ConfigError(f"--min-valid-dates {value}: must be between 2 and {n_dates} (dates)")
    return int(value)
