"""The step scan (insar_denoise.inference.step_scan): its noise against a direct fit, a broad
step found at its date, noise alone not, and the broad step's map in the engine."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from insar_denoise.inference import step_scan
from insar_denoise.inference.broad_scales import history_basis
from insar_denoise.inference.significance import fit_segments

SIZE = 192
N_DATES = 24
STEP_AT = 15


def _scene(seed: int, amplitude_mm: float, width_px: float = 60.0, step_at: int = STEP_AT):
    """A stack of correlated noise (3 mm per date) with a Gaussian bowl of ``amplitude_mm``
    from date ``step_at`` on; the bowl's map; the dates' times."""
    rng = np.random.default_rng(seed)
    noise = ndimage.gaussian_filter(rng.normal(size=(N_DATES, SIZE, SIZE)), (0, 3, 3))
    noise *= 3.0 / noise.std()
    yy, xx = np.mgrid[:SIZE, :SIZE]
    bowl = -amplitude_mm * np.exp(-((yy - 90) ** 2 + (xx - 100) ** 2) / (2 * width_px**2))
    history = (np.arange(N_DATES) >= step_at).astype(float)
    series = (noise + history[:, None, None] * bowl).astype(np.float32)
    return series - series[:1], bowl, np.arange(N_DATES) * 12.0


def test_noise_variance_matches_the_fit_with_the_step():
    """The rank-one update equals the residuals of a direct least-squares fit of the
    piecewise-linear basis plus the step, weighted by the step's weights and leverages."""
    rng = np.random.default_rng(0)
    days = np.sort(rng.uniform(0, 700, N_DATES))
    date_var = rng.uniform(2.0, 20.0, N_DATES)
    filtered = rng.normal(size=(N_DATES, 40))
    noise = step_scan.StepNoise(filtered, days, date_var)
    for k in step_scan.candidates(N_DATES):
        basis = np.c_[history_basis(days, fit_segments(N_DATES)), np.arange(N_DATES) >= k]
        hat = basis @ np.linalg.pinv(basis.T @ basis) @ basis.T
        resid = (np.eye(N_DATES) - hat) @ filtered
        lev = np.clip(1.0 - np.diag(hat), 0.05, 1.0)
        b = step_scan.step_weights(date_var, int(k))
        direct = np.sum((b[:, None] * resid) ** 2 / lev[:, None], axis=0)
        np.testing.assert_allclose(noise.variance(int(k)), direct, rtol=2e-4, atol=1e-9)


def test_candidates_keep_dates_on_both_sides():
    ks = step_scan.candidates(9)
    assert ks.min() == step_scan.MIN_SIDE and ks.max() == 9 - step_scan.MIN_SIDE
    assert len(step_scan.candidates(200)) == step_scan.MAX_CANDIDATES
    assert len(step_scan.candidates(5)) == 0


def test_late_candidates_cover_the_last_dates():
    late = step_scan.late_candidates(N_DATES)
    assert list(late) == list(range(N_DATES - step_scan.MIN_SIDE + 1, N_DATES))
    assert len(step_scan.late_candidates(step_scan.MIN_DATES - 1)) == 0


def test_late_variance_matches_white_noise():
    """On white noise the late step's variance estimate equals the step map's variance
    ``sum_t b_t² var_t`` (within sampling error), the dates from the step on counted at the
    median date variance before it: their own ``date_var`` (inflated by the step, as the
    engine's per-date estimates are) is not used."""
    rng = np.random.default_rng(7)
    days = np.sort(rng.uniform(0, 700, N_DATES))
    for k in step_scan.late_candidates(N_DATES):
        date_var = rng.uniform(2.0, 20.0, N_DATES)
        true_var = date_var.copy()
        true_var[k:] = np.median(date_var[:k])
        date_var[k:] = 400.0  # what a step would do to its dates' variance estimates
        filtered = rng.normal(size=(N_DATES, 20000)) * np.sqrt(true_var)[:, None]
        b = step_scan.step_weights(date_var, int(k))
        truth = float(np.sum(b**2 * true_var))
        est = step_scan.late_variance(filtered.astype(np.float32), days, date_var, int(k), b)
        assert abs(float(np.mean(est)) / truth - 1.0) < 0.05


def test_a_step_on_the_last_date_is_found():
    """A bowl only on the last date (an event just before the last acquisition) is found
    there and mapped (r > 0.9); its noise-only twin is not."""
    series, bowl, days = _scene(8, 15.0, width_px=80.0, step_at=N_DATES - 1)
    date_var = np.full(N_DATES, 9.0)
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731
    found = step_scan.broad_step(rows, series.shape, days, date_var)
    assert found is not None and found.k == N_DATES - 1
    truth = bowl - bowl.mean()
    est = found.estimate - found.estimate.mean()
    assert np.corrcoef(est.ravel(), truth.ravel())[0, 1] > 0.9
    null, _, _ = _scene(9, 0.0, step_at=N_DATES - 1)
    ok = np.ones(bowl.shape, bool)
    _, z, _ = step_scan.step_support(null, days, date_var, ok)
    assert z < step_scan.THRESHOLD


