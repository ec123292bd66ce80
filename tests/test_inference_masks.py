"""Tests of insar_denoise.inference.masks and of the engine's rule for pixels with gaps."""

from __future__ import annotations

import numpy as np
import pytest

from insar_denoise.errors import ConfigError
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.masks import (
    default_min_valid_dates,
    fill_time_gaps,
    valid_pixels,
)
from insar_denoise.inference.testing import synthetic_dataset, tiny_model

N_DATES = 12
GAP2 = (5, 9)  # (y, x) of a pixel missing on 2 of 12 dates
GAP2_LAST = (3, 20)  # missing on 2 dates, one of them the last
GAP10 = (15, 15)  # missing on 10 of 12 dates
GAP2_DATES = [4, 7]


def _gappy(chunk: bool = False):
    ds = synthetic_dataset(n_dates=N_DATES, shape=(24, 28), seed=3)
    disp = ds["displacement"].values.copy()
    disp[GAP2_DATES, GAP2[0], GAP2[1]] = np.nan
    disp[[2, N_DATES - 1], GAP2_LAST[0], GAP2_LAST[1]] = np.nan
    disp[2:, GAP10[0], GAP10[1]] = np.nan
    ds = ds.assign(displacement=(("time", "y", "x"), disp))
    return ds.chunk({"y": 12, "x": 14}) if chunk else ds


def test_fill_time_gaps_matches_numpy_interp():
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.uniform(5, 20, size=10))
    v = rng.normal(size=(10, 30))
    v[rng.uniform(size=v.shape) < 0.4] = np.nan
    v[:, 0] = np.nan  # a pixel without any valid date stays NaN
    out = fill_time_gaps(v, t)
    assert np.isnan(out[:, 0]).all()
    for j in range(1, v.shape[1]):
        ok = np.isfinite(v[:, j])
        if ok.any():  # np.interp holds the end values: nearest at the edges
            np.testing.assert_allclose(out[:, j], np.interp(t, t[ok], v[ok, j]), rtol=1e-12)


def test_valid_pixels_counts_dates_and_valid_mask():
    disp = np.zeros((6, 2, 2))
    disp[:4, 0, 0] = np.nan  # 2 valid dates
    disp[:2, 0, 1] = np.nan  # 4 valid dates
    valid = np.array([[True, True], [True, False]])
    keep = valid_pixels(disp, valid, 3)
    np.testing.assert_array_equal(keep, [[False, True], [True, False]])
    assert default_min_valid_dates(12) == 6
    assert default_min_valid_dates(13, window=9) == 9
    assert default_min_valid_dates(5, window=9) == 5


@pytest.mark.parametrize("method", ["model", "raw", "elevation", "filter", "stack", "best"])
@pytest.mark.parametrize("chunk", [False, True])
def test_pixel_with_two_gaps_is_kept(method, chunk):
    out = denoise_dataset(
        _gappy(chunk), tiny_model(), method=method, tile=16, overlap=4, progress=False
    )
    out = out.compute()
    series = out["deformation"].values
    noise = out["noise"].values
    y, x = GAP2
    assert np.isfinite(out["cumulative_deformation"].values[y, x])
    assert np.isnan(series[GAP2_DATES, y, x]).all()
    others = [t for t in range(N_DATES) if t not in GAP2_DATES]
    assert np.isfinite(series[others, y, x]).all()
    assert np.isnan(noise[GAP2_DATES, y, x]).all() and np.isfinite(noise[others, y, x]).all()
    y, x = GAP2_LAST  # the last date is missing: the cumulative bridges it from the last valid
    assert np.isfinite(out["cumulative_deformation"].values[y, x]) and np.isnan(series[-1, y, x])
    assert np.isnan(out["cumulative_deformation"].values[GAP10])
    assert np.isnan(series[:, GAP10[0], GAP10[1]]).all()
    assert out.attrs["insar_denoise_min_valid_dates"] == 6  # half of 12 (tiny model window 5)


def test_stack_rate_uses_each_pixels_valid_dates():
    ds = _gappy()
    out = denoise_dataset(ds, method="stack", progress=False)
    days = (ds.time.values - ds.time.values[0]) / np.timedelta64(1, "D")
    y, x = GAP2
    v = ds["displacement"].values[:, y, x]
    ok = np.isfinite(v)
    rate = np.polyfit(days[ok], v[ok], 1)[0]  # independent least-squares line
    assert float(out["cumulative_deformation"].values[y, x]) == pytest.approx(
        rate * days[-1], rel=1e-5
    )


def test_model_sees_interpolated_dates():
    """A linear-in-time pixel with gaps gives the same exact-model output as without gaps."""
    ds = synthetic_dataset(n_dates=N_DATES, shape=(16, 16), noise_mm=0.0)
    days = (ds.time.values - ds.time.values[0]) / np.timedelta64(1, "D")
    full = (0.05 * days)[:, None, None] * np.ones((1, 16, 16))
    gappy = full.copy()
    gappy[GAP2_DATES, 8, 8] = np.nan
    ds_full = ds.assign(displacement=(("time", "y", "x"), full.astype(np.float32)))
    ds_gap = ds.assign(displacement=(("time", "y", "x"), gappy.astype(np.float32)))
    a = denoise_dataset(ds_full, tiny_model(exact=True), progress=False)
    b = denoise_dataset(ds_gap, tiny_model(exact=True), progress=False)
    np.testing.assert_allclose(
        b["cumulative_deformation"].values, a["cumulative_deformation"].values, atol=1e-4
    )


def test_min_valid_dates_option():
    ds = _gappy()
    out = denoise_dataset(ds, method="raw", min_valid_dates=N_DATES, progress=False)
    assert np.isnan(out["cumulative_deformation"].values[GAP2])  # needs every date now
    assert np.isfinite(out["cumulative_deformation"].values[0, 0])
    loose = denoise_dataset(ds, method="raw", min_valid_dates=2, progress=False)
    assert np.isfinite(loose["cumulative_deformation"].values[GAP10])
    with pytest.raises(ConfigError, match="--min-valid-dates 13"):
        denoise_dataset(ds, method="raw", min_valid_dates=13, progress=False)
