"""The history in time of the network's map where the gate returns it: a ramp where the data
say so.

Where the second detector fills no area (its supports cover most of the scene), the output
is the network's series, piecewise linear in time (:func:`.significance.fit_segments`
segments). A step (an eruption's inflation, a bowl that starts to subside) is then a ramp
over a segment and its cumulative is the last segment's end, which carries the last dates'
delays: Benchmark v2 returned three steps at SNR 35-100 (`in` 38, `shifted` 5 and 11) at gain
1.11-1.13. Here each date of the input (relative to the first date) is fitted by the
network's cumulative pattern beside ``c + k z + q z²`` of the DEM (the stratification a date
keeps), the coefficients form the scene's history, and :func:`.area_history.fit_ramp` tests
``ramp(t1, t2)`` against the straight line (BIC gain over :data:`.area_history.MIN_BIC_GAIN`).
Where a ramp wins, the gate's pixels are written as ``first date + ramp(t) x a x pattern``,
``a`` the ramp's weighted least-squares amplitude on the history (1 for the pattern itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from insar_denoise.inference.area_history import MIN_AREA_PX, MIN_BIC_GAIN, Ramp, fit_ramp
from insar_denoise.inference.detector_supports import GATE_ON
from insar_denoise.inference.noise_prediction import elevation_basis
from insar_denoise.inference.strips import row_strips

#: stacks with fewer dates keep the network's history (a ramp's two knots and offsets
#: would leave too few dates; the step scan's bound)
MIN_DATES = 12
#: larger scenes keep the network's history (the pattern and each date are read whole)
MAX_PIXELS = 1024 * 1024


def scene_history(rows, pattern: np.ndarray, use: np.ndarray, dem, n_dates: int) -> np.ndarray:
    """Each date's least-squares coefficient ``(T,)`` on ``pattern`` over the pixels ``use``,
    fitted beside ``c + k z + q z²`` (``rows(t, lo, hi)``: the input relative to the first
    date)."""
    h = pattern.shape[0]
    basis = elevation_basis(pattern.shape, dem)
    design = np.concatenate([basis[use], pattern[use][:, None]], axis=1)
    solve = np.linalg.pinv(design)[-1]
    return np.array(
        [float(solve @ np.asarray(rows(t, 0, h), np.float64)[use]) for t in range(n_dates)]
    )


@dataclass
class GateRamp:
    """A ramp found by :func:`gate_ramp`: its history, the amplitude of the pattern on it
    (and its standard error), the level outside the gate the pattern is taken from and the
    gate's pixels it is written on."""

    ramp: Ramp
    amplitude: float
    reference: float
    amplitude_sd: float
    pixels: int

    def note(self) -> dict:
        """The entry in the second detector's note."""
        sd = round(self.amplitude_sd, 4)
        return {
            **self.ramp.note(self.pixels),
            "amplitude": round(self.amplitude, 3),
            "amplitude_sd": sd,
        }


def gate_ramp(
    series,
    gate_map,
    rows,
    dem,
    times_days: np.ndarray,
    date_var: np.ndarray,
) -> GateRamp | None:
    """The ramp of the scene's history on the network's cumulative pattern (``series (T, H,
    W)``, an array or a disk stack, on the gate's pixels) where it beats the straight line,
    else None (too few dates or gate pixels, a scene over :data:`MAX_PIXELS`, or the line
    holds). ``rows(t, lo, hi)``: the input relative to the first date."""
    n, h, w = series.shape
    if n < MIN_DATES or h * w > MAX_PIXELS:
        return None
    gate = np.asarray(gate_map[0:h], np.float64) > GATE_ON
    if gate.sum() < MIN_AREA_PX:
        return None
    pattern = np.asarray(series[n - 1], np.float64) - np.asarray(series[0], np.float64)
    complete = np.isfinite(pattern)
    for t in range(n):
        complete &= np.isfinite(np.asarray(rows(t, 0, h)))
    if (gate & complete).sum() < MIN_AREA_PX:
        return None
    outside = complete & ~gate
    ref = float(np.median(pattern[outside])) if outside.sum() >= MIN_AREA_PX else 0.0
    history = scene_history(rows, np.where(gate, pattern - ref, 0.0), complete, dem, n)
    days = np.asarray(times_days, np.float64)
    frac = (days - days[0]) / float(days[-1] - days[0])
    weights = 1.0 / np.asarray(date_var, np.float64)
    ramp = fit_ramp(history, frac, weights, float(days[-1] - days[0]))
    if ramp is None or ramp.bic_gain <= MIN_BIC_GAIN:
        return None
    x = np.c_[np.ones(n), ramp.shape] * np.sqrt(weights)[:, None]
    y = history * np.sqrt(weights)
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    # the amplitude's standard error from the fit's own residual scatter (weights relative)
    scatter = float(np.sum((y - x @ coef) ** 2)) / max(n - 2, 1)
    sd = float(np.sqrt(scatter * np.linalg.inv(x.T @ x)[1, 1]))
    return GateRamp(ramp, float(coef[1]), ref, sd, int(gate.sum()))


def write_ramp(series, gate_map, found: GateRamp) -> None:
    """``series`` on the gate's pixels set to the first date plus ``ramp(t) x (reference +
    amplitude x (pattern - reference))``, in place (an array or a disk stack, by rows)."""
    n, h, w = series.shape
    for a, b in row_strips(h, w):
        gate = np.asarray(gate_map[a:b]) > GATE_ON
        first = np.asarray(series[0, a:b], np.float64)
        pattern = np.asarray(series[n - 1, a:b], np.float64) - first - found.reference
        change = found.reference + found.amplitude * pattern
        for t in range(1, n):
            current = np.asarray(series[t, a:b])
            new = first + found.ramp.shape[t] * change
            series[t, a:b] = np.where(gate, new, current).astype(current.dtype)
