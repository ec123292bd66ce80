"""Tests of insar_denoise.baselines against closed forms and scipy as an independent reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from insar_denoise import baselines as bl


@pytest.fixture
def scene():
    rng = np.random.default_rng(0)
    t, h, w = 7, 40, 50
    yy, xx = np.mgrid[0:h, 0:w]
    dem = (800 + 300 * np.sin(yy / 7.0) * np.cos(xx / 9.0) + rng.normal(0, 20, (h, w))).astype(
        np.float64
    )
    times = np.array([0, 12, 24, 48, 60, 72, 96], dtype=np.float64)
    return t, h, w, dem, times, rng


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_stratified_delay_removed(scene, kind):
    t, h, w, dem, times, rng = scene
    k = rng.normal(0, 0.02, t)  # mm/m
    a = rng.normal(0, 5, t)  # mm
    disp = a[:, None, None] + k[:, None, None] * dem[None]
    disp[:, 3:6, 10:14] = np.nan  # holes do not bias the fit
    x = torch.from_numpy(disp) if kind == "torch" else disp
    out = bl.remove_elevation_correlation(x, dem)
    assert type(out) is type(x)
    out = np.asarray(out)
    finite = np.isfinite(disp)
    assert np.isnan(out[~finite]).all()
    np.testing.assert_allclose(out[finite], 0.0, atol=1e-4)
    fa, fk = bl.fit_elevation_correlation(disp, dem)
    np.testing.assert_allclose(fk.numpy(), k, rtol=1e-8, atol=1e-12)


def test_linear_rate_exact_with_nan(scene):
    t, h, w, dem, times, rng = scene
    rate = rng.normal(0, 0.1, (h, w))  # mm/day
    c = rng.normal(0, 3, (h, w))
    disp = c[None] + rate[None] * (times - times[0])[:, None, None]
    disp[2, 5, 5] = np.nan  # one missing date: still fitted from the others
    disp[:, 7, 8] = np.nan  # no data at all
    disp[1:, 9, 9] = np.nan  # one date only: undetermined
    cum = bl.linear_rate_stack(disp.astype(np.float32), times)
    assert cum.dtype == np.float32 and cum.shape == (h, w)
    expect = rate * (times[-1] - times[0])
    assert np.isnan(cum[7, 8]) and np.isnan(cum[9, 9])
    ok = np.isfinite(cum)
    assert ok.sum() == h * w - 2
    np.testing.assert_allclose(cum[ok], expect[ok], atol=1e-3)
    r, c_hat = bl.linear_rate(disp, times)
    np.testing.assert_allclose(r[5, 5], rate[5, 5], rtol=1e-10)
    np.testing.assert_allclose(c_hat[5, 5], c[5, 5], rtol=1e-10)


def test_gaussian_constant_and_nan_normalisation():
    img = np.full((30, 31), 4.25)
    img[10:13, 4:20] = np.nan
    out = bl.gaussian_filter_nan(img, 2.5)
    np.testing.assert_allclose(out[np.isfinite(img)], 4.25, rtol=1e-12)
    assert np.isnan(out[np.isnan(img)]).all()
    filled = bl.gaussian_filter_nan(img, 2.5, keep_nan=False)
    np.testing.assert_allclose(filled, 4.25, rtol=1e-12)
    # a stack is filtered date by date
    stack = np.stack([img, 2 * img])
    out2 = bl.gaussian_filter_nan(torch.from_numpy(stack), 1.0)
    assert isinstance(out2, torch.Tensor)
    np.testing.assert_allclose(out2[1][np.isfinite(img)].numpy(), 8.5, rtol=1e-12)


@pytest.mark.parametrize("sigma", [0.8, 2.0, 3.3])
def test_gaussian_matches_scipy_interior(sigma):
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(1)
    img = rng.normal(size=(60, 70))
    out = bl.gaussian_filter_nan(img, sigma)
    ref = ndimage.gaussian_filter(img, sigma, mode="constant", truncate=4.0)
    r = bl.filter_radius_px(sigma)
    np.testing.assert_allclose(out[r:-r, r:-r], ref[r:-r, r:-r], atol=1e-12)


def test_raw_and_dispatcher(scene):
    t, h, w, dem, times, rng = scene
    disp = rng.normal(size=(t, h, w))
    np.testing.assert_allclose(bl.raw_cumulative(disp), disp[-1] - disp[0])
    np.testing.assert_allclose(bl.classical_cumulative("raw", disp), disp[-1] - disp[0])
    np.testing.assert_allclose(
        bl.classical_cumulative("filter", disp, dem, times, 2.0),
        (lambda e: e[-1] - e[0])(bl.elevation_filter(disp, dem, 2.0)),
        atol=1e-10,
    )
    np.testing.assert_allclose(
        bl.classical_cumulative("stack", disp, dem, times), bl.linear_rate_stack(disp, times)
    )
    with pytest.raises(ValueError, match="unknown classical method"):
        bl.classical_cumulative("magic", disp)


def test_best_recovers_linear_deformation_under_stratified_delay(scene):
    t, h, w, dem, times, rng = scene
    yy, xx = np.mgrid[0:h, 0:w]
    rate = 0.05 * np.exp(-((yy - 20) ** 2 + (xx - 25) ** 2) / 200.0)  # smooth, mm/day
    k = rng.normal(0, 0.02, t)
    disp = rate[None] * times[:, None, None] + k[:, None, None] * dem[None]
    best = bl.best_classical(disp, dem, times, 1.0)
    truth = rate * (times[-1] - times[0])
    raw_err = np.abs(bl.raw_cumulative(disp) - truth).mean()
    assert np.abs(best - truth).mean() < 0.2 * raw_err