def test_a_late_step_must_last_a_one_date_bowl_does_not():
    """A bowl from the second-last date on is a step that lasts (each later date carries
    about all of it); the same bowl on the second-last date only (one date's delay, an
    unwrapping error) is detected there but does not last, and gives no broad step."""
    k = N_DATES - 2
    series, bowl, days = _scene(10, 15.0, width_px=80.0, step_at=k)
    date_var = np.full(N_DATES, 9.0)
    ok = np.ones(bowl.shape, bool)
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731
    found = step_scan.broad_step(rows, series.shape, days, date_var)
    assert found is not None and found.k == k
    shares = step_scan.later_shares(series, ok, None, date_var, found)
    np.testing.assert_allclose(shares, 1.0, atol=0.2)
    once = series.copy()
    once[-1] -= bowl.astype(np.float32)  # the last date back to the noise alone
    rows = lambda t, a, b: once[t, a:b]  # noqa: E731
    step = step_scan.step_estimate(once, ok, None, date_var, k, 10.0)
    shares = step_scan.later_shares(once, ok, None, date_var, step)
    # the step map holds half the bowl: the second-last date carries twice it, the last little
    assert shares[0] > 1.5 and shares[1] < step_scan.LASTING_SHARE
    assert not step_scan.lasts(once, ok, None, date_var, step)
    assert step_scan.broad_step(rows, once.shape, days, date_var) is None


def test_a_broad_step_is_found_at_its_date_and_noise_is_not():
    series, bowl, days = _scene(1, 6.0)
    ok = np.ones(bowl.shape, bool)
    date_var = np.full(N_DATES, 9.0)
    support, z, k = step_scan.step_support(series, days, date_var, ok)
    assert z > step_scan.THRESHOLD and abs(k - STEP_AT) <= 1
    assert support[90, 100] and support.mean() > 0.3
    null, _, _ = _scene(2, 0.0)
    support, z, _ = step_scan.step_support(null, days, date_var, ok)
    assert z < step_scan.THRESHOLD and not support.any()


def test_broad_step_map_and_history():
    series, bowl, days = _scene(3, 8.0, width_px=80.0)
    date_var = np.full(N_DATES, 9.0)
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731
    found = step_scan.broad_step(rows, series.shape, days, date_var)
    assert found is not None and abs(found.k - STEP_AT) <= 1
    assert found.history[0] == 0.0 and found.history[-1] == 1.0
    truth = bowl - bowl.mean()
    est = found.estimate - found.estimate.mean()
    assert np.corrcoef(est.ravel(), truth.ravel())[0, 1] > 0.9
    null, _, _ = _scene(4, 0.0)
    rows = lambda t, a, b: null[t, a:b]  # noqa: E731
    assert step_scan.broad_step(rows, null.shape, days, date_var) is None


def test_too_large_scenes_and_short_stacks_are_skipped(monkeypatch):
    series, _, days = _scene(5, 8.0, width_px=80.0)
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731
    assert step_scan.broad_step(rows, series.shape, days, np.full(N_DATES, 9.0)) is not None
    short = series[:11]
    rows = lambda t, a, b: short[t, a:b]  # noqa: E731
    assert step_scan.broad_step(rows, short.shape, days[:11], np.full(11, 9.0)) is None
    monkeypatch.setattr(step_scan, "MAX_PIXELS", SIZE * SIZE - 1)
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731
    assert step_scan.broad_step(rows, series.shape, days, np.full(N_DATES, 9.0)) is None


