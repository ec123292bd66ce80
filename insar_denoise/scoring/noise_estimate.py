"""Estimate the ideal observer's noise model (:class:`NoiseParams`) from a real stack.

The model is the simulator's (:mod:`.ideal_observer`): per-date turbulence ``sigma_t f_t`` of
one common spectrum ``P(k) = (k^2 + k0^2)^(-beta/2)``, referenced to date 0, plus ramps,
stratification and offsets. From the data:

1. each date ``d_t - d_0`` (t >= 1) gets its least-squares offset, ramp and (with a DEM)
   ``a z + q z^2`` removed; the fitted coefficients set the nuisance priors (uniform ranges
   spanning the fitted values: conservative, the fits also hold the turbulence's share);
2. ``beta`` and ``k0`` are fitted to the radially averaged power spectrum of the residual
   dates (each normalised by its variance), ``log P = c - beta/2 log(k^2 + k0^2)``, with
   ``k0`` on a grid (0 = power law) and ``c, beta`` by least squares (Hanssen 2001, sec. 4.7);
3. every date shares the reference date's atmosphere, so the cross-date covariance of the
   residuals is ``rho sigma_0^2`` and their variance ``rho (sigma_0^2 + sigma_t^2)``, with
   ``rho`` the expected share of the unit-variance turbulence left by step 1
   (``trace(Q K Q) / N``, computed with the fitted K): ``sigma_0^2`` is the median
   off-diagonal covariance over ``rho``. With two dates only, ``sigma_0 = sigma_1``.

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


def _psd_shape(res: np.ndarray, spacing_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum (mean over dates of unit-variance maps) and k."""
    t, h, w = res.shape
    spec = np.zeros((h, w))
    for r in res:
        spec += np.abs(np.fft.fft2(r / max(r.std(), 1e-12))) ** 2
    ky = np.fft.fftfreq(h, spacing_m)
    kx = np.fft.fftfreq(w, spacing_m)
    k = np.hypot(ky[:, None], kx[None, :])
    lo = 2.0 / (max(h, w) * spacing_m)
    hi = 0.5 / spacing_m
    edges = np.geomspace(lo, hi, 25)
    idx = np.digitize(k.ravel(), edges)
    kc, pc = [], []
    for b in range(1, edges.size):
        sel = idx == b
        if sel.sum() >= 3:
            kc.append(k.ravel()[sel].mean())
            pc.append(spec.ravel()[sel].mean())
    return np.array(kc), np.array(pc)


def fit_spectrum(k: np.ndarray, power: np.ndarray) -> tuple[float, float]:
    """``(beta, k0_per_m)`` of ``P = A (k^2 + k0^2)^(-beta/2)`` by least squares in log."""
    y = np.log(power)
    best = (math.inf, 8.0 / 3.0, 0.0)
    for k0 in (0.0, *(1.0 / (2.0 * math.pi * CORNER_LENGTHS_M))):
        x = -0.5 * np.log(k * k + k0 * k0)
        a = np.stack([np.ones_like(x), x], 1)
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        sse = float(np.sum((a @ coef - y) ** 2))
        if sse < best[0] and 0.5 <= coef[1] <= 5.0:
            best = (sse, float(coef[1]), float(k0))
    return best[1], best[2]


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


def _date_stds(res_obs: np.ndarray, rho: float) -> np.ndarray:
    """Turbulence std (mm) of the first date, then of each later date, from the residual
    Gram matrix: the first date's variance is shared by every increment (off-diagonal)."""
    gram = res_obs @ res_obs.T / res_obs.shape[1] / rho
    t1 = gram.shape[0]
    if t1 > 1:
        off = gram[~np.eye(t1, dtype=bool)]
        var0 = float(np.clip(np.median(off), 0.02 * np.median(np.diag(gram)), None))
    else:
        var0 = 0.5 * float(gram[0, 0])
    var_t = np.maximum(np.diag(gram) - var0, 0.02 * np.diag(gram))
    return np.sqrt(np.concatenate([[var0], var_t]))


def estimate_noise_params(
    displacement: np.ndarray,
    valid: np.ndarray | None,
    pixel_spacing_m: float,
    dem: np.ndarray | None,
    *,
    pad: float = 2.0,
) -> NoiseParams:
    """Noise model of a stack for the ideal observer (B = 1).

    Parameters
    ----------
    displacement : (T, H, W) mm LOS, any reference (re-referenced to the first date).
    valid : (H, W) bool, or None (finite pixels of every date).
    pixel_spacing_m : pixel spacing (m).
    dem : (H, W) elevation (m), or None (no stratification term).
    pad : padding factor of the periodic grid (as the simulator's ``turbulence_pad``).
    """
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
    beta, k0 = fit_spectrum(*_psd_shape(res, float(pixel_spacing_m)))
    probe.turb_beta, probe.turb_k0_per_m = torch.tensor([beta]), torch.tensor([k0])
    cov = NoiseCovariance(ok, dem, probe)
    std = _date_stds(res_obs, _turbulence_share(cov))
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
    )
