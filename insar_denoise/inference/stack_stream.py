"""Whole-stack models on scenes larger than memory: blocks streamed through disk.

The in-memory path (:func:`.stack_runner.assemble_aligned`) holds the whole result. Here
the result goes to two :class:`.disk_stack.DiskStack` files, the series ``(T, H, W)`` and the
maps ``(3, H, W)`` (cumulative, detection, sigma), in passes whose memory is one block (or
one date) each, whatever the scene size:

1. every block runs (:meth:`.stack_runner.StackBlockDenoiser.run`) and is written at its
   core; only its per-tile constants are kept;
2. the block constants (:func:`.stack_runner.block_constants`) are subtracted block by block,
   and the significance gate's noise maps (:mod:`.significance`) are computed from the
   input re-read for the block;
3. the gate is found and applied date by date, in row strips (:mod:`.strips`): beyond a
   strip, memory holds two bytes a pixel (the gate's detections) and, while a median is
   taken, one float32 buffer of the map's values.
"""

from __future__ import annotations

import ctypes
import functools

import dask
import numpy as np

from insar_denoise.inference import fine_scales
from insar_denoise.inference import significance as sig
from insar_denoise.inference.bilaplacian_support import support_step
from insar_denoise.inference.disk_stack import DiskStack
from insar_denoise.inference.fault_trace import trace_step
from insar_denoise.inference.planning import read_window
from insar_denoise.inference.significance import noise_maps
from insar_denoise.inference.stack_runner import StackBlockDenoiser, block_constants
from insar_denoise.inference.stratification import Correction, relief_and_gate_noise
from insar_denoise.inference.strips import MapView, median, row_strips
from insar_denoise.inference.tiling import Block

#: blocks in flight at once (each holds its input, its mosaic, its result and the model's
#: activations: ~0.6 GB; one keeps a frame under 2 GB, torch uses the cores within a block)
WORKERS = 1


def _core(b: Block) -> tuple[slice, slice]:
    return slice(*b.core_y), slice(*b.core_x)


def _run_block(fn, block, disp, dem, valid, series: DiskStack, maps: DiskStack):
    """Pass 1: one block through the model, written at its core; its tile constants."""
    # the input computed for this block only: NaN goes into it, not into a copy
    owned = isinstance(disp, np.ndarray) and disp.flags.owndata and disp.flags.writeable
    result, applied = fn.run(disp, dem, valid, block, reuse=owned and disp.dtype == np.float32)
    n_dates = series.shape[0]
    cy, cx = _core(block)
    series[:, cy, cx] = result[:n_dates]
    maps[:, cy, cx] = result[n_dates:]
    return applied


