"""Optional per-date ramp removal (``run --deramp``)."""

from __future__ import annotations

import numpy as np

from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.deramp import deramp_dataset
from insar_denoise.inference.testing import synthetic_dataset


def _plane_residual(img: np.ndarray) -> np.ndarray:
    """Independent reference: numpy least squares of one date on (1, x, y)."""
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w]
    ok = np.isfinite(img)
    g = np.c_[np.ones(ok.sum()), xx[ok], yy[ok]]
    coef = np.linalg.lstsq(g, img[ok], rcond=None)[0]
    return img - (coef[0] + coef[1] * xx + coef[2] * yy)


def test_deramp_removes_each_dates_plane_like_lstsq():
    ds = synthetic_dataset(n_dates=5, shape=(30, 40), noise_mm=1.0)
    h, w = 30, 40
    yy, xx = np.mgrid[0:h, 0:w]
    disp = ds["displacement"].values.copy()
    disp += np.arange(5)[:, None, None] * (0.3 * xx - 0.2 * yy + 4)[None]
    disp[2, 5:9, 7:12] = np.nan
    ds["displacement"].values[:] = disp
    out = deramp_dataset(ds)["displacement"].values
    for t in range(5):
        np.testing.assert_allclose(out[t], _plane_residual(disp[t]), atol=1e-3)
    lazy = deramp_dataset(ds.chunk({"y": 16, "x": 16}))["displacement"].values
    np.testing.assert_allclose(lazy, out, atol=1e-4)


def test_denoise_with_deramp_reports_noise_against_the_original_input():
    ds = synthetic_dataset(n_dates=6, shape=(24, 24), noise_mm=0.5)
    out = denoise_dataset(ds, method="stack", deramp=True)
    src = ds["displacement"].values
    np.testing.assert_allclose(
        out["noise"].values, (src - src[:1]) - out["deformation"].values, atol=1e-4
    )
    assert out.attrs["insar_denoise_deramp"] == "yes"
