"""Stratification in the significance gate's noise maps, for scenes the relief check flags.

The gate's noise maps (:mod:`.significance`) come from each pixel's fit residuals. When a few
dates carry strong stratified delay, the cumulative's weights lean on them and the fit
absorbs them (high leverage), so the noise maps miss that delay and the gate passes patches
that follow the relief (:mod:`.relief`). For a flagged scene this module describes the
stratification from the stack itself: per date, a least-squares fit of ``c + k z + q z²``
to the displacement (z the elevation in km; Doin et al. 2009, J. Appl. Geophys. 69, 35-50),
minus the linear trend of ``k`` and ``q`` in time (deformation that follows the relief
grows steadily; it is not noise), times ``sqrt(T / (T - 2))`` for the two trend terms. Each
noise realisation ``j`` then gains ``K_j z + Q_j z²`` with ``(K_j, Q_j) = sum_t s_jt a_t
(k'_t, q'_t)``: the cumulative's weights ``a_t`` and random signs ``s_jt``, as for the fit
residuals. Measured on Benchmark v2 (``benchmarks/relief_noise_replay.py``, ``evaluate``): on
``shifted``, the false-positive p99 78 → 10.9 mm (one 9-date scene of 12 keeps its patch) and
the RMSE at SNR 3-5 1.91 → 0.73 mm (zero map 0.68); on ``in``, the same detections and the
one false patch (T = 18) gone.

Stacks of fewer than :data:`MIN_TREND_DATES` dates keep the line in time too (their ``k_t,
q_t`` are not detrended): a line through a few noisy coefficients holds much of the
stratification, and such a stack cannot tell it from deformation that follows the relief.
Measured on the three 9-date ``shifted`` scenes with false patches (session 11): RMSE 4.5 →
0.6, 4.9 → 0.3 (the zero map's) and 36 → 7.9 mm (p99 184 → 7.5 mm); no detection changed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from insar_denoise.inference.broad_scales import cumulative_weights
from insar_denoise.inference.relief import elevation_coefficients, relief_warning

#: each date's elevation coefficients are fitted on about this many pixels
FIT_PX = 250_000
#: seed of the random signs (fixed: the same scene gives the same gate)
SEED = 1
#: stacks with fewer dates count the whole stratification as noise (not detrended)
MIN_TREND_DATES = 12


def fit_step(shape: tuple[int, int]) -> int:
    """Row and column step of the regular subsample used for the per-date fits."""
    return max(1, math.ceil(math.sqrt(shape[0] * shape[1] / FIT_PX)))


def elevation_km(dem: np.ndarray, base_m: float) -> np.ndarray:
    """Elevation (km) above ``base_m``, as float32."""
    return ((np.asarray(dem, dtype=np.float32) - np.float32(base_m)) / 1000.0).astype(np.float32)


def date_coefficients(displacement: Any, dem: Any, step: int) -> tuple[np.ndarray, float]:
    """``(k, q) (T, 2)`` of each date's least-squares fit of ``c + k z + q z²`` (mm/km,
    mm/km²) on every ``step``-th row and column, and the base elevation (m) of ``z``.

    ``displacement (T, H, W)`` mm (numpy or dask; NaN = missing), ``dem (H, W)`` m. A date
    with fewer than 10 finite pixels gets ``(0, 0)``."""
    sub = np.asarray(displacement[:, ::step, ::step], dtype=np.float64)
    elev = np.asarray(dem[::step, ::step], dtype=np.float64)
    base = float(np.nanmin(elev))
    z = (elev - base) / 1000.0
    out = np.zeros((sub.shape[0], 2))
    for t, values in enumerate(sub):
        coef = elevation_coefficients(values, z)
        if coef is not None:
            out[t] = coef[1:]
    return out, base


def detrended(coefs: np.ndarray, times_days: np.ndarray) -> np.ndarray:
    """``coefs (T, 2)`` minus their least-squares line in time, times ``sqrt(T / (T - 2))``
    (the two fitted terms); zeros with fewer than 3 dates."""
    n = len(coefs)
    if n < 3:
        return np.zeros_like(coefs)
    t = np.asarray(times_days, dtype=np.float64)
    basis = np.stack([np.ones(n), (t - t[0]) / max(float(np.ptp(t)), 1.0)], axis=1)
    resid = coefs - basis @ np.linalg.lstsq(basis, coefs, rcond=None)[0]
    return resid * math.sqrt(n / (n - 2))


def realisation_terms(
    coefs: np.ndarray, weights: np.ndarray, n: int, seed: int = SEED
) -> np.ndarray:
    """``(n, 2)``: ``(K_j, Q_j) = sum_t s_jt a_t (k'_t, q'_t)`` with random signs ``s``."""
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n, len(weights)))
    return (signs * np.asarray(weights, np.float64)[None]) @ coefs


def balanced_terms(cov: np.ndarray, n: int) -> np.ndarray:
    """``(n, 2)`` terms ``L u_j`` whose mean outer product is exactly ``cov (2, 2)``
    (``L Lᵀ = cov``, ``u_j = √2 (cos θ_j, sin θ_j)`` at ``n >= 3`` equally spaced angles):
    the second moments of :func:`realisation_terms` without their sampling scatter (with 16
    random signs the local mean square of ``K_j z + Q_j z²`` scatters by ±35 %, and where it
    falls low the gate takes the relief for deformation; session 33: `shifted` 34)."""
    values, vectors = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    root = vectors * np.sqrt(np.clip(values, 0.0, None))[None, :]
    angles = 2.0 * np.pi * (np.arange(n) + 0.5) / n
    return math.sqrt(2.0) * np.c_[np.cos(angles), np.sin(angles)] @ root.T


class WithStratification:
    """Noise maps plus each realisation's stratification term, read as ``[j, lo:hi]``.

    ``noise``: ``n`` maps (an ``(n, H, W)`` array or any store read as ``[j, lo:hi]``);
    ``dem (H, W)`` m; ``terms (n, 2)`` from :func:`realisation_terms`; ``base_m`` the
    elevation that ``z`` is measured from (that of the fits)."""

    def __init__(self, noise: Any, dem: np.ndarray, terms: np.ndarray, base_m: float) -> None:
        self.noise, self.dem, self.terms, self.base_m = noise, dem, terms, base_m
        self.shape = (len(terms), *tuple(dem.shape))

    def __len__(self) -> int:
        return len(self.terms)

    def __getitem__(self, key: tuple[int, slice]) -> np.ndarray:
        j, rows = key
        z = elevation_km(self.dem[rows], self.base_m)
        k, q = (np.float32(v) for v in self.terms[j])
        return (np.asarray(self.noise[j, rows], dtype=np.float32) + k * z + q * z * z).astype(
            np.float32
        )


def stack_coefficients(
    displacement: Any, dem: Any, times_days: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray]:
    """``(coefs (T, 2), base_m, dem)``: each date's elevation coefficients (detrended in time
    on stacks of at least :data:`MIN_TREND_DATES` dates), the base elevation of their ``z``
    and the DEM as float32 (read once: a frame's DEM is 100 MB)."""
    dem = np.asarray(dem, dtype=np.float32)
    coefs, base = date_coefficients(displacement, dem, fit_step(tuple(dem.shape)))
    if len(coefs) >= MIN_TREND_DATES:  # steady deformation that follows the relief stays
        coefs = detrended(coefs, times_days)
    return coefs, base, dem


def with_stratification(
    noise: Any, displacement: Any, dem: Any, times_days: np.ndarray, weights: np.ndarray
) -> WithStratification:
    """The gate's noise maps with the stack's own stratification added (module docstring).

    ``displacement (T, H, W)`` mm relative to the first date (numpy or dask), ``weights``
    the cumulative's ``a_t`` (:func:`.broad_scales.cumulative_weights`)."""
    return _with_terms(noise, stack_coefficients(displacement, dem, times_days), weights)


def _with_terms(noise: Any, fit: tuple, weights: np.ndarray) -> WithStratification:
    """``noise`` with the realisation terms of a :func:`stack_coefficients` ``fit`` weighted
    by the cumulative's ``weights``."""
    coefs, base, dem = fit
    return WithStratification(noise, dem, realisation_terms(coefs, weights, len(noise)), base)


def gate_noises(
    noise_sets: list[tuple[Any, int]],
    displacement: Any,
    dem: Any,
    times_days: np.ndarray,
    date_var: np.ndarray,
    relief: tuple[float, float] | None,
) -> list[Any]:
    """:func:`gate_noise` of several sets of noise maps ``(noise, segments)`` (each weighted
    as its own cumulative), the stack's coefficients fitted once."""
    if relief is None or relief_warning(*relief) is None:
        return [noise for noise, _ in noise_sets]
    fit = stack_coefficients(displacement, dem, times_days)
    return [
        _with_terms(noise, fit, cumulative_weights(times_days, date_var, segments))
        for noise, segments in noise_sets
    ]


def gate_noise(
    noise: Any,
    displacement: Any,
    dem: Any,
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    relief: tuple[float, float] | None,
) -> Any:
    """The noise maps the gate should use: ``noise`` itself, or with the stack's
    stratification when the relief check ``relief = (ratio, mm)`` flags the scene
    (:func:`.relief.relief_warning`). ``displacement`` relative to the first date; ``segments``
    the model's (its cumulative weighting)."""
    return gate_noises([(noise, segments)], displacement, dem, times_days, date_var, relief)[0]
