"""Block function of the classical baselines for the tiled engine (no model)."""

from __future__ import annotations

import dask.array as da
import numpy as np

from insar_denoise import baselines
from insar_denoise.inference import masks
from insar_denoise.inference.tiling import Block, pad_block


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


def elevation_sums(disp: da.Array, dem: da.Array, ok: da.Array) -> list[da.Array]:
    """Lazy per-date sums (count, h, d, h^2, h d) over valid pixels for the elevation fit."""
    mask = da.isfinite(disp) & da.isfinite(dem)[None] & ok[None]
    d0 = da.where(mask, disp, 0.0).astype(np.float64)
    h0 = da.where(mask, dem[None], 0.0).astype(np.float64)
    return [s.sum(axis=(1, 2)) for s in (mask.astype(np.float64), h0, d0, h0 * h0, h0 * d0)]
