"""Whole-stack models on scenes larger than memory: blocks streamed through disk.

The in-memory path (:func:`.stack_runner.assemble_aligned`) holds the whole result. Here
the result goes to two :class:`.disk_stack.DiskStack` files, the series ``(T, H, W)`` and the
maps ``(3, H, W)`` (cumulative, detection, sigma), in passes whose memory is one block (or
one date) each, whatever the scene size:

1. every block runs (:meth:`.stack_runner.StackBlockDenoiser.run`) and is written at its
   core; only its per-tile constants are kept;
2. the block constants (:func:`.stack_runner.block_constants`) are subtracted block by block,
   and the random-sign noise maps of the broad-scale step (:mod:`.broad_scales`) are
   accumulated from the input re-read for the block;
3. the broad-scale Wiener gain is estimated and applied date by date, on a grid ``q`` times
   coarser (:func:`.broad_scales.apply_lowres`; ``q = 1``: the exact full-grid step).
"""

from __future__ import annotations

import dask
import numpy as np

from insar_denoise.inference import broad_scales as bs
from insar_denoise.inference import significance as sig
from insar_denoise.inference.disk_stack import DiskStack
from insar_denoise.inference.significance import noise_maps
from insar_denoise.inference.stack_runner import StackBlockDenoiser, block_constants
from insar_denoise.inference.tiling import Block

#: blocks in flight at once (each holds its input, its mosaic, its result and the model's
#: activations: ~0.6 GB; one keeps a frame under 2 GB, torch uses the cores within a block)
WORKERS = 1


def _core(b: Block) -> tuple[slice, slice]:
    return slice(*b.core_y), slice(*b.core_x)


def _run_block(fn, block, disp, dem, valid, series: DiskStack, maps: DiskStack):
    """Pass 1: one block through the model, written at its core; its tile constants."""
    result, applied = fn.run(disp, dem, valid, block)
    n_dates = series.shape[0]
    cy, cx = _core(block)
    series[:, cy, cx] = result[:n_dates]
    maps[:, cy, cx] = result[n_dates:]
    return applied


def _shift_block(block, disp, constants, series, maps, combos, resid, from_input=False) -> None:
    """Pass 2: a block moved by its constants; its random-sign noise maps
    (``sum_t s_t a_t r_t``, ``r`` = input minus series, 0 where not finite; ``from_input``:
    the significance gate's maps, ``combos @ input``, :func:`.significance.noise_maps`)."""
    cy, cx = _core(block)
    region = series[:, cy, cx]
    c = np.asarray(constants, np.float32)
    if c.any():
        region -= c[:, None, None]
        series[:, cy, cx] = region
        cumulative = maps[0, cy, cx]
        cumulative -= c[-1] - c[0]
        maps[0, cy, cx] = cumulative
    disp = np.asarray(disp, np.float32)
    if from_input:
        resid[:, cy, cx] = noise_maps(disp - disp[:1], combos)
        return
    removed = (disp - disp[:1]) - region
    r = np.where(np.isfinite(removed), removed, 0.0)
    resid[:, cy, cx] = np.tensordot(combos, r, axes=1)


def _compute(calls: list[tuple]) -> list:
    """Run ``(func, *args)`` calls; with one worker, one at a time, its dask arguments
    computed alone (a graph of all blocks would keep the input chunks neighbours share)."""
    if WORKERS == 1:
        read = lambda a: a.compute(scheduler="threads") if hasattr(a, "dask") else a  # noqa: E731
        return [func(*(read(a) for a in args)) for func, *args in calls]
    tasks = [dask.delayed(func, pure=False)(*args) for func, *args in calls]
    return list(dask.compute(*tasks, scheduler="threads", num_workers=WORKERS))


def _passes(fn, disp, dem, valid, blocks, combos, from_input=False):
    n_dates, h, w = disp.shape
    series, maps = DiskStack((n_dates, h, w)), DiskStack((3, h, w))
    flat = [b for row in blocks for b in row]
    tasks = []
    for b in flat:
        sy, sx = slice(*b.read_y), slice(*b.read_x)
        part = None if valid is None else valid[sy, sx]
        tasks.append((_run_block, fn, b, disp[:, sy, sx], dem[sy, sx], part, series, maps))
    constants = block_constants(_compute(tasks), n_dates)
    combos = np.zeros((0, n_dates)) if combos is None else combos
    resid = DiskStack((len(combos), h, w)) if len(combos) else None
    tasks = [
        (_shift_block, b, disp[(slice(None), *_core(b))], constants[k], series, maps)
        + (combos, resid, from_input)
        for k, b in enumerate(flat)
    ]
    _compute(tasks)
    return series, maps, resid


