"""Are the stack's dates correlated beyond what the engine's noise maps assume?

The engine judges what it detects against noise maps that combine each date's residual
from a piecewise-linear fit with random signs (:func:`insar_denoise.inference.significance.
noise_combinations`), which holds for dates whose atmospheres are independent draws around
the first date's. A real stack need not be so (DEM errors, seasonal delays, an inconsistent
interferogram network; the Envisat test stack's matched filters scattered 8-11x their
modelled std under that assumption, ``benchmarks/noise_calibration.py``). Here the
covariance between dates of what the run left in the stack (input minus the output series,
each date's offset, ramp and elevation terms removed) gives the least-squares cumulative's
noise std against what those noise maps give, relative to the same ratio under the
independent-dates model fitted to it (:func:`insar_denoise.scoring.noise_estimate.
date_stds`): about 1 on simulated stacks (0.7-1.6, median 1.01, on Benchmark v2's 168
design draws, strong signals included: ``benchmarks/date_correlation_scenes.py``), 2.2 on
the Envisat stack.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from insar_denoise.inference.broad_scales import cumulative_weights
from insar_denoise.inference.engine import times_in_days
from insar_denoise.inference.significance import noise_combinations
from insar_denoise.inference.stack_runner import scene_date_variances
from insar_denoise.scoring.noise_estimate import date_stds, shared_reference_covariance
from insar_denoise.trust.qc import QCWarning

#: at most this many pixels (a regular subsample) enter the covariance between dates
MAX_PX = 100_000
#: ``correlated_dates`` is found above this factor (Benchmark v2's 168 design draws: at most
#: 1.58; the Envisat test stack 2.2)
CORRELATED_FACTOR = 2.0
#: the cumulative's segments and the crop of its date variances (the shipped model's), the
#: sign combinations drawn
SEGMENTS, CROP_PX, N_COMBOS = 4, 64, 500


def _covariance(residual: np.ndarray, dem: np.ndarray | None) -> np.ndarray | None:
    """``(T-1, T-1)`` covariance over pixels of the increments of ``residual (T, H, W)``
    after each date's offset, ramp and (with ``dem``) ``a z + q z²``; None below 64 pixels."""
    inc = residual[1:] - residual[:1]
    ok = np.isfinite(inc).all(axis=0)
    if dem is not None:
        ok &= np.isfinite(dem)
    if ok.sum() < 64:
        return None
    h, w = ok.shape
    rows, cols = np.nonzero(ok)
    basis = [np.ones(rows.size), rows / h, cols / w]
    if dem is not None:
        z = dem[ok] - dem[ok].mean()
        z = z / max(float(z.std()), 1e-6)
        basis += [z, z * z]
    b = np.stack(basis, axis=1)
    obs = inc[:, ok]
    coef, *_ = np.linalg.lstsq(b, obs.T, rcond=None)
    res = obs - (b @ coef).T
    return res @ res.T / res.shape[1]


def subsample_step(h: int, w: int) -> int:
    """Stride of the regular subsample of an ``h x w`` grid with at most :data:`MAX_PX` pixels."""
    return max(1, math.ceil(math.sqrt(h * w / MAX_PX)))


def noise_map_ratio(
    days: np.ndarray, cov: np.ndarray, date_var: np.ndarray, n: int = N_COMBOS
) -> float:
    """The least-squares cumulative's noise std over that of the engine's sign-flip noise maps
    (``n`` combinations) when the dates 1..T-1 have covariance ``cov`` (date 0 the reference)
    and the cumulative weighs them by ``date_var``."""
    t = len(days)
    full = np.zeros((t, t))
    full[1:, 1:] = cov
    a = cumulative_weights(days, date_var, SEGMENTS)
    combos = noise_combinations(a, days, n=n).astype(np.float64)
    flips = float(np.mean(np.einsum("nt,ts,ns->n", combos, full, combos)))
    return math.sqrt(max(float(a @ full @ a), 0.0) / max(flips, 1e-12))


def excess_date_correlation(
    displacement: np.ndarray,
    deformation: np.ndarray | None,
    times_days: np.ndarray,
    dem: np.ndarray | None = None,
    date_var: np.ndarray | None = None,
) -> float | None:
    """How many times the engine's noise maps understate the least-squares cumulative's noise
    because the dates are correlated: the ratio of the two under the covariance between dates
    of ``displacement - deformation`` (both ``(T, H, W)`` mm; ``deformation`` None: the input
    alone) over the same under independent dates sharing the first date's atmosphere fitted
    to it; the cumulative weighs the dates by ``date_var`` (mm², default: the engine's own,
    :func:`~insar_denoise.inference.stack_runner.scene_date_variances`). None for stacks of
    fewer than :data:`SEGMENTS` + 3 dates or 64 pixels."""
    t, h, w = displacement.shape
    if t < SEGMENTS + 3:
        return None
    step = subsample_step(h, w)
    residual = np.asarray(displacement[:, ::step, ::step], np.float64)
    if deformation is not None:
        residual = residual - np.asarray(deformation[:, ::step, ::step], np.float64)
    sub_dem = None if dem is None else np.asarray(dem, np.float64)[::step, ::step]
    cov = _covariance(residual, sub_dem)
    if cov is None:
        return None
    independent = shared_reference_covariance(date_stds(cov))
    if date_var is None:
        date_var = scene_date_variances(displacement, CROP_PX)
    days = np.asarray(times_days, np.float64)
    return noise_map_ratio(days, cov, date_var) / noise_map_ratio(days, independent, date_var)


def date_correlation_findings(ds: xr.Dataset, result: xr.Dataset) -> list[QCWarning]:
    """``correlated_dates`` when :func:`excess_date_correlation` of the input less the
    result's ``deformation`` series is over :data:`CORRELATED_FACTOR`."""
    if "deformation" not in result or "displacement" not in ds:
        return []
    disp = ds["displacement"].transpose("time", "y", "x")
    step = subsample_step(*disp.shape[1:])
    sub = (slice(None), slice(None, None, step), slice(None, None, step))
    series = result["deformation"].transpose("time", "y", "x")
    dem = ds["dem"].transpose("y", "x").values[sub[1:]] if "dem" in ds else None
    date_var = scene_date_variances(disp.data, CROP_PX)
    factor = excess_date_correlation(
        np.asarray(disp[sub].values, np.float64),
        np.asarray(series[sub].values, np.float64),
        times_in_days(ds["time"].values),
        dem,
        date_var,
    )
    if factor is None or factor <= CORRELATED_FACTOR:
        return []
    message = (
        f"the dates' noise is correlated beyond what the engine's noise maps assume: what the "
        f"run left in the stack gives the cumulative {factor:.1f}x the noise those maps hold, "
        "relative to independent dates; detections near the threshold and the uncertainty "
        "bands may be optimistic by about that factor (DEM errors, seasonal delays or an "
        "inconsistent network can correlate dates)"
    )
    return [QCWarning("correlated_dates", message, float(factor))]
