"""The second detector after the gate (:mod:`insar_denoise.inference.bilaplacian_support`)."""

import numpy as np
import pytest
from random_fields import gaussian_bump, power_law
from scipy import ndimage

from insar_denoise.inference import bilaplacian_support as bls


def _maps(stat: np.ndarray, noise: np.ndarray) -> tuple:
    return (noise, stat, noise, stat)


def test_harmonic_fill_reproduces_a_plane():
    yy, xx = np.mgrid[:40, :50].astype(float)
    plane = 3.0 + 0.2 * xx - 0.5 * yy
    hole = np.zeros(plane.shape, bool)
    hole[10:30, 15:35] = True
    filled = bls.harmonic_fill(np.where(hole, 99.0, plane), hole)
    assert filled == pytest.approx(plane, abs=1e-8)


def test_broad_bump_under_steep_turbulence_comes_back_whole():
    rng = np.random.default_rng(3)
    size = 192
    fields = 2.0 * power_law(rng, 17, size)
    truth = 6.0 * gaussian_bump(size, 14.0)
    stat = fields[0] + truth
    gate = np.zeros((size, size), np.float32)
    new, estimate, zmax = bls.new_supports(gate, _maps(stat, fields[1:]), (size, size))
    assert new is not None and new[size // 2, size // 2]
    assert max(zmax.values()) > bls.THRESHOLD
    inside = new & (truth > 0.1 * truth.max())
    gain = np.polyfit(truth[inside], estimate[inside], 1)[0]
    assert 0.7 < gain < 1.3
    # the raw map inside the support carries the turbulence: the estimate is closer to truth
    raw = stat - np.median(stat)
    assert np.abs(estimate - truth)[new].mean() < np.abs(raw - truth)[new].mean()


def test_turbulence_alone_adds_nothing():
    rng = np.random.default_rng(5)
    size = 192
    hits = 0
    for _ in range(4):
        fields = 2.0 * power_law(rng, 17, size)
        gate = np.zeros((size, size), np.float32)
        new, _, zmax = bls.new_supports(gate, _maps(fields[0], fields[1:]), (size, size))
        hits += new is not None
        assert zmax
    assert hits == 0


def test_a_gate_area_no_support_reaches_loses_the_atmosphere_around_it():
    rng = np.random.default_rng(5)
    size = 192
    fields = 2.0 * power_law(rng, 17, size)  # no support here (the test above)
    gate = np.zeros((size, size), np.float32)
    gate[80:100, 60:84] = 1.0  # a patch of atmosphere the gate let through
    new, estimate, _ = bls.new_supports(gate, _maps(fields[0], fields[1:]), (size, size))
    assert new is not None and new[80:100, 60:84].all() and new.sum() == 20 * 24
    raw = fields[0] - np.median(fields[0])
    # the atmosphere predicted from around the patch is removed: a third of it is left
    assert np.abs(estimate[new]).mean() < np.abs(raw[new]).mean() / 3.0


def test_step_fills_a_straight_line_and_opens_the_gate():
    rng = np.random.default_rng(3)
    size, n_dates = 192, 6
    fields = 2.0 * power_law(rng, 17, size)
    stat = fields[0] + 6.0 * gaussian_bump(size, 14.0)
    series = np.zeros((n_dates, size, size), np.float32)
    gate = np.zeros((size, size), np.float32)
    days = np.array([0.0, 12, 24, 36, 48, 60])
    out, g, note = bls.support_step(series, gate, _maps(stat, fields[1:]), days)
    c = size // 2
    assert note["filled_pixels"] == int(g.sum()) > 0
    assert g[c, c] == 1.0 and g[0, 0] == 0.0
    assert out[:, c, c] == pytest.approx(out[-1, c, c] * days / days[-1], abs=1e-4)
    assert out[-1, 0, 0] == 0.0


def test_a_step_beyond_the_areas_writes_that_step_over_the_scene(monkeypatch):
    """Where the step scan's step beyond steady motion covers much of the pixels outside the
    areas (:func:`.step_scan.step_beyond_fill`), the step at its date is written over the
    whole scene (0 before the date, the step's map from it) and the gate opens; where it stays
    inside them, the areas are filled as before."""
    from insar_denoise.inference import step_scan

    rng = np.random.default_rng(3)
    size, n_dates = 192, 6
    fields = 2.0 * power_law(rng, 17, size)
    stat = fields[0] + 6.0 * gaussian_bump(size, 14.0)
    days = np.array([0.0, 12, 24, 36, 48, 60])
    referenced = rng.normal(size=(n_dates, size, size)).astype(np.float32)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    date_var = np.ones(n_dates)
    step_map = rng.normal(size=(size, size))
    history = (np.arange(n_dates) >= 3).astype(np.float64)
    written = np.ones((size, size), bool)
    seen = {}

    def beyond(rows_, shape, times, dv, filled, dem=None):
        seen["filled"] = int(filled.sum())
        broad = seen["outside"] > step_scan.OUTSIDE_SHARE
        step = step_scan.BroadStep(step_map, history, 3, 20.0, written) if broad else None
        return step_scan.StepBeyondFill(3, 20.0, seen["outside"], step)

    monkeypatch.setattr(step_scan, "step_beyond_fill", beyond)
    for outside, broad in ((0.5, True), (0.05, False)):
        seen["outside"] = outside
        series = np.zeros((n_dates, size, size), np.float32)
        gate = np.zeros((size, size), np.float32)
        maps = _maps(stat, fields[1:])
        out, g, note = bls.support_step(series, gate, maps, days, None, rows, date_var, True)
        assert seen["filled"] > 0
        assert note["step_beyond"]["outside"] == outside
        if broad:
            assert (g == 1.0).all() and note["broad_step"]["date_index"] == 3
            assert np.allclose(out[:3], 0.0)
            assert np.allclose(out[3:], step_map[None], atol=1e-5)
        else:
            assert note["filled_pixels"] == int(g.sum()) < size * size
            assert out[-1, 0, 0] == 0.0 and "broad_step" not in note


def test_large_scenes_skip_the_step():
    shape = (bls.MAX_PIXELS + 1, 1)
    assert bls.new_supports(np.zeros(shape), (None,) * 4, shape) == (None, None, {})


def test_smoothing_within_an_area_keeps_its_level_and_averages_white_noise():
    rng = np.random.default_rng(11)
    area = np.zeros((120, 120), bool)
    area[20:100, 30:110] = True
    values = np.where(area, 5.0, -40.0)
    out = bls.smooth_within(values, area, 2.0)
    # normalised convolution: a constant comes back exactly up to the area's edge, 0 outside
    assert out[area] == pytest.approx(5.0, abs=1e-9)
    assert (out[~area] == 0.0).all()
    noise = bls.smooth_within(rng.standard_normal(area.shape), area, 2.0)
    inner = np.zeros_like(area)
    inner[30:90, 40:100] = True
    # white noise std falls by 1 / (2 sqrt(pi) sigma) under a 2-D Gaussian of width sigma
    assert noise[inner].std() == pytest.approx(1.0 / (2.0 * np.sqrt(np.pi) * 2.0), rel=0.1)


def _sharp_step() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An 80 px area, a 10 mm step across its middle column and 16 maps of 0.3 mm white
    noise."""
    area = np.ones((80, 80), bool)
    step = np.where(np.arange(80)[None, :] < 40, 0.0, 10.0) * np.ones((80, 1))
    return area, step, 0.3 * np.random.default_rng(12).standard_normal((16, 80, 80))


def test_smoothing_keeps_a_sharp_step_the_noise_cannot_make():
    area, step, noise = _sharp_step()
    out = bls.edge_kept_smoothing(step + noise[0], area, noise[1:])
    # the two columns beside the step keep the raw values (within the noise), not the blur
    assert np.abs(out[:, 39:41] - step[:, 39:41]).mean() < 0.5
    assert np.abs(bls.smooth_within(step, area)[:, 39:41] - step[:, 39:41]).mean() > 2.0
    # away from it the noise is averaged down as by the plain smoothing
    assert np.std(out[:, 5:30] - step[:, 5:30]) < 0.5 * 0.3


def test_supports_covering_most_of_the_scene_are_not_filled():
    rng = np.random.default_rng(4)
    size = 96
    fields = 0.2 * power_law(rng, 17, size)
    gate = np.zeros((size, size), np.float32)
    gate[:, : int(0.8 * size)] = 1.0  # the gate alone leaves a fifth of the scene outside
    stat = fields[0] + 8.0 * gaussian_bump(size, 5.0)
    new, estimate, zmax = bls.new_supports(gate, _maps(stat, fields[1:]), (size, size))
    assert max(zmax.values()) > bls.THRESHOLD  # detected, but nothing to predict the noise from
    assert new is None and estimate is None
    gate[:, : int(0.5 * size)] = 0.0
    assert bls.new_supports(gate, _maps(stat, fields[1:]), (size, size))[0] is not None


def test_short_stacks_detect_on_the_straight_line():
    # at T = 9 the model weighting's map rests on 4 residual degrees of freedom per pixel: a
    # bump there alone passes on a long stack but not on a short one, where that map only
    # widens what the straight line's map detects
    rng = np.random.default_rng(3)
    size = 192
    fields = 2.0 * power_law(rng, 17, size)
    gate = np.zeros((size, size), np.float32)
    bump = 10.0 * gaussian_bump(size, 14.0)
    alone = (fields[1:], fields[0] + bump, fields[1:], fields[0])
    long_stack = bls.new_supports(gate, alone, (size, size), n_dates=36)
    short_stack = bls.new_supports(gate, alone, (size, size), n_dates=9)
    assert long_stack[2]["projection:16"] > bls.THRESHOLD > long_stack[2]["line:16"]
    assert long_stack[0] is not None and long_stack[0][size // 2, size // 2]
    assert short_stack[0] is None and short_stack[2] == long_stack[2]
    both = (fields[1:], fields[0] + bump, fields[1:], fields[0] + bump)
    with_line = bls.new_supports(gate, both, (size, size), n_dates=9)
    assert with_line[0] is not None and with_line[0][size // 2, size // 2]


def _speckle(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """``n`` maps of 2 mm noise correlated over ~3 px (what the narrow smoothing leaves)."""
    from scipy import ndimage

    maps = np.stack(
        [ndimage.gaussian_filter(rng.standard_normal((size, size)), 3.0) for _ in range(n)]
    )
    return 2.0 * maps / maps.std()


def test_the_smoothing_risk_estimates_the_error_against_the_truth():
    size = 128
    yy, xx = np.mgrid[:size, :size] - size / 2
    area = np.hypot(yy, xx) < 56
    truth = 6.0 * np.exp(-(xx**2 + yy**2) / (2 * 30.0**2))
    for seed in (21, 22, 23):
        noise = _speckle(np.random.default_rng(seed), 17, size)
        values = truth + noise[0]
        variance = float(np.mean([np.sum(m[area] ** 2) for m in noise[1:]]))
        error, estimate = {}, {}
        for sigma in (2.0, 8.0):
            error[sigma] = float(
                np.sum((bls.smooth_within(values, area, sigma) - truth)[area] ** 2)
            )
            # Stein: risk - tr(Sigma) estimates ||S y - x||^2 (tr(Sigma) from the noise maps)
            estimate[sigma] = bls.smoothing_risk(values, area, noise[1:], sigma) - variance
        # one realisation's estimate: close where the noise dominates the error, and it
        # ranks the widths as the truth does
        assert estimate[2.0] == pytest.approx(error[2.0], rel=0.25)
        assert error[8.0] < 0.5 * error[2.0] and estimate[8.0] < 0.5 * estimate[2.0]


def test_a_broad_signal_under_speckle_takes_a_wider_smoothing():
    rng = np.random.default_rng(22)
    size = 128
    yy, xx = np.mgrid[:size, :size] - size / 2
    area = np.hypot(yy, xx) < 56
    truth = 6.0 * np.exp(-(xx**2 + yy**2) / (2 * 30.0**2))
    noise = _speckle(rng, 17, size)
    values = truth + noise[0]
    out = bls.risk_smoothing(values, area, noise[1:])
    narrow = bls.edge_kept_smoothing(values, area, noise[1:])
    rms = lambda e: float(np.sqrt(np.mean(e[area] ** 2)))  # noqa: E731
    assert rms(out - truth) < 0.6 * rms(narrow - truth)
    assert any(np.allclose(out, bls.smooth_within(values, area, s)) for s in bls.WIDER_PX)


def test_the_risk_keeps_a_sharp_step_at_the_narrow_smoothing():
    area, step, noise = _sharp_step()
    out = bls.risk_smoothing(step + noise[0], area, noise[1:])
    np.testing.assert_array_equal(out, bls.edge_kept_smoothing(step + noise[0], area, noise[1:]))


def test_a_broad_bump_under_speckle_is_smoothed_wider_only_on_enough_dates():
    rng = np.random.default_rng(3)
    size = 192
    fields = 2.0 * power_law(rng, 17, size) + _speckle(rng, 17, size)
    truth = 10.0 * gaussian_bump(size, 14.0)
    stat = fields[0] + truth
    gate = np.zeros((size, size), np.float32)
    error = {}
    for n_dates in (9, 36):
        found = bls.detect(gate, _maps(stat, fields[1:]), (size, size), None, n_dates)
        assert found.new is not None and found.new[size // 2, size // 2]
        error[n_dates] = float(np.abs(found.estimate - truth)[found.new].mean())
    # 36 dates: the risk takes the wider smoothing; 9 (7 residual dof behind the noise
    # maps): the narrow one stays
    assert error[36] < 0.8 * error[9]


def test_small_areas_predict_their_noise_from_just_outside_them():
    rng = np.random.default_rng(1)
    size = 128
    ok = np.ones((size, size), bool)
    area = np.zeros_like(ok)
    area[40:80, 40:80] = True  # 10 % of the scene
    fields = power_law(rng, 5, size)
    got = bls.prediction_pixels(fields[0], area, ok & ~area, ok, fields[1:], None)
    np.testing.assert_array_equal(got, ok & ~area)


def test_a_broad_area_predicts_its_noise_beyond_a_broad_source_tails():
    size = 192
    yy, xx = np.mgrid[:size, :size] - size / 2
    area = np.hypot(yy, xx) < 62  # a third of the scene
    ok = np.ones((size, size), bool)
    outside = ok & ~area
    band = outside & (ndimage.distance_transform_edt(~area) <= bls.BROAD_MARGIN_PX)
    for width, tails in ((40.0, True), (10.0, False)):
        right = 0
        for seed in (1, 2, 3, 4):
            fields = power_law(np.random.default_rng(seed), 17, size)
            truth = 8.0 * gaussian_bump(size, width)
            lin = truth + fields[0]
            got = bls.prediction_pixels(lin, area, outside, ok, fields[1:], None)
            far = not np.array_equal(got, outside)
            assert not far or np.array_equal(got, outside & ~band)
            error = {}
            for key, pixels in ((True, outside & ~band), (False, outside)):
                estimate = lin - bls.harmonic_fill(lin, ~pixels)
                reference = truth - np.median(truth[pixels])
                error[key] = np.sqrt(np.mean((estimate - reference)[area] ** 2))
            # the broad source's tails cross the area's edge: predicting from beyond them
            # lowers the error; the compact one's atmosphere is best predicted from just
            # outside
            assert (error[True] < error[False]) == tails
            right += far == tails
        # the unbiased risk (one realisation) picks the better prediction in most draws
        assert right >= 3


def test_the_note_says_where_the_prediction_left_a_band_out(monkeypatch):
    rng = np.random.default_rng(3)
    size, n_dates = 192, 6
    fields = 2.0 * power_law(rng, 17, size)
    stat = fields[0] + 6.0 * gaussian_bump(size, 14.0)
    days = np.array([0.0, 12, 24, 36, 48, 60])

    def step() -> dict:
        series = np.zeros((n_dates, size, size), np.float32)
        gate = np.zeros((size, size), np.float32)
        return bls.support_step(series, gate, _maps(stat, fields[1:]), days)[2]

    assert "prediction_beyond_px" not in step()  # a compact area: from just outside it
    seen = {}

    def beyond_a_band(lin, new, outside, ok, noise, dem):
        seen["far"] = outside & (ndimage.distance_transform_edt(~new) > bls.BROAD_MARGIN_PX)
        return seen["far"]

    monkeypatch.setattr(bls, "prediction_pixels", beyond_a_band)
    note = step()
    assert note["prediction_beyond_px"] == bls.BROAD_MARGIN_PX and note["filled_pixels"] > 0
    found = bls.detect(np.zeros((size, size), np.float32), _maps(stat, fields[1:]), (size, size))
    np.testing.assert_array_equal(found.outside, seen["far"])


@pytest.mark.parametrize(("width", "amplitude"), [(4.0, 10.0), (10.0, 3.0)])
def test_the_risk_change_standard_error_matches_its_spread_over_noise(width, amplitude):
    # a compact strong peak (smoothing changes it: a noisy risk) and a broad weak one; over
    # 30 noise draws the change of the risk from 2 px to 8 px scatters as predicted
    rng = np.random.default_rng(3)
    size = 96
    yy, xx = np.mgrid[:size, :size] - size / 2
    area = np.hypot(yy, xx) < 30
    truth = amplitude * np.exp(-(xx**2 + yy**2) / (2 * width**2))

    def noise(k: int) -> np.ndarray:
        return np.stack(
            [
                2.0 * ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.0)
                for _ in range(k)
            ]
        )

    change, predicted = [], []
    for _ in range(30):
        values, maps = truth + noise(1)[0], noise(16)
        change.append(
            bls.smoothing_risk(values, area, maps, 8.0)
            - bls.smoothing_risk(values, area, maps, 2.0)
        )
        predicted.append(bls.risk_change_sd(values, area, maps, 8.0))
    assert np.std(change) == pytest.approx(np.median(predicted), rel=0.3)


def test_the_risk_widens_only_where_its_fall_stands_above_its_noise():
    # a 12 px bump under power-law turbulence: the unbiased risk of a wider smoothing often
    # falls a little below the 2 px one's while the true error rises (its data term moves
    # with the noise); taking a width only where the fall exceeds twice its standard error
    # widens none of eight draws for the worse, the plain least risk does
    size = 128
    yy, xx = np.mgrid[:size, :size] - size / 2
    area = np.hypot(yy, xx) < 40
    truth = 10.0 * gaussian_bump(size, 12.0)
    sse = lambda est: float(np.sum((est - truth)[area] ** 2))  # noqa: E731
    rule, plain, worse_rule, worse_plain = 0.0, 0.0, 0, 0
    for seed in range(8):
        fields = 1.5 * power_law(np.random.default_rng(seed), 17, size)
        values, maps = truth + fields[0], fields[1:]
        narrow = bls.edge_kept_smoothing(values, area, maps)
        risks = {s: bls.smoothing_risk(values, area, maps, s) for s in (2.0, *bls.WIDER_PX)}
        least = min(risks, key=risks.get)
        naive = narrow if least == 2.0 else bls.smooth_within(values, area, least)
        out = bls.risk_smoothing(values, area, maps)
        rule, plain = rule + sse(out), plain + sse(naive)
        worse_rule += sse(out) > sse(narrow)
        worse_plain += sse(naive) > sse(narrow)
    assert worse_plain >= 1 and worse_rule == 0
    assert rule < plain


def test_the_relief_fit_on_the_pixels_around_an_area_leaves_a_broad_signals_tails():
    rng = np.random.default_rng(11)
    size = 192
    truth = 8.0 * gaussian_bump(size, 40.0)
    # a valley under the signal (its tails lie along it on the pixels around the area) and
    # sharp ridges that carry the stratified delay's own signature
    ridges = ndimage.gaussian_filter(rng.normal(size=(size, size)), 2.0)
    dem = 2000.0 - 3000.0 * gaussian_bump(size, 80.0) + 300.0 * ridges / ridges.std()
    z = (dem - np.median(dem)) / 1000.0
    noise = rng.normal(0.0, 0.2, (size, size))
    stat = truth + 6.0 * z + 2.0 * z * z + noise
    ok = np.ones((size, size), bool)
    yy, xx = np.mgrid[:size, :size]
    around = np.hypot(yy - size / 2, xx - size / 2) > 60  # the area: a disc of 60 px

    def error(estimate: np.ndarray) -> float:  # what the fit got wrong, up to a level
        e = (estimate - truth - noise)[~around]
        return float(np.std(e - e.mean()) / np.std(truth[~around]))

    banded = bls.elevation_free_banded(stat, ok, dem, bls.RELIEF_BAND_PX, fit_on=around)
    plain = bls.elevation_free(stat[None], ok, dem, around)[0]
    assert error(banded) < 0.15 and error(plain) > 0.3
