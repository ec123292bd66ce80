"""``denoise_dataset``: a whole canonical Dataset through the model (or a classical baseline).

The scene is cut into blocks (:mod:`.tiling`), each a dask task that reads its core plus
context, denoises it (:class:`.runner.BlockDenoiser` or :class:`ClassicalBlock`) and returns
its core; the blocks are assembled with ``dask.array.block``. Nothing is computed until the
result is (e.g. when written), and memory is bounded by the block size times the number of
dask workers (whole-stack models: the whole result, their blocks are aligned with one another,
:func:`.stack_runner.assemble_aligned`). A numpy-backed input is computed before returning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  registers ds.rio
import xarray as xr

from insar_denoise import baselines
from insar_denoise._version import __version__
from insar_denoise.errors import ConfigError, InputError
from insar_denoise.inference import masks
from insar_denoise.inference.tiling import (
    Block,
    count_tiles,
    iter_blocks,
    iter_tiled_blocks,
    pad_block,
    round_up,
)
from insar_denoise.inference.windows import DEFAULT_LAMBDA, combination_matrix, window_starts
from insar_denoise.models.registry import ModelLike

log = logging.getLogger(__name__)

CLASSICAL_METHODS = baselines.METHODS
#: whole-stack outputs up to this size are finished in memory with the scene-wide
#: broad-scale shrinkage (:mod:`.broad_scales`)
BROAD_SCALES_MAX_BYTES = 1_500_000_000
METHODS = ("model", *CLASSICAL_METHODS)


def times_in_days(time: xr.DataArray | np.ndarray) -> np.ndarray:
    """Acquisition times as float64 days since the first date (datetime64 or numbers)."""
    t = np.asarray(time)
    if np.issubdtype(t.dtype, np.datetime64):
        return ((t - t[0]) / np.timedelta64(1, "D")).astype(np.float64)
    return t.astype(np.float64) - float(t[0])


def default_chunk(tile: int, overlap: int) -> int:
    """Default block core side in pixels: 6 tile steps (``tile - overlap``), at least a tile.

    Tiles straddling a block border are computed by both blocks: with ``k`` steps per block
    about ``((k + 1) / k)^2`` tiles are run per scene tile (1.36 for ``k = 6``).
    """
    return max(tile, 6 * (tile - overlap))


def _as_dask(values: Any, chunks: tuple[int, ...]) -> da.Array:
    if isinstance(values, da.Array):
        return values
    return da.from_array(np.asarray(values), chunks=chunks)


def _check_dataset(ds: xr.Dataset, need_dem: bool) -> None:
    if "displacement" not in ds:
        raise InputError("the dataset has no 'displacement' variable (time, y, x) in mm")
    if set(ds["displacement"].dims) != {"time", "y", "x"}:
        raise InputError(f"displacement must have dims (time, y, x), got {ds.displacement.dims}")
    if need_dem and "dem" not in ds:
        raise InputError("the dataset has no 'dem' variable (y, x) in m, needed by this method")
    if ds.sizes["time"] < 2:
        raise InputError(f"need at least 2 dates, got {ds.sizes['time']}")


class ClassicalBlock:
    """Block function of a classical baseline (:func:`insar_denoise.baselines.classical_series`).

    The elevation fit uses the whole-scene coefficients, and the Gaussian filter sees NaN
    outside the scene, so block-wise results equal a whole-scene run. Every step is NaN-aware
    per date; the series' gaps are then filled in time (:func:`.masks.fill_time_gaps`).
    """

    def __init__(self, method: str, times_days: np.ndarray, sigma_px: float) -> None:
        self.method, self.times_days, self.sigma_px = method, times_days, sigma_px

    def __call__(self, disp, dem, valid, block: Block, sums=None) -> np.ndarray:
        disp = np.asarray(disp, dtype=np.float64)
        ok = np.isfinite(disp).any(0)
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        disp = pad_block(np.where(ok[None], disp, np.nan), block.pad_y, block.pad_x, "nan")
        if dem is not None:
            dem = pad_block(np.asarray(dem, np.float64), block.pad_y, block.pad_x, "nan")
        coef = None if sums is None else baselines.elevation_coefficients_from_sums(*sums)
        series = baselines.classical_series(
            self.method, disp, dem, self.times_days, self.sigma_px, coefficients=coef
        )
        core = block.core_in_extended
        out = masks.fill_time_gaps(series[:, core[0], core[1]], self.times_days)
        out = out.astype(np.float32)
        out[:, ~pad_block(ok, block.pad_y, block.pad_x)[core]] = np.nan
        return out


def _elevation_sums(disp: da.Array, dem: da.Array, ok: da.Array) -> list[da.Array]:
    """Lazy per-date sums (count, h, d, h^2, h d) over valid pixels for the elevation fit."""
    mask = da.isfinite(disp) & da.isfinite(dem)[None] & ok[None]
    d0 = da.where(mask, disp, 0.0).astype(np.float64)
    h0 = da.where(mask, dem[None], 0.0).astype(np.float64)
    return [s.sum(axis=(1, 2)) for s in (mask.astype(np.float64), h0, d0, h0 * h0, h0 * d0)]


def _assemble(
    fn: Callable,
    disp: da.Array,
    dem: da.Array | None,
    valid: da.Array | None,
    blocks: list[list[Block]],
    extra: tuple = (),
    n_out: int | None = None,
) -> da.Array:
    """Run ``fn(disp, dem, valid, block, *extra)`` on every block; return the mosaic of its
    ``(n_out, h, w)`` outputs (default ``n_out``: the number of dates)."""
    n_dates = disp.shape[0] if n_out is None else int(n_out)
    rows = []
    for row in blocks:
        parts = []
        for b in row:
            sy, sx = slice(*b.read_y), slice(*b.read_x)
            args = (
                disp[:, sy, sx],
                None if dem is None else dem[sy, sx],
                None if valid is None else valid[sy, sx],
                b,
                *extra,
            )
            out = dask.delayed(fn, pure=False)(*args)
            parts.append(da.from_delayed(out, shape=(n_dates, *b.core_shape), dtype=np.float32))
        rows.append(parts)
    return da.block(rows)


def denoise_dataset(
    ds: xr.Dataset,
    model: ModelLike = None,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    window: int | None = None,
    stride: int = 1,
    device: str = "auto",
    batch_size: int | None = None,
    method: str = "model",
    progress: bool = True,
    return_noise: bool = True,
    chunk: int | None = None,
    sigma_px: float = 2.0,
    lam: float = DEFAULT_LAMBDA,
    deramp: bool = False,
    min_valid_dates: int | None = None,
) -> xr.Dataset:
    """Denoise a canonical Dataset: cumulative deformation and a denoised series.

    Parameters
    ----------
    ds : canonical Dataset with ``displacement(time, y, x)`` mm relative to the first date,
        ``dem(y, x)`` m and optional ``valid(y, x)`` bool; numpy- or dask-backed.
    model : a :class:`~insar_denoise.models.LoadedModel`, or what
        :func:`~insar_denoise.models.as_model` resolves (None = the packaged ``"default"``,
        a name or path, a module with ``insar_metadata``). Ignored by classical methods.
    tile : tile side in pixels (default: model ``default_tile``), rounded up to a multiple
        of the model's ``tile_multiple``.
    overlap : overlap between tiles and context around blocks in pixels (default: model
        ``default_overlap``); should cover the receptive field.
    window : dates per window; must equal the model's window if given (default: model's).
        Refused by whole-stack models (no window).
    stride : step between window starts in dates (default 1); whole-stack models take 1 only.
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : tiles per model call (default: fitted to free memory).
    method : ``"model"`` or a classical baseline ``raw|elevation|filter|stack|best``.
    progress : show a tqdm bar of tiles done (model method).
    return_noise : also return ``noise`` = input displacement (referred to its first date)
        minus the denoised series.
    chunk : block core side in pixels (default: about 4 x 4 tiles per block).
    sigma_px : Gaussian filter sigma in pixels for ``filter`` and ``best``.
    lam : second-difference regularisation weight of the window combination (see
        :mod:`insar_denoise.inference.windows`).
    deramp : remove each date's least-squares plane first (:mod:`.deramp`; off by default:
        it deletes broad signals). ``noise`` is then relative to the original input.
    min_valid_dates : a pixel finite on at least this many dates is kept (its missing dates
        are NaN in ``deformation`` and ``noise``); default
        :func:`~insar_denoise.inference.masks.default_min_valid_dates` (half the dates, at
        least the model window).

    Returns
    -------
    Dataset with ``cumulative_deformation(y, x)`` (last minus first date),
    ``deformation(time, y, x)`` and, if asked, ``noise(time, y, x)``, all float32 mm
    (whole-stack models add ``detection``, ``uncertainty`` and ``uncertainty_95``); NaN on
    pixels not kept and, in the series, at a kept pixel's missing dates (its cumulative
    bridges them in time); coords, attrs and CRS of ``ds`` carried over, provenance in
    ``insar_denoise_*`` attrs. Dask-backed if ``ds`` is.

    Raises
    ------
    InputError
        Missing variables, wrong dims, or fewer dates than the model window.
    ConfigError
        Unknown method, bad tile/overlap/window, or a window/stride for a whole-stack model.
    """
    if deramp:
        from insar_denoise.inference.deramp import deramp_dataset

        kw = dict(
            tile=tile,
            overlap=overlap,
            window=window,
            stride=stride,
            device=device,
            batch_size=batch_size,
            method=method,
            progress=progress,
            chunk=chunk,
            sigma_px=sigma_px,
            lam=lam,
            min_valid_dates=min_valid_dates,
        )
        out = denoise_dataset(deramp_dataset(ds), model, return_noise=return_noise, **kw)
        if return_noise:
            src = ds["displacement"].transpose("time", "y", "x")
            out["noise"] = (src - src.isel(time=0)) - out["deformation"]
            out["noise"].attrs = {
                "units": "mm",
                "long_name": "input displacement minus denoised displacement (ramps included)",
            }
        out.attrs["insar_denoise_deramp"] = "yes"
        return out
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _check_dataset(ds, need_dem=method in ("model", "elevation", "filter", "best"))
    src = ds["displacement"].transpose("time", "y", "x")
    lazy = isinstance(src.data, da.Array)
    n_dates, h, w = src.shape
    days = times_in_days(ds["time"].values)
    attrs: dict[str, Any] = {"insar_denoise_method": method, "insar_denoise_version": __version__}

    if method == "model":
        from insar_denoise.inference.devices import (
            configure_threads,
            fit_batch_size,
            resolve_device,
        )
        from insar_denoise.inference.runner import BlockDenoiser, Progress, prepare_model

        dev = resolve_device(device)
        configure_threads()
        wrapped = prepare_model(model, dev)
        meta = wrapped.metadata
        if wrapped.kind == "stack":
            from insar_denoise.inference.stack_runner import check_stack_options

            check_stack_options(window, stride)
            return _denoise_stack(
                ds,
                src,
                wrapped,
                dev,
                days,
                attrs,
                tile,
                overlap,
                batch_size,
                progress,
                return_noise,
                chunk,
                lazy,
                min_valid_dates,
            )
        n = wrapped.window
        if window is not None and int(window) != n:
            raise ConfigError(f"window={window} but the model was trained for N={n} dates")
        starts = window_starts(n_dates, n, stride)
        matrix = combination_matrix(n_dates, n, starts, days, lam)
        tile, overlap, tile_hw, used = _tile_plan(meta, tile, overlap, (h, w))
        chunk = int(chunk or default_chunk(tile, overlap))
        batch_size = batch_size or fit_batch_size(tile_hw, n, dev)
        fn = BlockDenoiser(wrapped, dev, tile, overlap, starts, matrix, batch_size, None)
        blocks = list(iter_tiled_blocks((h, w), chunk, tile_hw, overlap, fn.margin))
        fn.progress = Progress(count_tiles(blocks), progress)
        extra = ()
        attrs.update(
            insar_denoise_model=wrapped.name,
            insar_denoise_model_id=str(wrapped.metadata.get("model_id", "custom")),
            insar_denoise_tile_px=used,
            insar_denoise_overlap_px=overlap,
            insar_denoise_window=n,
            insar_denoise_stride=int(stride),
            insar_denoise_chunk_px=chunk,
            insar_denoise_lambda=float(lam),
            insar_denoise_device=str(dev),
            insar_denoise_batch_size=int(batch_size),
        )
    else:
        fn = ClassicalBlock(method, days, sigma_px)
        depth = baselines.filter_radius_px(sigma_px) if method in ("filter", "best") else 0
        chunk = int(chunk or 1024)
        blocks = list(iter_blocks((h, w), chunk, depth))
        extra = ()
        attrs.update(insar_denoise_model="none", insar_denoise_sigma_px=float(sigma_px))

    disp = _as_dask(src.data, (n_dates, chunk, chunk)).astype(np.float32)
    dem = None
    if "dem" in ds:
        dem = _as_dask(ds["dem"].transpose("y", "x").data, (chunk, chunk)).astype(np.float32)
    valid = None
    if "valid" in ds:
        valid = _as_dask(ds["valid"].transpose("y", "x").data, (chunk, chunk)).astype(bool)
    need = _min_valid_dates(min_valid_dates, n_dates, n if method == "model" else None)
    attrs["insar_denoise_min_valid_dates"] = need
    keep = masks.valid_pixels(disp, valid, need)
    masked = da.where(keep[None], disp, np.nan).rechunk((-1, chunk, chunk))
    filled = masks.fill_time_gaps_lazy(masked, days)  # the model cannot take NaN dates
    if method in ("elevation", "filter", "best"):
        extra = (_elevation_sums(masked, dem, keep),)
    series = _assemble(fn, filled if method == "model" else masked, dem, None, blocks, extra)
    cumulative = series[-1]
    deformation = masks.restore_gaps(series, disp, keep)
    noise = (disp - filled[:1]) - deformation if return_noise else None
    if not lazy:
        parts = [deformation, cumulative] + ([noise] if return_noise else [])
        computed = dask.compute(*parts, scheduler="threads")
        deformation, cumulative = computed[0], computed[1]
        noise = computed[2] if return_noise else None
    return _to_dataset(ds, src, deformation, cumulative, noise, attrs)


def _denoise_stack(
    ds,
    src,
    wrapped,
    dev,
    days,
    attrs,
    tile,
    overlap,
    batch_size,
    progress,
    return_noise,
    chunk,
    lazy,
    min_valid_dates=None,
) -> xr.Dataset:
    """The model branch of :func:`denoise_dataset` for whole-stack models (``kind: stack``)."""
    from insar_denoise.inference.broad_scales import detection_map, shrink_broad_scales
    from insar_denoise.inference.devices import configure_threads, fit_batch_size
    from insar_denoise.inference.runner import Progress
    from insar_denoise.inference.stack_runner import (
        StackBlockDenoiser,
        assemble_aligned,
        min_dates,
        scene_date_variances,
    )

    configure_threads()
    meta = wrapped.metadata
    n_dates, h, w = src.shape
    if n_dates < min_dates(wrapped):
        raise InputError(
            f"the stack has {n_dates} dates but the model needs at least {min_dates(wrapped)} "
            "dates (its min_valid_dates); add dates or use a classical method="
        )
    tile, overlap, tile_hw, used = _tile_plan(meta, tile, overlap, (h, w))
    chunk = int(chunk or default_chunk(tile, overlap))
    batch_size = batch_size or max(1, min(16, fit_batch_size(tile_hw, n_dates, dev)))
    need = _min_valid_dates(min_valid_dates, n_dates, min_dates(wrapped))
    attrs["insar_denoise_min_valid_dates"] = need
    disp = _as_dask(src.data, (n_dates, chunk, chunk)).astype(np.float32)
    crop = int(meta.get("train_crop_px", meta["default_tile"]))
    date_var = scene_date_variances(disp, crop)
    fn = StackBlockDenoiser(wrapped, dev, tile, overlap, days, batch_size, None, need, date_var)
    blocks = list(iter_tiled_blocks((h, w), chunk, tile_hw, overlap, fn.margin))
    fn.progress = Progress(count_tiles(blocks), progress)
    attrs.update(
        insar_denoise_model=wrapped.name,
        insar_denoise_model_id=str(meta.get("model_id", "custom")),
        insar_denoise_tile_px=used,
        insar_denoise_overlap_px=overlap,
        insar_denoise_window=n_dates,
        insar_denoise_stride=1,
        insar_denoise_chunk_px=chunk,
        insar_denoise_device=str(dev),
        insar_denoise_batch_size=int(batch_size),
    )
    dem = _as_dask(ds["dem"].transpose("y", "x").data, (chunk, chunk)).astype(np.float32)
    valid = None
    if "valid" in ds:
        valid = _as_dask(ds["valid"].transpose("y", "x").data, (chunk, chunk)).astype(bool)
    stacked = assemble_aligned(fn, disp, dem, valid, blocks)
    series, cumulative = stacked[:n_dates], stacked[n_dates]
    detection, sigma = stacked[n_dates + 1], stacked[n_dates + 2]
    in_memory = not lazy or series.nbytes * 3 <= BROAD_SCALES_MAX_BYTES
    if in_memory:
        disp, series, cumulative, detection, sigma = dask.compute(
            disp, series, cumulative, detection, sigma, scheduler="threads"
        )
        series, gain = shrink_broad_scales(
            series, (disp - disp[:1]) - series, days, date_var, int(meta.get("segments", 4))
        )
        cumulative = series[-1] - series[0]
        attrs["insar_denoise_broad_gain"] = json.dumps(
            [round(float(g), 3) for g in gain if np.isfinite(g)]
        )
    else:
        log.warning(
            "broad-scale shrinkage skipped: the series (%.1f GB) is above %.1f GB in memory; "
            "broad atmosphere passes at the projection's gain",
            series.nbytes / 1e9,
            BROAD_SCALES_MAX_BYTES / 1e9,
        )
    deformation = (da if lazy and not in_memory else np).where(np.isfinite(disp), series, np.nan)
    noise = (disp - disp[:1]) - deformation if return_noise else None
    if lazy and in_memory:
        deformation, cumulative = da.from_array(deformation), da.from_array(cumulative)
        noise = None if noise is None else da.from_array(noise)
    out = _to_dataset(ds, src, deformation, cumulative, noise, attrs)
    cal = meta.get("sigma_calibration") or {"k68": 1.0, "k95": 1.96}
    detect_mm = float(meta.get("detect_mm", 1.0))
    mm = {"units": "mm", "calibration": json.dumps(cal)}
    out["uncertainty"] = xr.DataArray(
        sigma * float(cal["k68"]),
        coords=out["cumulative_deformation"].coords,
        dims=("y", "x"),
        attrs={
            **mm,
            "long_name": "1-sigma uncertainty of the cumulative deformation (68 % half-width)",
        },
    )
    out["uncertainty_95"] = xr.DataArray(
        sigma * float(cal["k95"]),
        coords=out["cumulative_deformation"].coords,
        dims=("y", "x"),
        attrs={**mm, "long_name": "95 % half-width of the cumulative deformation"},
    )
    if in_memory:  # relative to the median of the valid area (the default reference)
        detection = detection_map(
            np.asarray(cumulative), np.asarray(sigma) * float(cal["k68"]), detect_mm
        )
        detection = da.from_array(detection) if lazy else detection
    out["detection"] = xr.DataArray(
        detection,
        coords=out["cumulative_deformation"].coords,
        dims=("y", "x"),
        attrs={
            "units": "1",
            "long_name": f"probability that |cumulative deformation| > {detect_mm:g} mm "
            "(relative to the reference)",
            "threshold_mm": detect_mm,
        },
    )
    return out


def _tile_plan(
    meta: dict, tile: int | None, overlap: int | None, hw: tuple[int, int]
) -> tuple[int, int, tuple[int, int], int | str]:
    """Checked tile and overlap (px), the tile shape used on this scene and its description."""
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
    used = tile if tile_hw == (tile, tile) else _clamped(tile, tile_hw, (h, w), overlap, asked)
    return tile, overlap, tile_hw, used


def _clamped(
    tile: int, tile_hw: tuple[int, int], hw: tuple[int, int], overlap: int, asked: bool
) -> int | str:
    """Say that ``tile`` was cut to the scene plus its overlap (a warning when the caller
    asked for it, else info); return the tile used (px, or ``HxW`` when not square)."""
    used = tile_hw[0] if tile_hw[0] == tile_hw[1] else f"{tile_hw[0]}x{tile_hw[1]}"
    log.log(
        logging.WARNING if asked else logging.INFO,
        "tile=%d px is larger than the scene (%dx%d px) plus overlap=%d px: tiles of %s px used",
        tile,
        *hw,
        overlap,
        used,
    )
    return used


def _min_valid_dates(value: int | None, n_dates: int, window: int | None) -> int:
    """``min_valid_dates``, defaulted and checked (``ConfigError`` naming the option)."""
    if value is None:
        return masks.default_min_valid_dates(n_dates, window)
    if not 2 <= int(value) <= n_dates:
        raise ConfigError(f"--min-valid-dates {value}: must be between 2 and {n_dates} (dates)")
    return int(value)


def _to_dataset(ds, src, deformation, cumulative, noise, attrs) -> xr.Dataset:
    """Wrap the arrays with the input's coords, attrs and CRS."""
    coords3 = src.coords
    coords2 = src.isel(time=0, drop=True).coords
    mm = {"units": "mm", "sign_convention": "positive towards the satellite (LOS)"}
    out = xr.Dataset(
        {
            "cumulative_deformation": xr.DataArray(
                cumulative,
                coords=coords2,
                dims=("y", "x"),
                attrs={**mm, "long_name": "denoised cumulative deformation, last minus first date"},
            ),
            "deformation": xr.DataArray(
                deformation,
                coords=coords3,
                dims=src.dims,
                attrs={**mm, "long_name": "denoised displacement relative to the first date"},
            ),
        },
        attrs={**ds.attrs, **attrs},
    )
    if noise is not None:
        out["noise"] = xr.DataArray(
            noise,
            coords=coords3,
            dims=src.dims,
            attrs={**mm, "long_name": "input displacement minus denoised displacement"},
        )
    crs = ds.rio.crs if "spatial_ref" in ds.coords or ds.rio.crs is not None else None
    if crs is not None:
        out = out.rio.write_crs(crs)
        out = out.rio.write_transform(ds.rio.transform())
    return out