def denoise_streamed(
    fn: StackBlockDenoiser,
    disp,
    dem,
    valid,
    blocks: list[list[Block]],
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    q: int = 4,
    sigma_px: float = bs.BROAD_SIGMA_PX,
    gated: bool = False,
) -> tuple[DiskStack, DiskStack, np.ndarray, DiskStack | None]:
    """The aligned series and maps on disk with the scene-wide step applied, its gain
    (Wiener step) or largest ``z`` per scale (``gated``: the significance gate), and the
    gate's missed-signal scale ``(1, H, W)`` (None without the gate).

    ``q``: decimation of the broad-scale step (1: exact, as the in-memory path).
    """
    n_dates, h, w = disp.shape
    weights = bs.cumulative_weights(times_days, date_var, segments)
    if gated:
        return _gated(fn, disp, dem, valid, blocks, weights, times_days, date_var)
    rng = np.random.default_rng(0)  # the signs of bs.wiener_gain
    combos = np.stack([rng.choice([-1.0, 1.0], size=n_dates) * weights for _ in range(4)])
    series, maps, resid = _passes(fn, disp, dem, valid, blocks, combos)
    if min(h, w) < 4 * sigma_px:
        return series, maps, np.ones(1), None
    cumulative = series[n_dates - 1] - series[0]
    n_params = segments + 1
    if q == 1:
        k, edges = bs._radial_bins((h, w))
        data = bs.radial_power(cumulative, k, edges)
        noise = sum(bs.radial_power(resid[j].astype(np.float64), k, edges) for j in range(4))
        noise = noise / 4 * (n_dates / max(n_dates - n_params, 1))
        gain = np.clip(1.0 - noise / np.maximum(data, 1e-30), 0.0, 1.0)
        response = bs.filter_response(
            (h + 2 * int(3 * sigma_px), w + 2 * int(3 * sigma_px)), gain, edges, sigma_px
        )
        apply = lambda img: bs.apply_response(img, lambda _: response, int(3 * sigma_px))  # noqa: E731
    else:
        maps_iter = (resid[j] for j in range(4))
        gain, edges = bs.lowres_gain(cumulative, maps_iter, n_dates, n_params, q)
        apply = lambda img: bs.apply_lowres(img, gain, edges, sigma_px, q)  # noqa: E731
    del cumulative, resid
    for t in range(n_dates):
        series[t] = apply(series[t])
    maps[0] = series[n_dates - 1] - series[0]
    return series, maps, gain, None


def _gated(fn, disp, dem, valid, blocks, weights, times_days, date_var):
    """The streamed finish with the significance gate (:mod:`.significance`), exactly the
    in-memory gate: noise maps on disk, the gate map in memory, applied date by date."""
    n_dates = disp.shape[0]
    combos = sig.with_projection(sig.noise_combinations(weights, times_days, date_var), weights)
    series, maps, noise = _passes(fn, disp, dem, valid, blocks, combos, from_input=True)
    n = len(combos) - 1  # the last map is the least-squares cumulative
    gate_map, zmax, missed = sig.gate(
        series[n_dates - 1] - series[0], _Rows(noise, n), projection=noise[n]
    )
    del noise
    for t in range(n_dates):
        series[t] = sig.gate_date(series[t], gate_map)
    maps[0] = series[n_dates - 1] - series[0]
    missed_map = DiskStack((1, *missed.shape))
    missed_map[0] = missed
    return series, maps, zmax, missed_map


class _Rows:
    """The first ``n`` maps of a disk stack, read one at a time."""

    def __init__(self, stack: DiskStack, n: int) -> None:
        self.stack, self.n = stack, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, j: int) -> np.ndarray:
        return self.stack[j]


def detection_base(maps: DiskStack) -> float:
    """Median of the cumulative map over pixels with a cumulative and a sigma (the level
    :func:`.broad_scales.detection_map` measures deformation from); NaN if none."""
    cumulative, sigma = maps[0], maps[2]
    ok = np.isfinite(cumulative) & np.isfinite(sigma)
    return float(np.median(cumulative[ok])) if ok.any() else float("nan")
