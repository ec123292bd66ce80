"""Stratified-delay correction of relief-flagged stacks, before the network.

On high relief the delay that follows the elevation can be ten times the deformation, and
the network (trained on milder relief) passes or smooths it. Where the relief check
(:mod:`.relief`) flags the input stack and it has at least :data:`MIN_DATES` dates, each date
gets the classical empirical phase-elevation correction (Doin et al. 2009, J. Appl. Geophys.
69, 35-50): a least-squares ``c + k_t z + q_t z²`` per date (z the elevation in km, a
subsample of at most :data:`.relief.SAMPLE_PX` pixels), of which only the part that departs
from a straight line in time is removed (``k'_t = k_t − (α + β t)``, the same for ``q``):
deformation that follows the relief grows steadily and stays in the input.

What stays is the fitted trend, which the fit residuals of the gate's noise maps no longer
see; its uncertainty (the slope of ``α + β t`` estimated from ``T`` noisy coefficients) is
added to each noise realisation as ``K_j z + Q_j z²``, where the terms ``(K_j, Q_j)`` have
exactly the covariance of the trend's span, ``sum_t w_t² (k'_t, q'_t)ᵀ (k'_t, q'_t) T / (T −
2)`` (``w_t`` the weights of the span; :func:`.relief_noise.balanced_terms`: points on an
ellipse rather than random-sign sums, whose 16 draws scatter the local noise by ±35 %; session
33: a 4.3 km peak of `shifted` 34 passed at z 6.1 on them). With fewer dates the trend takes
most of the delay and the correction does not pay: such stacks keep the relief terms of
:mod:`.relief_noise` instead (there, the whole per-date stratification, line included).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from insar_denoise.inference.relief import relief_ratio, relief_warning, sample_step
from insar_denoise.inference.relief_noise import (
    MIN_TREND_DATES,
    WithStratification,
    balanced_terms,
    date_coefficients,
    detrended,
    gate_noises,
)
from insar_denoise.inference.significance import LINEAR_SEGMENTS, cumulative_noise

#: stacks with fewer dates are not corrected (the trend would keep most of the delay); their
#: gate counts the whole stratification as noise (:mod:`.relief_noise`)
MIN_DATES = MIN_TREND_DATES
#: the relief check and the fits read at most this many values (dates x pixels; 100 MB)
SAMPLE_VALUES = 25_000_000
#: result attribute: the correction (JSON), ``none`` or why it was not applied
STRAT_ATTR = "insar_denoise_stratification"
#: key of that note: the largest 1-sigma (mm) of the trend the correction keeps
TREND_SD_KEY = "trend_sd_max_mm"


@dataclass
class Correction:
    """A fitted correction: the removed per-date coefficients ``removed (T, 2)`` (mm/km,
    mm/km²; ``k'_t, q'_t``), the elevation ``base_m`` that ``z`` starts from, the gate's
    terms ``terms (n, 2)``, the relief check ``(ratio, mm)`` of the uncorrected stack and
    ``span_cov (2, 2)``, the covariance of the kept trend's span ``(K, Q)``, the median
    elevation ``median_m`` (m) and that trend's largest 1-sigma over the scene (mm)."""

    removed: np.ndarray
    base_m: float
    terms: np.ndarray
    relief: tuple[float, float]
    span_cov: np.ndarray
    median_m: float
    trend_sd_max_mm: float = float("nan")

    def trend_variance(self, dem: Any) -> Any:
        """Variance (mm², ``(H, W)``, numpy or dask as ``dem``) of the kept trend's
        ``K z + Q z²`` at every pixel relative to the median elevation: what the cumulative
        may still hold of the stratification (0 where the elevation is NaN)."""
        z_ref = (self.median_m - self.base_m) / 1000.0
        z = _zero_nan((dem - np.float32(self.base_m)) / np.float32(1000.0))
        d1, d2 = z - np.float32(z_ref), z * z - np.float32(z_ref * z_ref)
        (a, b), (_, c) = self.span_cov.astype(np.float32)
        var = a * d1 * d1 + 2.0 * b * d1 * d2 + c * d2 * d2
        return var * np.isfinite(dem)

    def delay(self, dem: Any) -> Any:
        """The removed delay ``k'_t z + q'_t z²`` (mm) of every date ``(T, H, W)``; ``dem``
        numpy or dask (NaN elevation: no correction)."""
        z = _zero_nan((dem - np.float32(self.base_m)) / np.float32(1000.0))
        k = self.removed[:, 0, None, None].astype(np.float32)
        q = self.removed[:, 1, None, None].astype(np.float32)
        if not isinstance(z, np.ndarray):  # dask: one date per chunk, as blocks read them
            import dask.array as da

            k, q = da.from_array(k, chunks=1), da.from_array(q, chunks=1)
        return k * z[None] + q * (z * z)[None]

    def gate_noise(self, noise: Any, dem: Any) -> WithStratification:
        """The gate's noise maps plus each realisation's trend term."""
        return WithStratification(noise, np.asarray(dem, np.float32), self.terms, self.base_m)

    def to_attr(self) -> str:
        """The JSON written to :data:`STRAT_ATTR`: the std of the removed coefficients and of
        the terms the gate's noise maps gained, and the kept trend's largest 1-sigma."""
        sd = self.removed.std(axis=0)
        td = np.sqrt(np.mean(self.terms**2, axis=0))
        return json.dumps(
            {
                "removed_k_std_mm_per_km": round(float(sd[0]), 3),
                "removed_q_std_mm_per_km2": round(float(sd[1]), 3),
                "trend_k_sd_mm_per_km": round(float(td[0]), 3),
                "trend_q_sd_mm_per_km2": round(float(td[1]), 3),
                "base_m": round(self.base_m, 1),
                TREND_SD_KEY: round(self.trend_sd_max_mm, 2),
            }
        )


