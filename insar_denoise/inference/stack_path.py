"""The model branch of :func:`.engine.denoise_dataset` for whole-stack models (``kind: stack``).

Blocks are aligned with one another (:mod:`.stack_runner`) and the scene-wide step (the
significance gate, :mod:`.significance`; the Wiener step of :mod:`.broad_scales` on scenes
under :data:`GATE_MIN_PX`) needs the whole result, so the finish has two forms:

- **in memory** (numpy inputs, or series up to :data:`IN_MEMORY_MAX_BYTES`): the whole
  result is computed at once (:func:`.stack_runner.assemble_aligned`);
- **streamed** (larger lazy inputs): through disk (:mod:`.stack_stream`), memory bounded by
  a block or a date, the same gate.
"""

from __future__ import annotations

import json
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from insar_denoise.errors import InputError
from insar_denoise.inference import broad_scales as bs
from insar_denoise.inference import creep_model, fine_scales, scene_edges, stratification
from insar_denoise.inference.assembly import to_dataset
from insar_denoise.inference.bilaplacian_support import SECOND_DETECTOR_ATTR, support_step
from insar_denoise.inference.creep_model import CREEP_ATTR, creep_series
from insar_denoise.inference.fault_trace import TRACE_ATTR, trace_step
from insar_denoise.inference.planning import (
    EngineJob,
    as_dask,
    block_inputs,
    default_chunk,
    min_valid_dates,
    model_attrs,
    tile_plan,
)
from insar_denoise.inference.relief import RELIEF_MM_ATTR, RELIEF_RATIO_ATTR
from insar_denoise.inference.significance import (
    LINEAR_SEGMENTS,
    N_REALISATIONS,
    band_floors,
    gate_noise_maps,
    gate_opened,
    gate_series,
    hat_matrix,
    small_extent_px,
)
from insar_denoise.inference.step_scan import broad_step_variance
from insar_denoise.inference.stratification import (
    STRAT_ATTR,
    Correction,
    corrected,
    plan,
    relief_and_gate_noise,
)
from insar_denoise.inference.tiling import count_tiles, iter_tiled_blocks
from insar_denoise.inference.unwrapping import MIN_DATES as UNWRAP_MIN_DATES
from insar_denoise.inference.unwrapping import UNWRAP_ATTR, unwrapping_fix

#: lazy scenes whose series (float32 bytes) exceed this are streamed through disk
IN_MEMORY_MAX_BYTES = 200_000_000
#: lazy scenes whose series exceeds this skip the stratified-delay correction (its relief
#: check reads the whole stack before the network: +60 s at 1024² x 100 dates on one thread)
CORRECT_MAX_BYTES = 200_000_000
#: largest default block core side (px): a block holds its whole (T, h, w) series and the
#: outputs (1024² x 100 dates, tiles of 192 px: peak RSS 1.33 GB at 512 px, 2.14 GB at 768)
BLOCK_MAX_PX = 512
#: significance gate (:mod:`.significance`) instead of the Wiener step on the broad scales
GATE = True
#: two-sided 95 % quantile of a Gaussian: the kept stratification trend's variance enters the
#: 95 % band scaled by its square
Z95 = 1.96
#: the gate needs room for its largest scale: smaller scenes are padded to this size
GATE_MIN_PX = small_extent_px()
#: scenes under :data:`GATE_MIN_PX` are padded with invalid pixels up to it and run the
#: gated path (:func:`denoise_padded`); False: they keep the Wiener step of
#: :mod:`.broad_scales` (``benchmarks/small_scenes.py`` compares the two)
PAD_SMALL = True
#: result attribute recording the padding of a small scene
PAD_ATTR = "insar_denoise_padded_to_px"