def test_engine_returns_the_broad_step(monkeypatch):
    """Through the engine: a 5 mm bowl broader than the scene that starts at one date, which
    the gate and the second detector miss (the output is flat without the scan), comes back
    whole from the step scan (r > 0.8, gain 0.8-1.2), and the note says so."""
    from insar_denoise.inference.bilaplacian_support import SECOND_DETECTOR_ATTR
    from insar_denoise.inference.engine import denoise_dataset
    from insar_denoise.io.dataset import dataset_from_arrays
    from insar_denoise.models import load_model

    series, bowl, days = _scene(6, 5.0, width_px=80.0)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    dem = (1000 + 300 * np.sin(yy / 23.0) * np.cos(xx / 31.0)).astype(np.float32)
    times = np.datetime64("2020-01-01") + days.astype("timedelta64[D]")
    ds = dataset_from_arrays(series, dem, times=times, spacing=100.0, origin=(5e5, 4e6))
    model = load_model("default")
    out = denoise_dataset(ds, model, progress=False)
    note = json.loads(out.attrs[SECOND_DETECTOR_ATTR])
    assert abs(note["broad_step"]["date_index"] - STEP_AT) <= 1
    cum = out["cumulative_deformation"].values.ravel()
    truth = bowl.ravel() - bowl.mean()
    assert np.corrcoef(cum, truth)[0, 1] > 0.8
    assert 0.8 < (cum - cum.mean()) @ truth / (truth @ truth) < 1.2
    # the step map's date noise is in the bands: they hold the errors at their level
    err = np.abs((cum - np.median(cum)) - (bowl.ravel() - np.median(bowl)))
    assert np.mean(err <= out["uncertainty"].values.ravel()) > 0.683
    assert np.mean(err <= out["uncertainty_95"].values.ravel()) > 0.954
    monkeypatch.setattr(step_scan, "THRESHOLD", np.inf)
    off = denoise_dataset(ds, model, progress=False)["cumulative_deformation"].values
    assert np.nanstd(off) < 0.1


def test_broad_step_variance_is_the_two_means_variance():
    # equal date variances: the step of two means, var (1 / k + 1 / (T - k)) date_var
    for k in (3, 10, 17):
        got = step_scan.broad_step_variance(np.full(18, 4.0), k)
        assert got == pytest.approx(4.0 * (1 / k + 1 / (18 - k)))


def test_steady_step_weights_ignore_a_straight_line():
    """With the times the step is the one beyond a straight line in time: a line gives 0,
    a step is returned whole (an independent check: the weights applied to both)."""
    rng = np.random.default_rng(11)
    days = np.sort(rng.uniform(0, 700, N_DATES))
    date_var = rng.uniform(2.0, 20.0, N_DATES)
    line = 3.0 + 0.01 * days
    for k in (5, 12, N_DATES - 1):
        b = step_scan.step_weights(date_var, k, days)
        assert abs(b @ line) < 1e-9
        assert abs(b @ (np.arange(N_DATES) >= k) - 1.0) < 1e-9
        plain = step_scan.step_weights(date_var, k)
        assert abs(plain @ line) > 0.1  # the plain step sees part of a line


def test_step_beyond_fill_reaches_outside_a_core_but_not_beside_a_line():
    """A broad step whose core alone is filled reaches far outside it (``broad``); the
    same bowl growing steadily in time does not (the second detector's line sees it)."""
    series, bowl, days = _scene(12, 8.0, width_px=80.0)
    date_var = np.full(N_DATES, 9.0)
    core = bowl < 0.8 * bowl.min()
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731
    found = step_scan.step_beyond_fill(rows, series.shape, days, date_var, core)
    assert found is not None and found.broad and abs(found.k - STEP_AT) <= 1
    # the step written instead of the fill: the bowl from its date on
    assert found.step is not None and found.step.k == found.k
    assert np.corrcoef(found.step.estimate.ravel(), bowl.ravel())[0, 1] > 0.9
    noise = series - (np.arange(N_DATES) >= STEP_AT)[:, None, None] * bowl
    steady = noise + (days / days[-1])[:, None, None] * bowl
    rows = lambda t, a, b: steady[t, a:b]  # noqa: E731
    found = step_scan.step_beyond_fill(rows, steady.shape, days, date_var, core)
    assert found is not None and not found.broad and found.step is None


def test_a_detected_step_that_is_not_broad_needs_the_step_beyond_steady_motion(monkeypatch):
    """With the plain step's supports never broad enough (``MAX_SHARE`` raised), a bowl that
    steps in is still returned through the step beyond steady motion; the same bowl growing
    steadily, which the plain step also detects, is not."""
    monkeypatch.setattr(step_scan, "MAX_SHARE", 0.99)
    series, bowl, days = _scene(13, 12.0, width_px=80.0)
    date_var = np.full(N_DATES, 9.0)
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731
    found = step_scan.broad_step(rows, series.shape, days, date_var)
    assert found is not None and abs(found.k - STEP_AT) <= 1
    noise = series - (np.arange(N_DATES) >= STEP_AT)[:, None, None] * bowl
    steady = noise + (days / days[-1])[:, None, None] * bowl
    ok = np.ones(bowl.shape, bool)
    _, z, _ = step_scan.step_support(steady, days, date_var, ok)
    assert z > step_scan.THRESHOLD  # the plain step sees part of the steady motion
    rows = lambda t, a, b: steady[t, a:b]  # noqa: E731
    assert step_scan.broad_step(rows, steady.shape, days, date_var) is None