def _zero_nan(z: Any) -> Any:
    """``z`` with NaN set to 0 (numpy or dask)."""
    import dask.array as da

    if isinstance(z, da.Array):
        return da.where(da.isfinite(z), z, 0.0)
    return np.where(np.isfinite(z), z, 0.0).astype(np.float32)


def trend_weights(times_days: np.ndarray) -> np.ndarray:
    """``w_t``: the span (last minus first date) of the least-squares line through ``T``
    values at ``times_days`` is ``sum_t w_t v_t``."""
    t = np.asarray(times_days, dtype=np.float64)
    tau = (t - t[0]) / max(float(np.ptp(t)), 1.0)
    centred = tau - tau.mean()
    return centred / max(float(np.sum(centred**2)), 1e-12)


def subsample(displacement: Any, step: int) -> np.ndarray:
    """Every ``step``-th row and column of every date of ``displacement (T, H, W)`` (numpy or
    dask), float32, read one date at a time (a frame's dates are never all in memory)."""
    n_dates, h, w = displacement.shape
    out = np.empty((n_dates, -(-h // step), -(-w // step)), np.float32)
    for t in range(n_dates):
        date = displacement[t, ::step, ::step]
        out[t] = date.compute(scheduler="sync") if hasattr(date, "dask") else date
    return out


def plan(
    displacement: Any,
    dem: Any,
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    n_realisations: int,
) -> tuple[Correction | None, tuple[float, float], str]:
    """The correction of a stack (None when the relief check does not flag it or it has
    fewer than :data:`MIN_DATES` dates), the relief check ``(ratio, mm)`` of the uncorrected
    stack and the note for :data:`STRAT_ATTR`.

    ``displacement (T, H, W)`` mm (numpy or dask; any reference), ``dem (H, W)``
    m; ``date_var``, ``segments``: the cumulative's weighting (the model's). Reads one
    regular subsample of at most :data:`.relief.SAMPLE_PX` pixels and
    :data:`SAMPLE_VALUES` values."""
    n_dates, h, w = displacement.shape
    step = max(sample_step((h, w)), math.ceil(math.sqrt(h * w * n_dates / SAMPLE_VALUES)))
    sub = subsample(displacement, step)
    sub -= sub[:1]
    sub_dem = np.asarray(dem[::step, ::step], dtype=np.float32)
    # the weighted fit's noise maps: the check's thresholds were set on them (session 8)
    noise, projection = cumulative_noise(sub, times_days, date_var, segments, weighted_fit=True)
    relief = relief_ratio(projection, noise, sub_dem)
    if relief_warning(*relief) is None:
        return None, relief, "none"
    if n_dates < MIN_DATES:
        return None, relief, f"skipped: {n_dates} dates (at least {MIN_DATES})"
    coefs, base = date_coefficients(sub, sub_dem, 1)
    spread = detrended(coefs, times_days)  # k'_t, q'_t x sqrt(T / (T - 2))
    removed = spread / math.sqrt(n_dates / (n_dates - 2))
    weights = trend_weights(times_days)
    # the span of the fitted line, sum_t w_t c_t, has covariance sum_t w_t² Cov(c_t), each
    # date's from its scatter about the line (Draper & Smith 1998, Applied Regression, 1.4)
    span_cov = (spread * weights[:, None] ** 2).T @ spread
    terms = balanced_terms(span_cov, n_realisations)
    fix = Correction(removed, base, terms, relief, span_cov, float(np.nanmedian(sub_dem)))
    fix.trend_sd_max_mm = float(np.sqrt(np.max(fix.trend_variance(sub_dem))))
    return fix, relief, fix.to_attr()


def corrected(src: Any, dem: Any, fix: Correction) -> Any:
    """``src (T, H, W)`` (an xarray DataArray, numpy or dask values) minus the removed delay,
    float32, same coords."""
    import xarray as xr

    delay = fix.delay(dem.data if isinstance(dem, xr.DataArray) else dem)
    out = src - xr.DataArray(delay, dims=src.dims)
    return out.astype(np.float32).assign_attrs(src.attrs)


def relief_and_gate_noise(
    fix: Correction | None,
    noise: Any,
    projection: Any,
    line_noise: Any,
    referenced: Any,
    dem: Any,
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
) -> tuple[tuple[float, float] | None, Any, Any]:
    """The relief check ``(ratio, mm)`` (None without a DEM) and the two sets of noise maps
    the gate uses (the model's weighting, ``noise``, and the straight line's, ``line_noise``,
    :func:`.significance.gate_combos`): with a correction, the uncorrected stack's check and
    the trend terms; otherwise the check of the least-squares ``projection`` against
    ``noise`` and the relief terms of a flagged stack, each set weighted as its cumulative
    (:func:`.relief_noise.gate_noises`). ``referenced``: the input relative to its first date
    (numpy or dask)."""
    if fix is not None:
        return fix.relief, fix.gate_noise(noise, dem), fix.gate_noise(line_noise, dem)
    relief = None if dem is None else relief_ratio(projection, noise, dem)
    sets = [(noise, segments), (line_noise, LINEAR_SEGMENTS)]
    return relief, *gate_noises(sets, referenced, dem, times_days, date_var, relief)