def denoise_stack(job: EngineJob, wrapped: Any, dev: Any) -> xr.Dataset:
    """Denoise ``job.src`` (``(T, H, W)`` DataArray of ``job.ds``) with a whole-stack model."""
    n_dates, h, w = job.src.shape
    if GATE and PAD_SMALL and min(h, w) < GATE_MIN_PX:
        return denoise_padded(job, wrapped, dev)
    gated = GATE and min(h, w) >= GATE_MIN_PX
    jumps = _unwrapping(job)  # may correct job.src (and set the errors' rims missing)
    # may correct job.src; the date variances of an unchanged stack are reused
    fix, date_var = _stratification(job, wrapped) if gated else (None, None)
    date_var = None if fix else date_var
    # may correct job.src; its date variances serve on if it did not
    creep, date_var = _creep(job, wrapped, date_var) if gated else (None, date_var)
    ds, src, days, attrs, lazy = job.ds, job.src, job.days, job.attrs, job.lazy
    fn, blocks, chunk, date_var = _setup(job, wrapped, dev, None if creep is not None else date_var)
    disp, dem, valid = block_inputs(ds, src, chunk)
    segments = int(wrapped.metadata.get("segments", 4))
    args = (fn, disp, dem, valid, blocks, days, date_var, segments, job.return_noise, fix)
    # only gated scenes stream (a scene under 160 px with a series over 200 MB is not real)
    streamed = gated and lazy and n_dates * h * w * 4 > IN_MEMORY_MAX_BYTES
    if not streamed:
        arrays, gain, notes = _finish_in_memory(*args, lazy, job.denoise_fine_scales)
    else:
        arrays, gain, notes = _finish_streamed(*args, chunk, job.denoise_fine_scales)
    relief, trace, second = notes
    deformation, cumulative, noise, sigma, detection, gate_maps = arrays
    if creep is not None:  # the fault's model, taken out before the network, added back
        deformation, cumulative = deformation + creep, cumulative + creep[-1]
    if fix is not None and noise is not None:  # the removed delay is part of the noise
        delay = fix.delay(dem if lazy else np.asarray(dem))
        noise = noise + (delay - delay[:1])
    if jumps is not None and noise is not None:  # the removed unwrapping errors too
        noise = noise + jumps  # dask for lazy inputs; NaN on their rims, set missing
    if job.denoise_fine_scales:
        attrs[fine_scales.FINE_ATTR] = (
            f"denoised: kept where their local power exceeds {fine_scales.KEEP_RATIO}x the noise's"
            if gated
            else f"skipped: scene under {GATE_MIN_PX} px (no gate)"
        )
    key = "insar_denoise_significance_z" if gated else "insar_denoise_broad_gain"
    attrs[key] = json.dumps([round(float(g), 3) for g in gain if np.isfinite(g)])
    if relief is not None:
        _note_relief(attrs, *relief)
    if trace is not None:
        attrs[TRACE_ATTR] = trace
    if second:
        attrs[SECOND_DETECTOR_ATTR] = json.dumps(second)
    out = to_dataset(ds, src, deformation, cumulative, noise, attrs)
    trend_var = None if fix is None else fix.trend_variance(dem if lazy else np.asarray(dem))
    if second and "broad_step" in second:  # one date's atmosphere is in the step map
        step_var = broad_step_variance(date_var, int(second["broad_step"]["date_index"]))
        trend_var = step_var if trend_var is None else trend_var + step_var
    if second and "gate_ramp" in second:  # the history's amplitude is fitted: its error
        ramp_var = gate_ramp_variance(cumulative, second["gate_ramp"])  # scales the map
        trend_var = ramp_var if trend_var is None else trend_var + ramp_var
    return _add_maps(out, wrapped.metadata, sigma, detection, lazy, gate_maps, trend_var)


