"""``denoise_dataset``: a whole canonical Dataset through the model (or a classical baseline).

The scene is cut into blocks (:mod:`.tiling`), each a dask task that reads its core plus
context, denoises it (:class:`.runner.BlockDenoiser` or :class:`.classical.ClassicalBlock`)
and returns its core; the blocks are assembled with ``dask.array.block``
(:func:`.assembly.assemble`). Nothing is computed until the result is (e.g. when written),
and memory is bounded by the block size times the number of dask workers. Whole-stack models
go through :mod:`.stack_path` (their blocks are aligned with one another: in memory for
small scenes, streamed through disk for large ones). A numpy-backed input is computed before
returning. Option checks and the tile plan live in :mod:`.planning`.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from insar_denoise import baselines
from insar_denoise._version import __version__
from insar_denoise.errors import ConfigError
from insar_denoise.inference import masks
from insar_denoise.inference.assembly import assemble as _assemble
from insar_denoise.inference.assembly import to_dataset as _to_dataset
from insar_denoise.inference.classical import ClassicalBlock
from insar_denoise.inference.classical import elevation_sums as _elevation_sums
from insar_denoise.inference.planning import (
    EngineJob,
    block_inputs,
    default_chunk,
    model_attrs,
    times_in_days,
)
from insar_denoise.inference.planning import check_dataset as _check_dataset
from insar_denoise.inference.planning import min_valid_dates as _min_valid_dates
from insar_denoise.inference.planning import tile_plan as _tile_plan
from insar_denoise.inference.tiling import count_tiles, iter_blocks, iter_tiled_blocks
from insar_denoise.inference.windows import DEFAULT_LAMBDA, combination_matrix, window_starts
from insar_denoise.methods import CLASSICAL_METHODS, METHODS
from insar_denoise.models.registry import ModelLike

__all__ = [
    "CLASSICAL_METHODS",
    "METHODS",
    "ClassicalBlock",
    "default_chunk",
    "denoise_dataset",
    "times_in_days",
]


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
    fix_unwrapping: bool = True,
    denoise_fine_scales: bool = False,
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
    chunk : block core side in pixels (default: 6 tile steps, at least a tile; at most 512 px
        for whole-stack models, whose blocks hold every date).
    sigma_px : Gaussian filter sigma in pixels for ``filter`` and ``best``.
    lam : second-difference regularisation weight of the window combination (see
        :mod:`insar_denoise.inference.windows`).
    deramp : remove each date's least-squares plane first (:mod:`.deramp`; off by default:
        it deletes broad signals). ``noise`` is then relative to the original input.
    min_valid_dates : a pixel finite on at least this many dates is kept (its missing dates
        are NaN in ``deformation`` and ``noise``); default
        :func:`~insar_denoise.inference.masks.default_min_valid_dates` (half the dates, at
        least the model window).
    fix_unwrapping : whole-stack models, stacks of at least 12 dates: remove regions offset
        by whole half wavelengths on one date only first (:mod:`.unwrapping`; the removed
        jumps are part of ``noise``, the attribute ``insar_denoise_unwrapping`` lists them).
    denoise_fine_scales : whole-stack models, gated scenes (160 px or more): inside the
        open gate, take out each date's fine scales where the stack's own do not stand above
        their noise (:mod:`.fine_scales`; lower RMSE on broad sources, but the peak of a
        compact source can lose 5-7 % of its amplitude; off by default).

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
        return _denoise_deramped(ds, model, locals())
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    _check_dataset(ds, need_dem=method in ("model", "elevation", "filter", "best"))
    src = ds["displacement"].transpose("time", "y", "x")
    attrs: dict[str, Any] = {"insar_denoise_method": method, "insar_denoise_version": __version__}
    job = EngineJob(
        ds,
        src,
        times_in_days(ds["time"].values),
        isinstance(src.data, da.Array),
        attrs,
        tile=tile,
        overlap=overlap,
        window=window,
        stride=stride,
        batch_size=batch_size,
        progress=progress,
        return_noise=return_noise,
        chunk=chunk,
        lam=lam,
        min_valid_dates=min_valid_dates,
        fix_unwrapping=fix_unwrapping,
        denoise_fine_scales=denoise_fine_scales,
    )
    if method != "model":
        chunk = int(chunk or 1024)
        fn, blocks = _classical_plan(method, job.days, sigma_px, src.shape[1:], chunk, attrs)
        return _run_tiled(job, fn, blocks, chunk, None, method)
    from insar_denoise.inference.devices import configure_threads, resolve_device
    from insar_denoise.inference.runner import prepare_model

    dev = resolve_device(device)
    configure_threads()
    wrapped = prepare_model(model, dev)
    if wrapped.metadata.get("kind") == "stack":
        from insar_denoise.inference.stack_path import denoise_stack
        from insar_denoise.inference.stack_runner import check_stack_options

        check_stack_options(window, stride)
        return denoise_stack(job, wrapped, dev)
    fn, blocks, chunk = _window_plan(job, wrapped, dev)
    return _run_tiled(job, fn, blocks, chunk, wrapped.window, method)


def _denoise_deramped(ds: xr.Dataset, model: Any, options: dict) -> xr.Dataset:
    """:func:`denoise_dataset` on the deramped input (:mod:`.deramp`); ``noise`` relative to
    the original input (ramps included)."""
    from insar_denoise.inference.deramp import deramp_dataset

    kw = {k: v for k, v in options.items() if k not in ("ds", "model", "deramp")}
    out = denoise_dataset(deramp_dataset(ds), model, **kw)
    if kw["return_noise"]:
        src = ds["displacement"].transpose("time", "y", "x")
        out["noise"] = (src - src.isel(time=0)) - out["deformation"]
        out["noise"].attrs = {
            "units": "mm",
            "long_name": "input displacement minus denoised displacement (ramps included)",
        }
    out.attrs["insar_denoise_deramp"] = "yes"
    return out


def _classical_plan(method, days, sigma_px, hw, chunk, attrs):
    """Block function and blocks of a classical baseline."""
    fn = ClassicalBlock(method, days, sigma_px)
    depth = baselines.filter_radius_px(sigma_px) if method in ("filter", "best") else 0
    attrs.update(insar_denoise_model="none", insar_denoise_sigma_px=float(sigma_px))
    return fn, list(iter_blocks(hw, chunk, depth))


def _window_plan(job: EngineJob, wrapped: Any, dev: Any) -> tuple[Any, list, int]:
    """Block denoiser, blocks and block side of a window model; provenance into ``job.attrs``."""
    from insar_denoise.inference.devices import fit_batch_size
    from insar_denoise.inference.runner import BlockDenoiser, Progress

    n_dates, h, w = job.src.shape
    meta, n = wrapped.metadata, wrapped.window
    if job.window is not None and int(job.window) != n:
        raise ConfigError(f"window={job.window} but the model was trained for N={n} dates")
    starts = window_starts(n_dates, n, job.stride)
    matrix = combination_matrix(n_dates, n, starts, job.days, job.lam)
    tile, overlap, tile_hw, used = _tile_plan(meta, job.tile, job.overlap, (h, w))
    chunk = int(job.chunk or default_chunk(tile, overlap))
    batch_size = job.batch_size or fit_batch_size(tile_hw, n, dev)
    fn = BlockDenoiser(wrapped, dev, tile, overlap, starts, matrix, batch_size, None)
    blocks = list(iter_tiled_blocks((h, w), chunk, tile_hw, overlap, fn.margin))
    fn.progress = Progress(count_tiles(blocks), job.progress)
    plan = (used, overlap, chunk)
    job.attrs.update(model_attrs(wrapped, dev, plan, n, job.stride, batch_size, lam=job.lam))
    return fn, blocks, chunk


def _run_tiled(
    job: EngineJob, fn: Any, blocks: list, chunk: int, window: int | None, method: str
) -> xr.Dataset:
    """Mask, gap-fill, run every block and build the output (window and classical paths)."""
    n_dates = job.src.shape[0]
    disp, dem, valid = block_inputs(job.ds, job.src, chunk)
    need = _min_valid_dates(job.min_valid_dates, n_dates, window)
    job.attrs["insar_denoise_min_valid_dates"] = need
    keep = masks.valid_pixels(disp, valid, need)
    masked = da.where(keep[None], disp, np.nan).rechunk((-1, chunk, chunk))
    filled = masks.fill_time_gaps_lazy(masked, job.days)  # the model cannot take NaN dates
    extra = ()
    if method in ("elevation", "filter", "best"):
        extra = (_elevation_sums(masked, dem, keep),)
    series = _assemble(fn, filled if method == "model" else masked, dem, None, blocks, extra)
    cumulative = series[-1]
    deformation = masks.restore_gaps(series, disp, keep)
    noise = (disp - filled[:1]) - deformation if job.return_noise else None
    if not job.lazy:
        parts = [deformation, cumulative] + ([noise] if job.return_noise else [])
        computed = dask.compute(*parts, scheduler="threads")
        deformation, cumulative = computed[0], computed[1]
        noise = computed[2] if job.return_noise else None
    return _to_dataset(job.ds, job.src, deformation, cumulative, noise, job.attrs)
