"""Tests of insar_denoise.scoring.ideal_observer: checked against the simulator itself
(Monte Carlo) and against a dense reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from insar_denoise.scoring.ideal_observer import (
    IdealSNR,
    NoiseCovariance,
    batch_snr,
    relative_series,
    scene_snr,
)
from insar_denoise.synth import NoiseParams, SimConfig, simulate_batch
from insar_denoise.synth.turbulence import padded_size

N_PX, N_DATES, N_DRAWS = 32, 4, 320
# moderate spectra: the simulator divides each field by its own empirical std, which makes
# the noise a scale mixture whose small-scale variance exceeds the Gaussian model's by
# E[S^2] E[1/S^2] (about 1 % at beta = 5/3, 10 % at 8/3, 30 % at 11/3 on any tile size)
NOISE = {
    "source_probs": {"none": 1.0},
    "unwrap_prob": 0.0,
    "turbulence_std_mm": (2.0, 6.0),
    "powerlaw_beta": (5.0 / 3.0, 7.0 / 3.0),
    "correlation_length_km": (0.5, 3.0),
    "holes_prob": 0.5,
}


def _templates() -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[:N_PX, :N_PX].astype(float)
    bump = np.exp(-((yy - 13) ** 2 + (xx - 18) ** 2) / (2 * 2.5**2))  # Mogi-like, 6 px wide
    bowl = -np.exp(-((yy - 16) ** 2 + (xx - 15) ** 2) / (2 * 9.0**2))  # broad bowl
    hist = np.linspace(1.0 / (N_DATES - 1), 1.0, N_DATES - 1)
    return {k: hist[:, None, None] * v[None] for k, v in (("bump", bump), ("bowl", bowl))}


@pytest.fixture(scope="module")
def noise_batch():
    cfg = SimConfig(size=N_PX, n_dates=N_DATES, **NOISE)
    return simulate_batch(cfg, N_DRAWS, generator=torch.Generator().manual_seed(11))


@pytest.fixture(scope="module")
def projections(noise_batch):
    """Matched-filter projections of every noise draw on each template."""
    out = {k: [] for k in _templates()}
    for i in range(N_DRAWS):
        cov = NoiseCovariance(
            noise_batch.valid[i], noise_batch.dem[i], noise_batch.noise, index=i, tol=1e-4
        )
        noise = torch.nan_to_num(relative_series(noise_batch.displacement[i]))
        for name, g in _templates().items():
            cg = cov.apply_inverse(g)
            out[name].append(
                float((cg * noise).sum()) / math.sqrt(float((cg * torch.as_tensor(g)).sum()))
            )
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("name", ["bump", "bowl"])
def test_whitened_projection_has_unit_variance(projections, name):
    z = projections[name]
    assert abs(z.var() - 1.0) < 0.2, z.var()
    assert abs(z.mean()) < 4.0 / math.sqrt(z.size)


def test_matched_filter_amplitude_is_unbiased():
    cfg = SimConfig(
        size=N_PX,
        n_dates=N_DATES,
        **{**NOISE, "source_probs": {"mogi": 1.0}},
        amplitude_mm=(3.0, 3.0),
        history_probs={"linear": 1.0},
    )
    batch = simulate_batch(cfg, 150, generator=torch.Generator().manual_seed(5))
    est, err = [], []
    for i in range(batch.displacement.shape[0]):
        cov = NoiseCovariance(batch.valid[i], batch.dem[i], batch.noise, index=i, tol=1e-4)
        g = relative_series(batch.deformation[i]) / 3.0  # unit-amplitude template
        d = torch.nan_to_num(relative_series(batch.displacement[i]))
        cg = cov.apply_inverse(g)
        gcg = float((cg * g).sum())
        est.append(float((cg * d).sum()) / gcg)
        err.append(1.0 / math.sqrt(gcg))
    est, err = np.array(est), np.array(err)
    se = est.std() / math.sqrt(est.size)
    assert abs(est.mean() - 3.0) < 3 * se
    # the spread of the estimates is the matched filter's predicted error
    assert abs(np.mean(((est - 3.0) / err) ** 2) - 1.0) < 0.3


def _dense_quadratic(s, valid, dem, noise: NoiseParams) -> float:
    """sᵀC⁻¹s from the definition: absolute per-date covariances, date differences, and the
    improper offset prior as a limit (restricted form), all dense in float64."""
    h, w = valid.shape
    n = padded_size(h, noise.turb_pad)
    beta, k0 = float(noise.turb_beta[0]), float(noise.turb_k0_per_m[0])
    # the simulator's half-plane spectrum written as a sum of cosines over (ky, kx >= 0)
    ky = np.fft.fftfreq(n, noise.pixel_spacing_m)
    kx = np.fft.rfftfreq(n, noise.pixel_spacing_m)
    kyy, kxx = np.meshgrid(ky, kx, indexing="ij")
    k2 = kyy**2 + kxx**2
    p = np.where(k2 > 0, (k2 + k0**2 + (k2 == 0)) ** (-beta / 2), 0.0)
    # irfft keeps the real part on the kx = 0 and Nyquist columns: a quarter of the weight
    weight = np.where((kxx == 0) | (np.abs(kxx) == kx[-1]), 0.25, 1.0)
    yy, xx = np.mgrid[:h, :w]
    dy = (yy.ravel()[:, None] - yy.ravel()[None, :]) * noise.pixel_spacing_m
    dx = (xx.ravel()[:, None] - xx.ravel()[None, :]) * noise.pixel_spacing_m
    k_full = np.zeros((h * w, h * w))
    for a, b, c in zip(kyy.ravel(), kxx.ravel(), (2 * p * weight).ravel(), strict=True):
        if c:
            k_full += c * np.cos(2 * np.pi * (a * dy + b * dx))
    center = np.eye(h * w) - 1.0 / (h * w)
    k_full /= np.trace(k_full @ center) / (h * w)
    v = valid.ravel()
    k_obs = k_full[np.ix_(v, v)]
    # nuisance basis (simulator conventions) and the variances of its uniform priors
    c = (np.arange(h) + 0.5) / h - 0.5
    y, x = np.meshgrid(-c, c, indexing="ij")
    z = (dem - dem.min()) / 1000.0
    lo, hi = noise.ramp_mm
    basis = np.stack([x.ravel(), y.ravel(), z.ravel(), (z * z).ravel()], 1)[v]
    var = np.array(
        [(hi**3 - lo**3) / (3 * (hi - lo)) / 2] * 2
        + [np.var(np.linspace(*noise.strat_coef_mm_per_km, 100001))]
        + [np.var(np.linspace(*noise.strat_quad_mm_per_km2, 100001))]
    )
    nuis = basis @ np.diag(var) @ basis.T
    std = noise.turb_std_mm[0].double().numpy()
    t = std.size
    blocks = [std[i] ** 2 * k_obs + nuis for i in range(t)]
    m = v.sum()
    sigma_abs = np.zeros((t * m, t * m))
    for i in range(t):
        sigma_abs[i * m : (i + 1) * m, i * m : (i + 1) * m] = blocks[i]
    diff = np.kron(np.hstack([-np.ones((t - 1, 1)), np.eye(t - 1)]), np.eye(m))
    cov = diff @ sigma_abs @ diff.T
    ones = np.kron(np.eye(t - 1), np.ones((m, 1)))
    ci_s = np.linalg.solve(cov, s)
    ci_1 = np.linalg.solve(cov, ones)
    proj = ones.T @ ci_s
    return float(s @ ci_s - proj @ np.linalg.solve(ones.T @ ci_1, proj))


@pytest.mark.parametrize(("seed", "holes"), [(0, 0.0), (3, 1.0), (4, 1.0)])
def test_cg_agrees_with_dense_reference(seed, holes):
    cfg = SimConfig(
        size=12,
        n_dates=4,
        source_probs={"mogi": 1.0},
        holes_prob=holes,
        holes_fraction=(0.1, 0.2),
        unwrap_prob=0.0,
        real_dem_prob=0.0,
    )
    batch = simulate_batch(cfg, 1, generator=torch.Generator().manual_seed(seed))
    valid = batch.valid[0].numpy()
    dem = batch.dem[0].double().numpy()
    s = relative_series(batch.deformation[0]).numpy()
    rng = np.random.default_rng(seed)
    s = s + rng.normal(size=s.shape)  # a general (non-separable) series
    ref = _dense_quadratic(s[:, valid].ravel(), valid, dem, batch.noise)
    cov = NoiseCovariance(valid, dem, batch.noise, tol=1e-10)
    assert cov.quadratic(s) == pytest.approx(ref, rel=1e-4)
    # the separable path (one K solve) against the same reference
    sep = s[-1][None] * np.array([0.3, -0.5, 1.0])[:, None, None]
    ref_sep = _dense_quadratic(sep[:, valid].ravel(), valid, dem, batch.noise)
    assert cov.quadratic(sep) == pytest.approx(ref_sep, rel=1e-4)


def test_scene_snr_scales_linearly_and_batch_snr():
    cfg = SimConfig(size=24, n_dates=5, source_probs={"mogi": 1.0}, amplitude_mm=(4.0, 4.0))
    batch = simulate_batch(cfg, 2, generator=torch.Generator().manual_seed(2))
    res = batch_snr(batch)
    assert len(res) == 2 and all(isinstance(r, IdealSNR) for r in res)
    one = scene_snr(batch.deformation[1], batch.valid[1], batch.dem[1], batch.noise, index=1)
    assert one.snr == pytest.approx(res[1].snr, rel=1e-6)
    double = scene_snr(
        2 * batch.deformation[1], batch.valid[1], batch.dem[1], batch.noise.example(1)
    )
    assert double.snr == pytest.approx(2 * one.snr, rel=1e-5)
    assert double.amplitude_5sigma_mm == pytest.approx(one.amplitude_5sigma_mm, rel=1e-5)
    assert one.amplitude_mm == pytest.approx(4.0, rel=1e-5) and one.dof == 4
    assert one.snr_free == pytest.approx(one.snr**2 / math.sqrt(8.0))


def test_no_turbulence_is_refused():
    cfg = SimConfig(size=16, n_dates=3, turbulence=False)
    batch = simulate_batch(cfg, 1, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="no turbulence"):
        batch_snr(batch)
