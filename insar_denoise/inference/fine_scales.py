"""Fine scales of the gated output kept only where the stack supports them (an option,
``denoise_fine_scales`` / ``--denoise-fine-scales``, off by default: design table (aa)).

Inside the open gate the network leaves part of the least-squares cumulative's fine-scale
noise (session 28, ``benchmarks/error_attribution.py``: at SNR >= 10 the in-gate error is
as large below a 16 px Gaussian as above it). Each date's fine component (the map less its
Gaussian of :data:`FINE_PX`) is kept whole where the local power (Gaussian of
:data:`POWER_PX`) of the least-squares cumulative's fine component, ``P``, exceeds
:data:`KEEP_RATIO` times that of its noise maps', ``N``, and taken out elsewhere (hard
thresholding, Donoho & Johnstone 1994, Biometrika 81(3), 425-455, on local power: a signal
whose fine structure stands above the noise keeps it at full amplitude; a local Wiener
weight ``1 - N / P`` shrank it, design table (aa)). Where the gate is closed nothing
changes. Maps are read and written by row strips (:mod:`.strips`), so the in-memory and the
streamed paths give the same result.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from insar_denoise.inference.strips import apply_filter, filtered_rows, radius, row_strips

#: result attribute: what the option did (absent when it was not asked for)
FINE_ATTR = "insar_denoise_fine_scales"
#: Gaussian std (px) that separates the fine scales from the broad ones
FINE_PX = 4.0
#: Gaussian std (px) of the local power of the fine scales
POWER_PX = 8.0
#: the fine scales stay where their local power exceeds this many times their noise's
KEEP_RATIO = 1.5


def fine_rows(read, height: int, a: int, b: int) -> np.ndarray:
    """Rows ``[a, b)`` of the fine component of the map read by ``read(lo, hi)``: the map
    less its Gaussian of :data:`FINE_PX` over its finite pixels (0 where not finite). The
    rows and their halo are read once (a disk read on the streamed path)."""
    halo = radius(FINE_PX)
    lo, hi = max(0, a - halo), min(height, b + halo)
    block = read(lo, hi)
    ok = np.isfinite(block)
    total = apply_filter(np.where(ok, block, 0.0), FINE_PX)[a - lo : b - lo]
    weight = apply_filter(ok.astype(np.float32), FINE_PX)[a - lo : b - lo]
    rows, ok = block[a - lo : b - lo], ok[a - lo : b - lo]
    return np.where(ok, rows - total / np.maximum(weight, 1e-6), 0.0)


def _power_rows(read, height: int, a: int, b: int) -> np.ndarray:
    """Rows ``[a, b)`` of the local power of the fine component of a map."""
    square = lambda lo, hi: fine_rows(read, height, lo, hi) ** 2  # noqa: E731
    return filtered_rows(square, height, a, b, POWER_PX)


def removal_map(projection, noise, gate_map, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` float32: the share of each pixel's fine component that goes: the gate's
    value where the fine scales do not stand above their noise, 0 where they do.
    ``projection``: the least-squares cumulative, ``noise``: its ``n``
    noise maps, ``gate_map``: the gate in [0, 1] (arrays, or stores read as ``[lo:hi]`` /
    ``[j, lo:hi]``)."""
    h, w = shape
    out = np.zeros((h, w), np.float32)
    read_p = lambda lo, hi: np.asarray(projection[lo:hi], np.float64)  # noqa: E731
    for a, b in row_strips(h, w):
        gate_rows = np.asarray(gate_map[a:b], np.float32)
        if not np.any(gate_rows > 0):
            continue
        signal = _power_rows(read_p, h, a, b)
        noise_power = np.zeros_like(signal)
        for j in range(len(noise)):
            read_n = lambda lo, hi, j=j: np.asarray(noise[j, lo:hi], np.float64)  # noqa: E731
            noise_power += _power_rows(read_n, h, a, b)
        noise_power /= max(len(noise), 1)
        out[a:b] = np.where(signal > KEEP_RATIO * noise_power, 0.0, gate_rows)
    return out


def shrink_fine_scales(series: Any, removal: np.ndarray) -> None:
    """Take ``removal`` times each date's fine component out of ``series (T, H, W)`` (an
    array or a store read and written as ``[t, lo:hi]``), in place, one date at a time."""
    n_dates, h, w = series.shape
    if not np.any(removal > 0):
        return
    for t in range(n_dates):
        read = lambda lo, hi, t=t: np.asarray(series[t, lo:hi], np.float64)  # noqa: E731
        new = np.empty((h, w), np.float32)
        for a, b in row_strips(h, w):
            new[a:b] = read(a, b) - removal[a:b] * fine_rows(read, h, a, b)
        for a, b in row_strips(h, w):
            series[t, a:b] = new[a:b]
