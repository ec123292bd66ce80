"""Estimate the ideal observer's noise model (:class:`NoiseParams`) from a real stack.

The model is the simulator's (:mod:`.ideal_observer`): per-date turbulence ``sigma_t f_t`` of
one common spectrum ``P(k) = (k^2 + k0^2)^(-beta/2)``, referenced to date 0, plus ramps,
stratification and offsets. From the data:

1. each date ``d_t - d_0`` (t >= 1) gets its least-squares offset, ramp and (with a DEM)
   ``a z + q z^2`` removed; the fitted coefficients set the nuisance priors (uniform ranges
   spanning the fitted values: conservative, the fits also hold the turbulence's share);
2. ``beta`` and ``k0`` are fitted to the structure function of the residual dates (mean
   squared difference at lags of 1-48 px, median over dates), against that of
   ``P(k) = (k^2 + k0^2)^(-beta/2)`` on the simulator's padded grid, in log up to a scale,
   ``k0`` on a grid (0 = power law) (Hanssen 2001, sec. 4.7);
3. every date shares the reference date's atmosphere, so the cross-date covariance of the
   residuals is ``rho sigma_0^2`` and their variance ``rho (sigma_0^2 + sigma_t^2)``, with
   ``rho`` the expected share of the unit-variance turbulence left by step 1
   (``trace(Q K Q) / N``, computed with the fitted K): ``sigma_0^2`` is the median
   off-diagonal covariance over ``rho``. With two dates only, ``sigma_0 = sigma_1``;
4. the covariance between dates that the ideal observer uses is the residual Gram matrix over
   ``rho`` itself (``date_cov_mm2``): a real stack's dates need not be independent draws
   sharing date 0's atmosphere (DEM errors, seasonal delays or an inconsistent network
   correlate them), and on the Envisat stack that model put three dates at 0.2-0.4 mm where
   their increments hold 1.6-2.6 mm, so matched filters along the injected shapes scattered
   8-11x their predicted unit std on the stack without injection (1.1-1.5 with the Gram:
   ``benchmarks/noise_calibration.py``).

Real deformation in the stack raises the estimated noise (conservative thresholds).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from insar_denoise.scoring.ideal_observer import NoiseCovariance
from insar_denoise.synth.noise_params import NoiseParams

F64 = torch.float64
#: von Karman corners tried: k0 = 1 / (2 pi L), L from 0.3 to 100 km (and 0: power law)
CORNER_LENGTHS_M = np.geomspace(300.0, 1e5, 30)


#: lags (px) of the structure function, those up to a quarter of the map's smaller side
LAGS_PX = np.array([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48])
#: side (px) of the model's periodic grid at most (memory: 46 exponents x its wavenumbers;
#: lags of at most 48 px hardly see wavelengths beyond it)
MODEL_GRID_MAX = 512
#: spectral exponents tried (a grid, then a parabola through the best three)
BETAS = np.arange(0.5, 5.0001, 0.1)
#: dates at most this far apart give ``date_stds_from_lags`` its differences
LAG_DATES = 2
#: smallest eigenvalue of the date covariance, as a share of its largest (positive definite)
EIGEN_FLOOR = 1e-3


def structure_function(res: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Mean squared difference of the maps ``res (n, H, W)`` (NaN: not observed) at each lag,
    along x and y, median over maps and directions."""
    out = []
    for lag in lags:
        v = []
        for r in res:
            for a in (r[:, lag:] - r[:, :-lag], r[lag:, :] - r[:-lag, :]):
                if np.isfinite(a).any():
                    v.append(float(np.nanmean(a * a)))
        out.append(np.median(v))
    return np.array(out)


def model_structure(
    shape: tuple[int, int], spacing_m: float, pad: float, lags: np.ndarray, k0: float
) -> np.ndarray:
    """``(len(BETAS), len(lags))``: the structure function along x of a field of spectrum
    ``(k^2 + k0^2)^(-beta/2)`` synthesised on the periodic grid ``pad`` times the map (the
    simulator's; at most :data:`MODEL_GRID_MAX` a side),
    ``2 sum_k P(k) (1 - cos(2 pi k_x L dx))``, for every beta of :data:`BETAS`."""
    ny, nx = (min(int(math.ceil(pad * n)), MODEL_GRID_MAX) for n in shape)
    ky = np.fft.fftfreq(ny, spacing_m)
    kx = np.fft.rfftfreq(nx, spacing_m)
    k2 = (ky[:, None] ** 2 + kx[None, :] ** 2).ravel()
    keep = k2 > 0
    logk = np.log(k2[keep] + k0 * k0)
    kx_all = np.broadcast_to(kx, (ny, kx.size)).ravel()[keep]
    weight = 1.0 - np.cos(2.0 * math.pi * np.outer(kx_all, lags * spacing_m))
    return np.exp(-0.5 * np.outer(BETAS, logk)) @ weight