def _shift_block(block, disp, constants, series, maps, combos, noise, partial) -> None:
    """Pass 2: a block moved by its constants; its noise maps (``combos @ input``,
    :func:`.significance.noise_maps`)."""
    cy, cx = _core(block)
    c = np.asarray(constants, np.float32)
    if c.any():
        region = series[:, cy, cx] - c[:, None, None]
        series[:, cy, cx] = region
        cumulative = maps[0, cy, cx]
        cumulative -= c[-1] - c[0]
        maps[0, cy, cx] = cumulative
    disp = np.asarray(disp, np.float32)
    noise[:, cy, cx] = noise_maps(disp - disp[:1], combos, partial)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where there is none."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc ``malloc_trim``; elsewhere
    nothing): a block's freed arrays otherwise stay resident, in fragments that the next
    block cannot always reuse, and the floor under the blocks rises with their number."""
    if (trim := _malloc_trim()) is not None:
        trim(0)


def _compute(calls: list[tuple]) -> list:
    """Run ``(func, *args)`` calls; with one worker, one at a time, its dask arguments
    computed alone (a graph of all blocks would keep the input chunks neighbours share),
    the heap trimmed after each."""
    if WORKERS == 1:
        out = []
        for func, *args in calls:
            out.append(func(*(read_window(a) for a in args)))
            _trim_heap()
        return out
    tasks = [dask.delayed(func, pure=False)(*args) for func, *args in calls]
    return list(dask.compute(*tasks, scheduler="threads", num_workers=WORKERS))


def _passes(fn, disp, dem, valid, blocks, combos, partial):
    n_dates, h, w = disp.shape
    series, maps = DiskStack((n_dates, h, w)), DiskStack((3, h, w))
    flat = [b for row in blocks for b in row]
    tasks = []
    for b in flat:
        sy, sx = slice(*b.read_y), slice(*b.read_x)
        part = None if valid is None else valid[sy, sx]
        tasks.append((_run_block, fn, b, disp[:, sy, sx], dem[sy, sx], part, series, maps))
    constants = block_constants(_compute(tasks), n_dates)
    noise = DiskStack((len(combos), h, w))
    tasks = [
        (_shift_block, b, disp[(slice(None), *_core(b))], constants[k], series, maps)
        + (combos, noise, partial)
        for k, b in enumerate(flat)
    ]
    _compute(tasks)
    return series, maps, noise


def denoise_streamed(
    fn: StackBlockDenoiser,
    disp,
    dem,
    valid,
    blocks: list[list[Block]],
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    fix: Correction | None = None,
    fine: bool = False,
) -> tuple:
    """The aligned series and maps on disk with the significance gate applied (exactly the
    in-memory gate), its largest ``z`` per filter, the gate and the cumulative's noise std
    at 1 px (:func:`.significance.band_floors`) as :class:`.strips.MapView` of the gate's
    working maps on disk, and ``(relief, trace, second)``: the relief check ``(ratio, mm)``
    (:mod:`.relief`; None without a DEM), the fault-trace note (:mod:`.fault_trace`) and the
    second detector's largest ``z`` (:mod:`.bilaplacian_support`).
    ``fix``: the stratified-delay correction applied to ``disp`` (:mod:`.stratification`),
    whose trend terms then replace the relief terms. ``fine``: :mod:`.fine_scales` last."""
    n_dates = disp.shape[0]
    combos, partial = sig.gate_combos(times_days, date_var, segments)
    series, maps, noise = _passes(fn, disp, dem, valid, blocks, combos, partial)
    noise_rows, projection, line_rows, line = sig.split_maps(noise)
    h, w = series.shape[1:]
    cumulative = DiskStack((1, h, w))
    shut = np.zeros((h, w), bool)  # pixels without a first date: the gate stays shut there
    for a, b in row_strips(h, w):
        ends = np.asarray(disp[0, a:b]), np.asarray(disp[n_dates - 1, a:b])
        change = series[n_dates - 1, a:b] - series[0, a:b]
        cumulative[0, a:b] = sig.tested_cumulative(change, *ends)
        shut[a:b] = sig.unreferenced(ends[0], change)
    referenced = disp - disp[:1]
    relief, residual_maps, line_maps = relief_and_gate_noise(
        fix, noise_rows, projection, line_rows, referenced, dem, times_days, date_var, segments
    )
    gate_map, zmax, noise_sd = sig.gate(
        MapView(cumulative, 0),
        residual_maps,
        projection=projection,
        scratch=DiskStack,
        linear=(line, line_maps),
    )
    if shut.any():
        for a, b in row_strips(h, w):
            gate_map[a:b] = sig.shut_where(gate_map[a:b], shut[a:b])
    for t in range(n_dates):
        level = sig.date_level(lambda lo, hi, t=t: series[t, lo:hi], (h, w))
        for a, b in row_strips(h, w):
            series[t, a:b] = sig.gate_rows(series[t, a:b], gate_map[a:b], level)
    hat = sig.hat_matrix(times_days, date_var, segments)
    rows = lambda t, a, b: np.asarray(referenced[t, a:b])  # noqa: E731
    line_hat = sig.hat_matrix(times_days, date_var, sig.LINEAR_SEGMENTS)
    trace = trace_step(series, rows, projection, dem, hat, times_days, (line, line_hat))
    maps_ = (residual_maps, projection, line_maps, line)
    series, gate_map, second = support_step(
        series, gate_map, maps_, times_days, dem, rows, date_var
    )
    if fine:  # the output's fine scales where the stack supports them
        removal = fine_scales.removal_map(projection, residual_maps, gate_map, (h, w))
        fine_scales.shrink_fine_scales(series, removal)
    del noise, noise_rows, projection, line_rows, line, cumulative, residual_maps, line_maps
    for a, b in row_strips(h, w):
        maps[0, a:b] = series[n_dates - 1, a:b] - series[0, a:b]
    return series, maps, zmax, (gate_map, noise_sd), (relief, trace, second)


def detection_base(maps: DiskStack) -> float:
    """Median of the cumulative map over pixels with a cumulative and a sigma (the level
    :func:`.broad_scales.detection_map` measures deformation from); NaN if none."""
    h, w = maps.shape[1:]

    def with_sigma(rows: np.ndarray) -> np.ndarray:
        cumulative, sigma = rows
        return cumulative[np.isfinite(cumulative) & np.isfinite(sigma)]

    med, values = median(lambda lo, hi: maps[[0, 2], lo:hi], (h, w), with_sigma)
    return float(med) if values.size else float("nan")
