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
import torch

from insar_denoise.scoring.ideal_observer import NoiseCovariance, relative_series
from insar_denoise.scoring.noise_estimate import estimate_noise_params
from insar_denoise.synth.noise_params import NoiseParams

log = logging.getLogger(__name__)
#: the model check's largest root-mean-square z that still counts as the model holding (at
#: `inject`'s default 20 places, the mean of 20 squared unit normals passes 2² with
#: probability below 1e-6)
CHECK_RMS = 2.0


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
    {"n", "median_5sigma_mm", "min_5sigma_mm", "max_5sigma_mm"}}, "model_check": {...}}``;
    NaN where a crop has too few valid pixels. ``model_check`` (:func:`model_check`): the same
    matched filters applied to the stack itself, whose scatter is 1 where the model holds.
    """
    disp = np.asarray(displacement, np.float64)
    _, h, w = disp.shape
    noise = estimate_noise_params(disp, None, pixel_spacing_m, dem)
    crop = unit.shape[-1]
    out: list[float] = []
    z: list[float] = []
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
        g = relative_series(np.where(valid, series, 0.0))
        cg = cov.apply_inverse(g)
        lam = float((cg * g).sum())
        out.append(5.0 / math.sqrt(lam) if lam > 0 else math.nan)
        if lam > 0:
            data = torch.nan_to_num(relative_series(np.where(valid, sub, 0.0)))
            z.append(float((cg * data).sum()) / math.sqrt(lam))
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
            "increment_std_mm": increment_stds(noise),
            "ramp_mm": list(noise.ramp_mm),
            "strat_coef_mm_per_km": list(noise.strat_coef_mm_per_km),
        },
        "per_place_5sigma_mm": [None if not math.isfinite(a) else a for a in out],
        "per_source": per_source,
        "model_check": model_check(z),
    }


def increment_stds(noise: NoiseParams) -> list[float]:
    """Each later date's std (mm) against date 0 under the noise model: from the estimated
    covariance between dates, or ``sqrt(std_t² + std_0²)`` without one."""
    if noise.date_cov_mm2 is not None:
        return [float(v) ** 0.5 for v in np.diag(noise.date_cov_mm2[0].double().numpy())]
    std = noise.turb_std_mm[0].double().numpy()
    return [float(v) for v in np.hypot(std[1:], std[0])]


def model_check(z: list[float]) -> dict[str, Any]:
    """The matched filters ``z`` of the injected shapes on the stack without injection: their
    root mean square is 1 where the noise model holds (a correct covariance whitens them;
    Kay 1998, Fundamentals of Statistical Signal Processing vol. II, sec. 4.3). Above
    :data:`CHECK_RMS` the stack's noise, or deformation at the places, departs from the model
    and the 5-sigma amplitudes are optimistic by about that factor (logged as a warning)."""
    rms = float(np.sqrt(np.mean(np.square(z)))) if z else math.nan
    holds = bool(rms <= CHECK_RMS) if z else None
    if holds is False:
        log.warning(
            "ideal observer: matched filters on the stack itself scatter %.1fx their modelled "
            "std; its 5-sigma amplitudes are optimistic by about that factor",
            rms,
        )
    return {"n": len(z), "z_rms": None if not z else rms, "holds": holds}