def _valley_dem(seed: int) -> np.ndarray:
    """A DEM (m) whose broad part is a valley under the bowl of :func:`_scene` (60 px wide)
    and whose sharp ridges (2 px) carry most of the local relief."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    valley = -800.0 * np.exp(-((yy - 90) ** 2 + (xx - 100) ** 2) / (2 * 60.0**2))
    ridges = ndimage.gaussian_filter(rng.normal(size=(SIZE, SIZE)), 2.0)
    return (2000.0 + valley + 400.0 * ridges / ridges.std()).astype(np.float32)


def test_banded_relief_fit_keeps_a_bowl_along_the_valley_and_removes_the_delay():
    from insar_denoise.inference.noise_prediction import elevation_free, elevation_free_banded

    dem = _valley_dem(6)
    z = (dem - np.median(dem)) / 1000.0
    yy, xx = np.mgrid[:SIZE, :SIZE]
    bowl = -10.0 * np.exp(-((yy - 90) ** 2 + (xx - 100) ** 2) / (2 * 50.0**2))
    noise = np.random.default_rng(7).normal(0.0, 0.3, bowl.shape)
    values = bowl + 8.0 * z + 3.0 * z * z + noise
    ok = np.ones(bowl.shape, bool)
    ok[20:50, 30:70] = False  # a hole: the band's means are normalised over the valid pixels

    def error(estimate):  # what the fit got wrong: the bowl and the noise should stay
        e = (estimate - bowl - noise)[ok]
        return np.std(e - e.mean()) / np.std(bowl[ok])

    banded = elevation_free_banded(values, ok, dem, step_scan.RELIEF_BAND_PX)
    plain = elevation_free(values[None], ok, dem, ok)[0]
    assert error(banded) < 0.05 and error(plain) > 0.3
    assert np.all(banded[~ok] == 0.0)
    # without a DEM only the level goes, as the plain fit
    np.testing.assert_allclose(
        elevation_free_banded(values, ok, None, 8.0), elevation_free(values[None], ok, None, ok)[0]
    )


def test_broad_step_keeps_a_bowl_that_follows_the_relief(monkeypatch):
    series, bowl, days = _scene(8, 12.0, width_px=60.0)
    dem = _valley_dem(9)
    date_var = np.full(N_DATES, 9.0)
    rows = lambda t, a, b: series[t, a:b]  # noqa: E731

    def gain(found):
        est, truth = found.estimate - found.estimate.mean(), bowl - bowl.mean()
        return float(np.sum(est * truth) / np.sum(truth * truth))

    found = step_scan.broad_step(rows, series.shape, days, date_var, dem)
    assert found is not None and abs(found.k - STEP_AT) <= 1
    # the plain fit (before session 33) takes the bowl's part along the valley for delay
    plain = lambda v, ok, dem, s: step_scan.elevation_free(v[None], ok, dem, ok)[0]  # noqa: E731
    monkeypatch.setattr(step_scan, "elevation_free_banded", plain)
    before = step_scan.broad_step(rows, series.shape, days, date_var, dem)
    assert gain(found) > 0.9 and gain(before) < 0.8


def test_a_step_beyond_the_areas_under_strong_stratification_is_written_as_the_step():
    # Benchmark v2 `shifted` deep fault 45 (a step on the last of 18 dates) under a fresh draw
    # of its noise (relief to 8.5 km, 29 mm of relief delay): the step beyond the filled areas
    # opened the gate on the network's map, which kept the last date's stratification (RMSE
    # 21.3 mm, the zero map's 4.8); the step scan's own step at that date: 3.3 mm
    from insar_denoise.evaluation.referee_scenes import design, with_fresh_noise
    from insar_denoise.inference import denoise_dataset
    from insar_denoise.inference.bilaplacian_support import SECOND_DETECTOR_ATTR
    from insar_denoise.models import load_model

    spec = next(s for s in design(84, 0, "shifted") if s.index == 45)
    batch, noise_batch, ds = with_fresh_noise(spec, "shifted", 192, draw=4)
    out = denoise_dataset(ds, load_model("default"), progress=False, return_noise=False)
    note = json.loads(out.attrs[SECOND_DETECTOR_ATTR])
    assert note["step_beyond"]["date_index"] == note["broad_step"]["date_index"] == 17
    cum = out["cumulative_deformation"].values
    truth = batch.cumulative[0].numpy()
    ok = noise_batch.valid[0].numpy() & np.isfinite(cum)
    err = (cum[ok] - np.median(cum[ok])) - (truth[ok] - np.median(truth[ok]))
    assert np.sqrt(np.mean(err**2)) < 0.8 * np.std(truth[ok])