def fit_spectrum(res: np.ndarray, spacing_m: float, pad: float = 2.0) -> tuple[float, float]:
    """``(beta, k0_per_m)`` of the turbulence of residual maps ``res (n, H, W)``: their
    structure function against the model's (:func:`model_structure`), least squares in log
    up to a scale (Hanssen 2001, Radar Interferometry, sec. 4.7: power-law structure
    functions). Unlike a periodogram it has no leakage from the map's edges, which biased
    steep spectra low (beta 3.6 read as 3.0)."""
    lags = LAGS_PX[LAGS_PX <= min(res.shape[1:]) // 4]
    sf = structure_function(res, lags)
    if not np.all(np.isfinite(sf) & (sf > 0)):
        return 8.0 / 3.0, 0.0  # no turbulence to fit (a noise-free stack): Kolmogorov
    y = np.log(sf)
    best = (math.inf, 8.0 / 3.0, 0.0, None)
    for k0 in (0.0, *(1.0 / (2.0 * math.pi * CORNER_LENGTHS_M))):
        model = np.log(model_structure(res.shape[1:], spacing_m, pad, lags, k0))
        misfit = model - y
        sse = np.sum((misfit - misfit.mean(axis=1, keepdims=True)) ** 2, axis=1)
        i = int(np.argmin(sse))
        if sse[i] < best[0]:
            best = (float(sse[i]), float(BETAS[i]), float(k0), (i, sse))
    _, beta, k0, (i, sse) = best
    if 0 < i < len(BETAS) - 1:  # parabola through the best three
        a, b, c = sse[i - 1 : i + 2]
        den = a - 2 * b + c
        if den > 0:
            beta += 0.5 * float(BETAS[1] - BETAS[0]) * (a - c) / den
    return beta, k0


def _increments(
    displacement: np.ndarray, valid: np.ndarray | None, dem: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(T-1, H, W)`` float64 displacement relative to the first date and the pixels valid
    on every date (and in ``valid`` and ``dem``); ``ValueError`` below 64 pixels."""
    d = np.asarray(displacement, np.float64)
    if d.ndim != 3 or d.shape[0] < 2:
        raise ValueError(f"need a (T >= 2, H, W) stack, got shape {d.shape}")
    d = d[1:] - d[:1]
    ok = np.all(np.isfinite(d), axis=0)
    if valid is not None:
        ok &= np.asarray(valid, bool)
    if dem is not None:
        ok &= np.isfinite(np.asarray(dem, np.float64))
    if ok.sum() < 64:
        raise ValueError("fewer than 64 pixels valid on every date: cannot estimate the noise")
    return d, ok


def _turbulence_share(cov: NoiseCovariance) -> float:
    """rho = trace(Q K Q) / N with Q the projector off the nuisance basis: the share of a
    unit-std turbulence field left after the basis fit."""
    b = cov.basis
    kb = cov.apply_k(b.T.contiguous())
    trace_k = float(cov.apply_k(torch.eye(1, cov.n_obs, dtype=F64))[0, 0]) * cov.n_obs
    return (trace_k - float(torch.trace(torch.linalg.solve(b.T @ b, b.T @ kb.T)))) / cov.n_obs


def date_stds(gram: np.ndarray) -> np.ndarray:
    """Turbulence std (mm) of the first date, then of each later date, from the residual
    Gram matrix over rho: the first date's variance is shared by every increment
    (off-diagonal)."""
    t1 = gram.shape[0]
    if t1 > 1:
        off = gram[~np.eye(t1, dtype=bool)]
        var0 = float(np.clip(np.median(off), 0.02 * np.median(np.diag(gram)), None))
    else:
        var0 = 0.5 * float(gram[0, 0])
    var_t = np.maximum(np.diag(gram) - var0, 0.02 * np.diag(gram))
    return np.sqrt(np.concatenate([[var0], var_t]))


def date_stds_from_lags(gram: np.ndarray, max_lag: int = LAG_DATES) -> np.ndarray:
    """Turbulence std (mm) of the first date, then of each later date, from the differences
    of dates at most ``max_lag`` apart: ``E|d_t - d_u|² = var_t + var_u`` (the first date a
    date of zero displacement), solved by least squares and floored at 2 % of the median
    variance. A deformation common to many dates adds to every off-diagonal of the Gram
    matrix and so to :func:`date_stds`' first-date variance, which then floors the others;
    here it enters only through its change over ``max_lag`` dates."""
    # per-acquisition variances from the variances of date pairs by least squares, cf. Agram &
    # Simons (2015), J. Geophys. Res. Solid Earth 120, 2752 (a noise model of InSAR series)
    n = gram.shape[0] + 1
    g = np.zeros((n, n))
    g[1:, 1:] = gram
    rows, obs = [], []
    for t in range(n):
        for u in range(t + 1, min(n, t + max_lag + 1)):
            row = np.zeros(n)
            row[[t, u]] = 1.0
            rows.append(row)
            obs.append(g[t, t] + g[u, u] - 2.0 * g[t, u])
    var = np.linalg.lstsq(np.asarray(rows), np.asarray(obs), rcond=None)[0]
    floor = 0.02 * max(float(np.median(var)), 1e-12)
    return np.sqrt(np.maximum(var, floor))


def shared_reference_covariance(std: np.ndarray) -> np.ndarray:
    """``(T-1, T-1)`` covariance (mm²) of dates 1..T-1 relative to date 0 when every date is an
    independent draw of std ``std[t]`` (mm) sharing date 0's: ``diag(std_t²) + std_0²``."""
    var = np.asarray(std, np.float64) ** 2
    return np.diag(var[1:]) + var[0]


def date_covariance(gram: np.ndarray, std: np.ndarray, n_pixels: int) -> np.ndarray:
    """``(T-1, T-1)`` covariance (mm²) of dates 1..T-1: the residual Gram matrix over rho,
    shrunk toward the shared-reference model ``diag(std_t²) + std_0²`` by ``(T-1) / n_pixels``
    (many dates on few pixels), eigenvalues floored at :data:`EIGEN_FLOOR` of the largest."""
    share = min(1.0, gram.shape[0] / max(n_pixels, 1))
    m = (1.0 - share) * gram + share * shared_reference_covariance(std)
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    w = np.maximum(w, EIGEN_FLOOR * float(w.max()))
    return (v * w) @ v.T


def estimate_noise_params(
    displacement: np.ndarray,
    valid: np.ndarray | None,
    pixel_spacing_m: float,
    dem: np.ndarray | None,
    *,
    pad: float = 2.0,
    date_variances: str = "gram",
) -> NoiseParams:
    """Noise model of a stack for the ideal observer (B = 1).

    Parameters
    ----------
    displacement : (T, H, W) mm LOS, any reference (re-referenced to the first date).
    valid : (H, W) bool, or None (finite pixels of every date).
    pixel_spacing_m : pixel spacing (m).
    dem : (H, W) elevation (m), or None (no stratification term).
    pad : padding factor of the periodic grid (as the simulator's ``turbulence_pad``).
    date_variances : ``"gram"`` (:func:`date_stds`: the first date's variance from the
        residual Gram matrix's off-diagonal) or ``"lags"`` (:func:`date_stds_from_lags`:
        from differences of nearby dates, which a deformation shared by the dates does not
        inflate; session 49).
    """
    if date_variances not in ("gram", "lags"):
        raise ValueError(f"date_variances={date_variances!r}: 'gram' or 'lags'")
    d, ok = _increments(displacement, valid, dem)
    # a unit-std model on this grid gives the nuisance basis and the turbulence's share
    ramp, strat = (0.0, 1.0), (-1.0, 1.0)
    probe = NoiseParams(
        turb_beta=torch.tensor([8.0 / 3.0]),
        turb_k0_per_m=torch.tensor([0.0]),
        turb_std_mm=torch.ones(1, 2),
        turb_pad=pad,
        pixel_spacing_m=float(pixel_spacing_m),
        stratified=dem is not None,
        strat_coef_mm_per_km=strat,
        strat_quad_mm_per_km2=strat,
        orbital_ramps=True,
        ramp_mm=ramp,
        offsets=True,
    )
    cov = NoiseCovariance(ok, dem, probe)
    basis = cov.basis.numpy()
    obs = d[:, ok]
    coef, *_ = np.linalg.lstsq(basis, obs.T, rcond=None)  # (p, T-1)
    res_obs = obs - (basis @ coef).T
    res = np.zeros_like(d)
    res[:, ok] = res_obs
    res[:, ~ok] = np.nan
    beta, k0 = fit_spectrum(res, float(pixel_spacing_m), pad)
    probe.turb_beta, probe.turb_k0_per_m = torch.tensor([beta]), torch.tensor([k0])
    cov = NoiseCovariance(ok, dem, probe)
    gram = res_obs @ res_obs.T / res_obs.shape[1] / _turbulence_share(cov)
    std = date_stds_from_lags(gram) if date_variances == "lags" else date_stds(gram)
    names = cov.basis_names
    ramp_span = np.hypot(coef[names.index("ramp_x")], coef[names.index("ramp_y")])
    strat_a = np.abs(coef[names.index("z")]).max() if "z" in names else 0.0
    strat_q = np.abs(coef[names.index("z2")]).max() if "z2" in names else 0.0
    return NoiseParams(
        turb_beta=torch.tensor([beta]),
        turb_k0_per_m=torch.tensor([k0]),
        turb_std_mm=torch.as_tensor(std, dtype=torch.float32)[None],
        turb_pad=float(pad),
        pixel_spacing_m=float(pixel_spacing_m),
        turbulence=True,
        stratified="z" in names,
        strat_coef_mm_per_km=(-float(strat_a), float(strat_a)),
        strat_quad_mm_per_km2=(-float(strat_q), float(strat_q)),
        orbital_ramps=True,
        ramp_mm=(0.0, float(ramp_span.max())),
        offsets=True,
        offset_mm=(-math.inf, math.inf),
        date_cov_mm2=torch.as_tensor(date_covariance(gram, std, res_obs.shape[1]))[None],
    )
