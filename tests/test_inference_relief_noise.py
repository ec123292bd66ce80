"""Stratification added to the gate's noise maps on scenes the relief check flags."""

from __future__ import annotations

import numpy as np
import pytest

from insar_denoise.inference import relief, relief_noise
from insar_denoise.inference.broad_scales import cumulative_weights


def _dem(shape=(90, 80), seed=0) -> np.ndarray:
    """A smooth DEM (m) with ~2 km of relief above 300 m."""
    y, x = np.mgrid[: shape[0], : shape[1]] / 30.0
    rng = np.random.default_rng(seed)
    return 300.0 + 1000.0 * (1.0 + np.sin(x + rng.uniform()) * np.cos(0.7 * y))


def test_date_coefficients_recover_each_dates_stratification():
    dem = _dem()
    z = (dem - dem.min()) / 1000.0
    rng = np.random.default_rng(1)
    k, q = rng.normal(0, 10, 12), rng.normal(0, 3, 12)
    stack = k[:, None, None] * z + q[:, None, None] * z * z + rng.normal(0, 0.1, (12, *z.shape))
    stack += rng.normal(0, 5, (12, 1, 1))  # a level per date: not stratification
    stack[3, :40] = np.nan  # a missing half-date is fitted on the rest
    coefs, base = relief_noise.date_coefficients(stack, dem, step=2)
    assert base == pytest.approx(dem[::2, ::2].min())
    np.testing.assert_allclose(coefs[:, 0], k, atol=0.3)
    np.testing.assert_allclose(coefs[:, 1], q, atol=0.15)


def test_detrending_keeps_date_to_date_delay_and_drops_steady_growth():
    days = np.arange(24) * 12.0
    steady = np.stack([0.5 * days, -0.1 * days + 3.0], axis=1)  # deformation following relief
    np.testing.assert_allclose(relief_noise.detrended(steady, days), 0.0, atol=1e-9)
    rng = np.random.default_rng(2)
    random = rng.normal(0, 4.0, (24, 2))
    out = relief_noise.detrended(steady + random, days)
    # the sqrt(T / (T - 2)) factor makes the residual spread an unbiased estimate of 4 mm/km
    assert np.sqrt(np.mean(out**2, axis=0)) == pytest.approx([4.0, 4.0], rel=0.35)


def test_realisations_match_the_spread_of_the_cumulatives_stratification():
    """Over many stacks with independent per-date stratification, the terms' RMS equals the
    RMS of the least-squares cumulative's own elevation coefficients ``sum_t a_t k_t``."""
    days = np.arange(36) * 12.0
    weights = cumulative_weights(days, np.ones(36), 4)
    rng = np.random.default_rng(3)
    actual, predicted = [], []
    for _ in range(200):
        coefs = rng.normal(0, [8.0, 2.0], (36, 2))
        actual.append(weights @ coefs)
        terms = relief_noise.realisation_terms(relief_noise.detrended(coefs, days), weights, 16)
        predicted.append(terms)
    rms_actual = np.sqrt(np.mean(np.square(actual), axis=0))
    rms_predicted = np.sqrt(np.mean(np.square(np.concatenate(predicted)), axis=0))
    np.testing.assert_allclose(rms_predicted, rms_actual, rtol=0.15)


@pytest.mark.parametrize("n_dates", [9, 24])
def test_short_stacks_count_steady_stratification_as_noise(n_dates):
    """A trend of the elevation coefficients (deformation that follows the relief, or
    stratification drifting with the season) is kept as signal on a long stack; below
    MIN_TREND_DATES dates it is counted as noise: the terms' RMS is the cumulative's own
    elevation coefficient (sum_t a_t k_t over random signs)."""
    dem = _dem()
    z = (dem - dem.min()) / 1000.0
    days = np.arange(n_dates) * 12.0
    k = 2.0 * days / days[-1] * 10.0  # 20 mm/km over the stack, steadily
    stack = (k[:, None, None] * z[None]).astype(np.float32)
    weights = cumulative_weights(days, np.ones(n_dates), 4)
    noise = np.zeros((400, *dem.shape), np.float32)
    maps = relief_noise.with_stratification(noise, stack, dem, days, weights)
    rms_k = float(np.sqrt(np.mean(maps.terms[:, 0] ** 2)))
    if n_dates >= relief_noise.MIN_TREND_DATES:
        assert rms_k < 0.01
    else:
        assert rms_k == pytest.approx(float(np.sqrt(np.sum((weights * k) ** 2))), rel=0.15)


def test_maps_add_each_realisations_term_by_rows():
    dem = _dem()
    rng = np.random.default_rng(4)
    noise = rng.normal(size=(3, *dem.shape)).astype(np.float32)
    terms = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 1.0]])
    maps = relief_noise.WithStratification(noise, dem, terms, base_m=300.0)
    assert len(maps) == 3 and maps.shape == (3, *dem.shape)
    z = (dem[10:30] - 300.0) / 1000.0
    expected = noise[2, 10:30] - 3.0 * z + z * z
    np.testing.assert_allclose(maps[2, 10:30], expected, atol=1e-5)


def test_unflagged_scenes_keep_their_noise_maps():
    noise = np.zeros((2, 4, 4), np.float32)
    args = (np.zeros((5, 4, 4)), np.zeros((4, 4)), np.arange(5.0), np.ones(5), 4)
    assert relief_noise.gate_noise(noise, *args, relief=None) is noise
    calm = (relief.RELIEF_RATIO - 0.1, 10.0)
    assert relief_noise.gate_noise(noise, *args, relief=calm) is noise


def test_balanced_terms_have_exactly_the_covariance_random_signs_only_approach():
    rng = np.random.default_rng(5)
    coefs = rng.normal(0.0, [6.0, 2.0], (36, 2))
    weights = rng.uniform(-0.1, 0.1, 36)
    cov = (coefs * weights[:, None] ** 2).T @ coefs
    terms = relief_noise.balanced_terms(cov, 16)
    assert terms.shape == (16, 2)
    np.testing.assert_allclose(terms.T @ terms / 16, cov, rtol=1e-9, atol=1e-12)
    # the local mean square of K z + Q z² at every elevation is the exact variance; 16
    # random-sign sums (realisation_terms) miss it by more than 10 % somewhere
    z = np.linspace(0.0, 3.0, 31)
    basis = np.stack([z, z * z], axis=1)
    exact = np.einsum("ij,jk,ik->i", basis, cov, basis)
    np.testing.assert_allclose(np.mean((basis @ terms.T) ** 2, axis=1), exact, rtol=1e-9)
    signs = relief_noise.realisation_terms(coefs, weights, 16)
    sampled = np.mean((basis @ signs.T) ** 2, axis=1)
    assert np.max(np.abs(sampled[1:] / exact[1:] - 1.0)) > 0.1
