"""Stratified-delay correction of relief-flagged stacks (inference/stratification.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from scipy import ndimage

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset, relief, stratification
from insar_denoise.inference.relief import elevation_part_std
from insar_denoise.models import load_model

SHAPE = (96, 96)


def _stack(n_dates: int, strat_mm_per_km: float, steady_mm_per_km: float, seed: int = 0):
    """Displacement ``(T, H, W)`` relative to the first date: per-date random stratified delay
    ``k_t z`` (std ``strat_mm_per_km``), a steady deformation ``steady × t/T × z`` that follows
    the relief, and 1 mm of correlated turbulence; the DEM (m) and the times (days)."""
    rng = np.random.default_rng(seed)
    hill = ndimage.gaussian_filter(rng.normal(size=SHAPE), 12.0)
    dem = 3000.0 * (hill - hill.min()) / np.ptp(hill)
    z = dem / 1000.0
    days = np.arange(n_dates) * 12.0
    k = rng.normal(0.0, strat_mm_per_km, n_dates)
    steady = steady_mm_per_km * (days / days[-1])
    turb = np.stack([ndimage.gaussian_filter(rng.normal(size=SHAPE), 4.0) for _ in days])
    turb *= 1.0 / turb.std()
    disp = (k + steady)[:, None, None] * z[None] + turb
    return (disp - disp[:1]).astype(np.float32), dem.astype(np.float32), days


def test_trend_weights_give_the_span_of_the_fitted_line():
    days = np.array([0.0, 12.0, 30.0, 36.0, 60.0, 96.0])
    values = 2.0 + 0.05 * days + np.random.default_rng(0).normal(size=6)
    slope = np.polyfit(days, values, 1)[0]
    span = slope * (days[-1] - days[0])
    assert stratification.trend_weights(days) @ values == pytest.approx(span)


@pytest.fixture
def flag_all(monkeypatch):
    """The relief check flags every stack (the correction is what these tests look at)."""
    monkeypatch.setattr(relief, "RELIEF_RATIO", 0.0)
    monkeypatch.setattr(relief, "RELIEF_MIN_MM", 0.0)


def test_plan_removes_date_to_date_stratification(flag_all):
    disp, dem, days = _stack(24, strat_mm_per_km=20.0, steady_mm_per_km=0.0)
    fix, _, note = stratification.plan(disp, dem, days, np.ones(24, np.float32), 4, 16)
    assert fix is not None
    assert json.loads(note)["removed_k_std_mm_per_km"] == pytest.approx(20.0, rel=0.4)
    corrected = disp - fix.delay(dem)
    corrected -= corrected[:1]  # relative to the first date, as the engine uses it
    z = (dem - dem.min()) / 1000.0
    before = np.median([elevation_part_std(d, z) for d in disp[1:]])
    line = corrected[-1][None] * (days / days[-1])[:, None, None]
    after = np.median([elevation_part_std(d, z) for d in (corrected - line)[1:]])
    # what is left per date is the fitted line in time (the trend the gate is told about)
    assert after < 0.2 * before


def test_plan_keeps_steady_deformation_that_follows_the_relief(flag_all):
    disp, dem, days = _stack(24, strat_mm_per_km=20.0, steady_mm_per_km=6.0)
    fix = stratification.plan(disp, dem, days, np.ones(24, np.float32), 4, 16)[0]
    corrected = disp - fix.delay(dem)
    z = (dem - dem.min()) / 1000.0
    # the cumulative's elevation slope: the 6 mm/km plus the trend of the random delays,
    # within the trend's noise that the gate's noise maps gain
    cumulative = corrected[-1] - corrected[0]
    design_ = np.stack([np.ones(z.size), z.ravel()], axis=1)
    slope = np.linalg.lstsq(design_, cumulative.ravel(), rcond=None)[0][1]
    trend_sd = float(np.sqrt(np.mean(fix.terms[:, 0] ** 2)))
    assert abs(slope - 6.0) < 3.0 * trend_sd
    # 20 mm/km per date: the span of a line fitted to 24 of them has std 20 x sqrt(12 / 24)
    assert trend_sd == pytest.approx(20.0 * np.sqrt(12.0 / 24.0 * 24.0 / 26.0), rel=0.5)


def test_plan_leaves_unflagged_and_short_stacks_alone(monkeypatch):
    # stratification on every date: the noise maps' fit residuals show it, no flag
    disp, dem, days = _stack(24, strat_mm_per_km=20.0, steady_mm_per_km=0.0)
    fix, (ratio, _), note = stratification.plan(disp, dem, days, np.ones(24, np.float32), 4, 16)
    assert fix is None and note == "none" and ratio < relief.RELIEF_RATIO
    monkeypatch.setattr(relief, "RELIEF_RATIO", 0.0)
    monkeypatch.setattr(relief, "RELIEF_MIN_MM", 0.0)
    disp, dem, days = _stack(9, strat_mm_per_km=20.0, steady_mm_per_km=0.0)
    fix, _, note = stratification.plan(disp, dem, days, np.ones(9, np.float32), 4, 16)
    assert fix is None
    assert note == f"skipped: 9 dates (at least {stratification.MIN_DATES})"


def test_corrected_keeps_coords_and_nan_elevation_is_not_corrected(flag_all):
    disp, dem, days = _stack(24, strat_mm_per_km=20.0, steady_mm_per_km=0.0)
    fix = stratification.plan(disp, dem, days, np.ones(24, np.float32), 4, 16)[0]
    src = xr.DataArray(disp, dims=("time", "y", "x"), coords={"y": np.arange(96.0)})
    dem_nan = dem.copy()
    dem_nan[:5] = np.nan
    out = stratification.corrected(src, xr.DataArray(dem_nan, dims=("y", "x")), fix)
    assert out.dims == src.dims and np.array_equal(out["y"], src["y"])
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out.values[:, :5], disp[:, :5])
    assert not np.allclose(out.values[:, 5:], disp[:, 5:])


def test_engine_corrects_a_high_relief_stack_and_keeps_noise_plus_signal_equal_to_input():
    spec = next(s for s in design(84, 0, "shifted") if s.index == 63)  # a 72-date bowl
    batch, ds = simulate(spec, "shifted", 192)
    out = denoise_dataset(ds, load_model("default"), progress=False)
    note = json.loads(out.attrs[stratification.STRAT_ATTR])
    assert note["removed_k_std_mm_per_km"] > 1.0
    cum = out["cumulative_deformation"].values
    truth = batch.cumulative[0].numpy()
    ok = batch.valid[0].numpy() & np.isfinite(cum)
    r = np.corrcoef(cum[ok], truth[ok])[0, 1]
    assert r > 0.9  # 0.71 without the correction (Benchmark v2, session 9)
    referenced = ds["displacement"].values - ds["displacement"].values[:1]
    total = out["noise"].values + out["deformation"].values
    fin = np.isfinite(referenced)
    np.testing.assert_allclose(total[fin], referenced[fin], atol=1e-3)
    # the bands hold the kept trend's variance: ~8 mm of 1-sigma on the highest peaks (2.6
    # km of relief), twice the scene's median band
    from insar_denoise.inference.engine import times_in_days
    from insar_denoise.inference.stack_runner import scene_date_variances
    from insar_denoise.inference.unwrapping import unwrapping_fix

    disp = ds["displacement"].transpose("time", "y", "x").values.astype(np.float32)
    dem = ds["dem"].values
    fixed, _ = unwrapping_fix(disp, dem)  # the engine plans on the stack without them
    disp = disp if fixed is None else disp - fixed
    var = scene_date_variances(disp.astype(np.float32), 64)
    fix = stratification.plan(disp, dem, times_in_days(ds["time"].values), var, 4, 16)[0]
    trend_var = np.asarray(fix.trend_variance(dem))
    u68, u95 = out["uncertainty"].values, out["uncertainty_95"].values
    band = np.isfinite(u68)
    high = band & (trend_var > np.percentile(trend_var[band], 95))
    assert np.sqrt(trend_var[high]).min() > 1.5 * np.nanmedian(u68)  # it matters there
    assert np.all(u68[band] ** 2 >= trend_var[band] * (1 - 1e-4))
    assert np.all(u95[band] ** 2 >= 1.96**2 * trend_var[band] * (1 - 1e-4))
    # and the run's relief warning says how large it gets
    from insar_denoise.trust.qc import relief_findings

    largest = json.loads(out.attrs[stratification.STRAT_ATTR])[stratification.TREND_SD_KEY]
    assert largest == pytest.approx(np.sqrt(trend_var.max()), abs=0.01)
    (finding,) = relief_findings(dict(out.attrs))
    assert f"uncertain by up to {largest:.1f} mm (1 sigma)" in finding.message


def test_trend_variance_is_that_of_the_kept_line_at_each_elevation(flag_all):
    from insar_denoise.inference.relief_noise import realisation_terms

    disp, dem, days = _stack(24, strat_mm_per_km=20.0, steady_mm_per_km=0.0)
    fix = stratification.plan(disp, dem, days, np.ones(24, np.float32), 4, 16)[0]
    # an independent estimate: many random-sign realisations of the line's span
    # (the gate's own construction, relief_noise.realisation_terms) at each elevation
    spread = fix.removed * np.sqrt(24 / 22)
    terms = realisation_terms(spread, stratification.trend_weights(days), 40_000, seed=7)
    z = (dem - fix.base_m) / 1000.0
    z_ref = (np.median(dem) - fix.base_m) / 1000.0
    var = np.asarray(fix.trend_variance(dem))
    for pixel in np.argsort(dem.ravel())[:: dem.size // 7]:
        zi = z.ravel()[pixel]
        draws = terms[:, 0] * (zi - z_ref) + terms[:, 1] * (zi**2 - z_ref**2)
        assert var.ravel()[pixel] == pytest.approx(np.mean(draws**2), rel=0.03, abs=1e-3)
    assert var.ravel()[np.argmin(np.abs(dem - np.median(dem)))] < 1e-2 * var.max()
    # the streamed path hands a dask DEM: the same map
    import dask.array as da

    lazy = fix.trend_variance(da.from_array(dem, chunks=32))
    np.testing.assert_allclose(np.asarray(lazy.compute()), var, rtol=1e-6)


def test_large_lazy_stacks_skip_the_correction_and_say_why(monkeypatch):
    from insar_denoise.inference import stack_path
    from insar_denoise.inference.testing import synthetic_dataset

    monkeypatch.setattr(stack_path, "CORRECT_MAX_BYTES", 0)
    ds = synthetic_dataset(n_dates=12, shape=(176, 168), seed=5, noise_mm=2.0)
    out = denoise_dataset(
        ds.chunk({"time": -1, "y": 64, "x": 64}), load_model("default"), progress=False
    )
    assert out.attrs[stratification.STRAT_ATTR].startswith("skipped: series over 0 MB")
    assert "insar_denoise_relief_ratio" in out.attrs  # the relief check ran after the network


def test_short_flagged_stack_does_not_pass_its_stratification_as_deformation():
    spec = next(s for s in design(84, 0, "shifted") if s.index == 56)  # 9 dates, 5.9 km relief
    _, ds = simulate(spec, "shifted", 192)  # no deformation
    out = denoise_dataset(ds, load_model("default"), progress=False)
    assert out.attrs[stratification.STRAT_ATTR].startswith("skipped: 9 dates")
    cum = out["cumulative_deformation"].values
    cum = cum[np.isfinite(cum)] - np.nanmedian(cum)
    # every returned pixel, the gap patch (dates 3-5 missing) included: before session 11 the
    # line in time of its stratification passed the gate (p99 184 mm on the scored pixels)
    # and the gap patch was judged against the noise of pixels seen on every date (171 mm)
    assert np.percentile(np.abs(cum), 99) < 1.0


def test_gate_terms_carry_exactly_the_kept_trends_variance(flag_all):
    disp, dem, days = _stack(36, strat_mm_per_km=20.0, steady_mm_per_km=0.0, seed=3)
    fix = stratification.plan(disp, dem, days, np.ones(36, np.float32), 4, 16)[0]
    z = (dem - fix.base_m) / 1000.0
    z_ref = (np.median(dem) - fix.base_m) / 1000.0
    # relative to the median elevation (as trend_variance), the realisations' mean square of
    # K z + Q z² is the kept line's variance at every pixel, not a 16-draw estimate of it
    k, q = fix.terms[:, 0, None, None], fix.terms[:, 1, None, None]
    draws = k * (z - z_ref) + q * (z * z - z_ref * z_ref)
    np.testing.assert_allclose(
        np.mean(draws**2, axis=0), np.asarray(fix.trend_variance(dem)), rtol=1e-4, atol=1e-6
    )