def padded_dataset(ds: xr.Dataset, size: int) -> tuple[xr.Dataset, tuple[slice, slice]]:
    """``ds`` padded on both sides of ``y`` and ``x`` to at least ``size`` pixels with
    invalid pixels (NaN displacement and DEM, ``valid`` False), its coordinates continued
    at the grid's spacing; and the slices of the original grid in the padded one."""
    h, w = ds.sizes["y"], ds.sizes["x"]
    pads = {dim: max(0, size - n) for dim, n in (("y", h), ("x", w))}
    widths = {dim: (p // 2, p - p // 2) for dim, p in pads.items()}
    out = ds.pad(widths, mode="constant")
    for dim, (before, _) in widths.items():
        c = np.asarray(ds[dim].values, dtype=np.float64)
        step = c[1] - c[0] if c.size > 1 else 1.0
        out = out.assign_coords({dim: c[0] + step * (np.arange(out.sizes[dim]) - before)})
    if "valid" in ds:
        out["valid"] = out["valid"].fillna(False).astype(bool)
    inner = tuple(slice(widths[d][0], widths[d][0] + n) for d, n in (("y", h), ("x", w)))
    return out, inner


def denoise_padded(job: EngineJob, wrapped: Any, dev: Any) -> xr.Dataset:
    """A scene under :data:`GATE_MIN_PX` on either side, denoised padded with invalid pixels
    up to it (:func:`padded_dataset`): the gate, the trace and creep steps and the second
    detector then run as on a large scene with holes, which they handle (Benchmark v2
    crops of 72 x 48 px, ``benchmarks/small_scenes.py``); the result is cut back to the
    input's grid, coordinates and transform."""
    original = job.ds
    big, (rows, cols) = padded_dataset(original, GATE_MIN_PX)
    job.padded_from = tuple(job.src.shape[1:])
    job.ds, job.src = big, big["displacement"].transpose("time", "y", "x")
    job.attrs[PAD_ATTR] = json.dumps([int(big.sizes["y"]), int(big.sizes["x"])])
    with scene_edges.padded_scene(rows, cols):
        out = denoise_stack(job, wrapped, dev).isel(y=rows, x=cols)
    out = out.assign_coords(y=original["y"].values, x=original["x"].values)
    if original.rio.crs is not None:
        out = out.rio.write_crs(original.rio.crs).rio.write_transform(original.rio.transform())
    return out


def gate_ramp_variance(cumulative, note: dict):
    """The variance (mm²) the fitted amplitude of :mod:`.gate_history` adds to the map:
    ``(sd / amplitude)² x (cumulative - median)²`` (numpy or dask)."""
    rel = (note["amplitude_sd"] / max(abs(note["amplitude"]), 1e-12)) ** 2
    level = np.nanmedian(np.asarray(cumulative))
    return rel * (cumulative - level) ** 2


def _note_relief(attrs: dict, ratio: float, mm: float) -> None:
    """Record the relief check (:mod:`.relief`) in the attributes (NaN: no relief)."""
    attrs[RELIEF_RATIO_ATTR] = round(ratio, 3) if np.isfinite(ratio) else "nan"
    attrs[RELIEF_MM_ATTR] = round(mm, 3) if np.isfinite(mm) else "nan"


def _unwrapping(job: EngineJob) -> Any:
    """Remove the unwrapping errors of single dates (:mod:`.unwrapping`) from ``job.src``;
    the note goes to :data:`.unwrapping.UNWRAP_ATTR`. Returns what was removed ``(T, H, W)``
    mm (dask for a lazy ``job.src``), or None when nothing was (or the scene is too large to
    search)."""
    n_dates = job.src.shape[0]
    if not job.fix_unwrapping:
        job.attrs[UNWRAP_ATTR] = "off"
        return None
    if n_dates < UNWRAP_MIN_DATES:
        job.attrs[UNWRAP_ATTR] = f"skipped: {n_dates} dates (at least {UNWRAP_MIN_DATES})"
        return None
    dem = job.ds["dem"].transpose("y", "x").values if "dem" in job.ds else None
    wavelength = job.ds.attrs.get("wavelength_mm")
    dates = np.datetime_as_string(np.asarray(job.src["time"].values), unit="D")
    if job.lazy:  # read one date at a time, the removal applied lazily (any series size)
        disp = as_dask(job.src.data, (1, 512, 512)).astype(np.float32)
    else:
        disp = np.asarray(job.src.values, dtype=np.float32)
    removed_mm, note = unwrapping_fix(disp, dem, wavelength, dates)
    job.attrs[UNWRAP_ATTR] = note
    if removed_mm is None:
        return None
    job.src = job.src.copy(data=disp - removed_mm)
    return removed_mm


def _stratification(job: EngineJob, wrapped: Any) -> tuple[Correction | None, Any]:
    """The relief check of the input stack and, when it flags a stack of enough dates, the
    stratified-delay correction (:mod:`.stratification`): ``job.src`` is replaced by the
    corrected stack and the note goes to :data:`.stratification.STRAT_ATTR`. Returns the
    correction (or None) and the input's date variances (None when not computed)."""
    from insar_denoise.inference.stack_runner import scene_date_variances

    if "dem" not in job.ds:
        return None, None
    meta, src = wrapped.metadata, job.src
    need = stratification.MIN_DATES
    if src.shape[0] < need:  # too few dates to correct: the relief terms serve
        job.attrs[STRAT_ATTR] = f"skipped: {src.shape[0]} dates (at least {need})"
        return None, None
    if job.lazy and src.size * 4 > CORRECT_MAX_BYTES:
        job.attrs[STRAT_ATTR] = (
            f"skipped: series over {CORRECT_MAX_BYTES // 10**6} MB (the check would read the "
            "whole stack once more); the relief check and its noise terms still run"
        )
        return None, None
    disp = as_dask(src.data, (1, 512, 512)).astype(np.float32)
    crop = int(meta.get("train_crop_px", meta["default_tile"]))
    date_var = scene_date_variances(disp, crop)
    dem = job.ds["dem"].transpose("y", "x")
    fix, _, note = plan(
        disp, dem.data, job.days, date_var, int(meta.get("segments", 4)), N_REALISATIONS
    )
    job.attrs[STRAT_ATTR] = note
    if fix is not None:
        job.src = corrected(src, dem, fix)
    return fix, date_var


def _creep(job: EngineJob, wrapped: Any, date_var: np.ndarray | None) -> tuple:
    """Fit a creeping fault's dislocation (:mod:`.creep_model`) and take its series out of
    ``job.src``; the note goes to :data:`.creep_model.CREEP_ATTR`. Returns the model series
    ``(T, H, W)`` mm relative to the first date (to add back), or None, and the input's date
    variances (``date_var``, or those estimated here; None when skipped). Series up to
    :data:`.creep_model.MAX_BYTES` (larger ones keep the band restoration of
    :mod:`.fault_trace`)."""
    from insar_denoise.inference.stack_runner import scene_date_variances

    src, meta = job.src, wrapped.metadata
    if src.size * 4 > creep_model.MAX_BYTES:
        job.attrs[CREEP_ATTR] = f"skipped: series over {creep_model.MAX_BYTES // 10**6} MB"
        return None, date_var
    disp = np.asarray(src.values, dtype=np.float32)
    if date_var is None:
        crop = int(meta.get("train_crop_px", meta["default_tile"]))
        date_var = scene_date_variances(as_dask(disp, (1, 512, 512)), crop)
    dem = job.ds["dem"].transpose("y", "x").values if "dem" in job.ds else None
    segments = int(meta.get("segments", 4))
    series, note = creep_series(disp - disp[:1], dem, job.days, date_var, segments)
    job.attrs[CREEP_ATTR] = note
    if series is None:
        return None, date_var
    job.src = src.copy(data=disp - series)
    return series, date_var


def _setup(
    job: EngineJob, wrapped: Any, dev: Any, date_var: np.ndarray | None = None
) -> tuple[Any, list, int, np.ndarray]:
    """The block denoiser, the blocks, the block side and the scene's date variances
    (``date_var`` when given: already estimated on ``job.src``)."""
    from insar_denoise.inference.devices import configure_threads, fit_batch_size
    from insar_denoise.inference.runner import Progress
    from insar_denoise.inference.stack_runner import (
        StackBlockDenoiser,
        min_dates,
        scene_date_variances,
    )

    configure_threads()
    meta, src = wrapped.metadata, job.src
    n_dates, h, w = src.shape
    if n_dates < min_dates(wrapped):
        raise InputError(
            f"the stack has {n_dates} dates but the model needs at least {min_dates(wrapped)} "
            "dates (its min_valid_dates); add dates or use a classical method="
        )
    tile, overlap, tile_hw, used = tile_plan(meta, job.tile, job.overlap, (h, w), job.padded_from)
    chunk = int(job.chunk or default_chunk(tile, overlap, BLOCK_MAX_PX))
    batch_size = job.batch_size or max(1, min(16, fit_batch_size(tile_hw, n_dates, dev)))
    need = min_valid_dates(job.min_valid_dates, n_dates, min_dates(wrapped))
    job.attrs["insar_denoise_min_valid_dates"] = need
    disp = as_dask(src.data, (n_dates, chunk, chunk)).astype(np.float32)
    crop = int(meta.get("train_crop_px", meta["default_tile"]))
    if date_var is None:
        date_var = scene_date_variances(disp, crop)
    days = job.days
    fn = StackBlockDenoiser(wrapped, dev, tile, overlap, days, batch_size, None, need, date_var)
    blocks = list(iter_tiled_blocks((h, w), chunk, tile_hw, overlap, fn.margin))
    fn.progress = Progress(count_tiles(blocks), job.progress)
    job.attrs.update(model_attrs(wrapped, dev, (used, overlap, chunk), n_dates, 1, batch_size))
    return fn, blocks, chunk, date_var


def _finish_in_memory(
    fn, disp, dem, valid, blocks, days, date_var, segments, noisy, fix, lazy, fine=False
):
    """The whole result computed at once, the broad scales shrunk on the full grid
    (``fine``: :mod:`.fine_scales` last)."""
    from insar_denoise.inference.stack_runner import assemble_aligned

    n_dates = disp.shape[0]
    stacked = assemble_aligned(fn, disp, dem, valid, blocks)
    series, cumulative = stacked[:n_dates], stacked[n_dates]
    detection, sigma = stacked[n_dates + 1], stacked[n_dates + 2]
    disp, series, cumulative, detection, sigma = dask.compute(
        disp, series, cumulative, detection, sigma, scheduler="threads"
    )
    referenced = disp - disp[:1]  # relative to the first date, as the outputs
    gate_maps, relief, trace, second = None, None, None, None
    if GATE and min(series.shape[1:]) >= GATE_MIN_PX:
        noise, projection, line_noise, line = gate_noise_maps(referenced, days, date_var, segments)
        dem_np = None if dem is None else np.asarray(dem)
        relief, noise, line_noise = relief_and_gate_noise(
            fix, noise, projection, line_noise, referenced, dem_np, days, date_var, segments
        )
        maps = (noise, projection, line_noise, line)
        series, g, gain, noise_sd, trace, second = gated_finish(
            series, referenced, dem, days, date_var, segments, maps, fine
        )
        gate_maps = (g, noise_sd)
    else:
        series, gain = bs.shrink_broad_scales(series, referenced - series, days, date_var, segments)
    cumulative = series[-1] - series[0]
    deformation = np.where(np.isfinite(disp), series, np.nan)
    noise = referenced - deformation if noisy else None
    if lazy:
        deformation, cumulative = da.from_array(deformation), da.from_array(cumulative)
        noise = None if noise is None else da.from_array(noise)
    return (deformation, cumulative, noise, sigma, None, gate_maps), gain, (relief, trace, second)


def gated_finish(
    series: np.ndarray,
    referenced: np.ndarray,
    dem: Any,
    days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    maps: tuple,
    fine: bool = False,
) -> tuple:
    """The in-memory finish once the gate's maps are made (:func:`.significance.gate_series`,
    :func:`.fault_trace.trace_step`, then :func:`.bilaplacian_support.support_step` and,
    with ``fine``, :mod:`.fine_scales`): ``(series, gate, largest z per filter, noise_sd,
    trace note, the second detector's note)``. ``referenced (T, H, W)``: the input relative
    to the first date; ``maps``: ``(noise, projection, line_noise, line)`` with their relief
    terms."""
    series, g, gain, noise_sd = gate_series(series, referenced, days, date_var, segments, maps)
    hat = hat_matrix(days, date_var, segments)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    line = (maps[3], hat_matrix(days, date_var, LINEAR_SEGMENTS))
    trace = trace_step(series, rows, maps[1], dem, hat, days, line)
    series, g, second = support_step(series, g, maps, days, dem, rows, date_var, beyond=True)
    if fine:  # in place, on the series support_step returns
        removal = fine_scales.removal_map(maps[1], maps[0], g, series.shape[1:])
        fine_scales.shrink_fine_scales(series, removal)
    return series, g, gain, noise_sd, trace, second


def _finish_streamed(
    fn, disp, dem, valid, blocks, days, date_var, segments, noisy, fix, chunk, fine=False
):
    """The result on disk (:mod:`.stack_stream`), returned as lazy arrays reading it."""
    from insar_denoise.inference.stack_stream import denoise_streamed, detection_base

    n_dates = disp.shape[0]
    series, maps, gain, gate_maps, notes = denoise_streamed(
        fn, disp, dem, valid, blocks, days, date_var, segments, fix, fine
    )
    base = detection_base(maps)
    lazy_series = series.to_dask((n_dates, chunk, chunk))
    lazy_maps = maps.to_dask((1, chunk, chunk))
    deformation = da.where(da.isfinite(disp), lazy_series, np.nan)
    noise = (disp - disp[:1]) - deformation if noisy else None
    # the gate's two maps, read lazily from its working store on disk
    lazy_gate = tuple(m.store.to_dask((1, chunk, chunk))[m.index] for m in gate_maps)
    return (deformation, lazy_maps[0], noise, lazy_maps[2], base, lazy_gate), gain, notes


def _add_maps(
    out: xr.Dataset, meta: dict, sigma, detection, lazy: bool, gate_maps=None, trend_var=None
) -> xr.Dataset:
    """Add ``uncertainty``, ``uncertainty_95`` and ``detection`` (relative to the median of
    the valid area, the default reference; ``detection``: that median when streamed). With
    the significance gate (``gate_maps``: the gate and the cumulative's noise std), the bands
    are at least :func:`.significance.band_floors`: multiples of that noise std, larger where
    the gate is off (the output is zero there; a signal under the detection limit may be)
    and where it opened everywhere (the network's map is returned whole). ``trend_var``
    (mm²): the variance of the stratification trend a corrected stack keeps
    (:meth:`.stratification.Correction.trend_variance`) and of a broad step's date noise
    (:func:`.step_scan.broad_step_variance`), added to both bands in quadrature."""
    cal = meta.get("sigma_calibration") or {"k68": 1.0, "k95": 1.96}
    detect_mm = float(meta.get("detect_mm", 1.0))
    coords = out["cumulative_deformation"].coords
    mm = {"units": "mm", "calibration": json.dumps(cal)}
    long68 = "1-sigma uncertainty of the cumulative deformation (68 % half-width)"
    u68, u95 = sigma * float(cal["k68"]), sigma * float(cal["k95"])
    if gate_maps is not None:
        f68, f95 = band_floors(*gate_maps, opened=gate_opened(gate_maps[0]))
        u68, u95 = np.fmax(u68, f68), np.fmax(u95, f95)
    if trend_var is not None:  # independent of the noise the bands hold: add the variances
        u68 = (u68 * u68 + trend_var) ** 0.5
        u95 = (u95 * u95 + Z95 * Z95 * trend_var) ** 0.5
    out["uncertainty"] = xr.DataArray(
        u68, coords=coords, dims=("y", "x"), attrs={**mm, "long_name": long68}
    )
    out["uncertainty_95"] = xr.DataArray(
        u95,
        coords=coords,
        dims=("y", "x"),
        attrs={**mm, "long_name": "95 % half-width of the cumulative deformation"},
    )
    cumulative = out["cumulative_deformation"].data
    if detection is None:
        detection = bs.detection_map(np.asarray(cumulative), np.asarray(u68), detect_mm)
        detection = da.from_array(detection) if lazy else detection
    else:  # streamed: block by block from the scene's median
        detection = da.map_blocks(
            bs.detection_from_base, cumulative, u68, detect_mm, detection, dtype=np.float32
        )
    out["detection"] = xr.DataArray(
        detection,
        coords=coords,
        dims=("y", "x"),
        attrs={
            "units": "1",
            "long_name": f"probability that |cumulative deformation| > {detect_mm:g} mm "
            "(relative to the reference)",
            "threshold_mm": detect_mm,
        },
    )
    return out
