"""Ideal-observer detection limits of the injected shapes on a real stack.

The stack's noise is modelled as the simulator's (:func:`~insar_denoise.scoring.
noise_estimate.estimate_noise_params`: turbulence spectrum and covariance between dates
estimated from the data, nuisance priors from per-date fits); each injected unit series
then gets its matched-filter SNR on its crop (:class:`~insar_denoise.scoring.ideal_observer.
NoiseCovariance`), and ``5 / snr`` mm is the amplitude an ideal observer, knowing the shape
and history, detects at 5 sigma on this stack.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from insar_denoise.scoring.ideal_observer import NoiseCovariance, relative_series
from insar_denoise.scoring.noise_estimate import estimate_noise_params

log = logging.getLogger(__name__)


def ideal_thresholds(
    displacement: np.ndarray,
    dem: np.ndarray | None,
    pixel_spacing_m: float,
    places: list[tuple[int, int, int]],
    unit: np.ndarray,
    sources: list[str],
) -> dict[str, Any]:
    """5-sigma amplitudes (mm) of the unit series ``unit`` ``(n, T, c, c)`` at ``places``.

    Returns ``{"noise": {...}, "per_place_5sigma_mm": [...], "per_source": {name:
    {"n", "median_5sigma_mm", "min_5sigma_mm", "max_5sigma_mm"}}}``; NaN where a crop has
    too few valid pixels.
    """
    disp = np.asarray(displacement, np.float64)
    _, h, w = disp.shape
    noise = estimate_noise_params(disp, None, pixel_spacing_m, dem)
    crop = unit.shape[-1]
    out = []
    for (_, y, x), series in zip(places, unit, strict=True):
        win = (slice(y, y + crop), slice(x, x + crop))
        sub = disp[:, win[0], win[1]]
        valid = np.all(np.isfinite(sub), axis=0)
        dem_c = None if dem is None else np.asarray(dem, np.float64)[win]
        if dem_c is not None:
            valid &= np.isfinite(dem_c)
        if valid.sum() < 16:
            out.append(math.nan)
            continue
        cov = NoiseCovariance(valid, dem_c, noise, variance_shape=(h, w), tol=1e-5)
        lam = cov.quadratic(relative_series(series)[:, valid])
        out.append(5.0 / math.sqrt(lam) if lam > 0 else math.nan)
    per_source = {}
    for name in sorted(set(sources)):
        v = np.array([a for a, s in zip(out, sources, strict=True) if s == name], float)
        v = v[np.isfinite(v)]
        per_source[name] = {
            "n": int(v.size),
            "median_5sigma_mm": float(np.median(v)) if v.size else None,
            "min_5sigma_mm": float(v.min()) if v.size else None,
            "max_5sigma_mm": float(v.max()) if v.size else None,
        }
    return {
        "noise": {
            "beta": float(noise.turb_beta[0]),
            "k0_per_m": float(noise.turb_k0_per_m[0]),
            "turb_std_mm": [float(s) for s in noise.turb_std_mm[0]],
            # each later date's std against date 0 in the estimated covariance between dates
            "increment_std_mm": [float(v) ** 0.5 for v in np.diag(noise.date_cov_mm2[0].numpy())],
            "ramp_mm": list(noise.ramp_mm),
            "strat_coef_mm_per_km": list(noise.strat_coef_mm_per_km),
        },
        "per_place_5sigma_mm": [None if not math.isfinite(a) else a for a in out],
        "per_source": per_source,
    }
