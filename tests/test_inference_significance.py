"""The significance gate: noise maps against the analytic noise of the cumulative, nothing
passes on pure noise, a strong signal passes at full amplitude."""

from __future__ import annotations

import numpy as np

from insar_denoise.inference import significance
from insar_denoise.inference.broad_scales import cumulative_weights
from insar_denoise.inference.significance import (
    BAND_68,
    BAND_95,
    BAND_IN_68,
    BAND_IN_95,
    band_floors,
    gate,
    gate_noise_maps,
    gate_series,
    noise_combinations,
    noise_maps,
    pattern_combos,
)


def _noise(rng, t, n, sd):
    """Independent white noise per date, relative to the first date."""
    a = rng.normal(0.0, 1.0, (t, n, n)) * sd[:, None, None]
    return (a - a[:1]).astype(np.float32)


def test_noise_maps_match_the_analytic_std_of_the_cumulative():
    rng = np.random.default_rng(0)
    t, n = 24, 96
    times = np.arange(t) * 12.0
    sd = rng.uniform(2.0, 5.0, t)
    w = cumulative_weights(times, sd**2, 4)
    maps = noise_maps(_noise(rng, t, n, sd), noise_combinations(w, times, n=64))
    expect = float(np.sqrt(np.sum(w**2 * sd**2)))  # std of sum_t a_t n_t, n_t independent
    got = float(np.std(maps))
    assert abs(got / expect - 1.0) < 0.1, (got, expect)


def test_pixels_missing_dates_get_the_noise_of_their_own_fit():
    """Pixels missing dates 3-5 of 9 (two segments of the 4-ramp fit without a date): their
    noise maps have the std of their own least-squares cumulative, measured directly (fit on
    the dates they have, minimum norm, over many pixels); the least-squares cumulative row
    stays NaN there; pixels missing the last date stay NaN."""
    rng = np.random.default_rng(2)
    t, n = 9, 96
    times = np.array([0.0, 12, 18, 24, 36, 60, 66, 78, 84])
    sd = rng.uniform(2.0, 5.0, t)
    disp = _noise(rng, t, n, sd)
    disp[3:6, :48] = np.nan  # the gap patch
    disp[-1, 90:] = np.nan  # no last date: no cumulative
    w = cumulative_weights(times, sd**2, 4)
    combos = np.vstack([noise_combinations(w, times), w[None].astype(np.float32)])
    maps = noise_maps(disp, combos, pattern_combos(times, sd**2, 4))
    assert np.isfinite(maps[:-1, :48, :90]).all() and np.isnan(maps[-1, :48]).all()
    assert np.isnan(maps[:, 90:]).all()
    # direct: each gap pixel's weighted least-squares cumulative from its 6 dates
    keep = np.isfinite(disp[:, 0, 0])
    basis = np.c_[np.ones(t), np.clip(4 * times[:, None] / times[-1] - np.arange(4), 0, 1)]
    wt = 1.0 / sd[keep] ** 2
    coef = np.linalg.lstsq(
        basis[keep] * np.sqrt(wt)[:, None],
        (disp[keep, :48, :90].reshape(keep.sum(), -1) * np.sqrt(wt)[:, None]),
        rcond=None,
    )[0]
    cumulative = coef[1:].sum(axis=0)
    got, expect = float(np.std(maps[:-1, :48, :90])), float(np.std(cumulative))
    assert abs(got / expect - 1.0) < 0.15, (got, expect)


def test_pure_noise_is_gated_to_zero_and_a_strong_signal_passes_whole():
    rng = np.random.default_rng(1)
    t, n = 18, 128
    times = np.arange(t) * 12.0
    sd = np.full(t, 4.0)
    noise = _noise(rng, t, n, sd)
    yy, xx = np.mgrid[:n, :n]
    bowl = -30.0 * np.exp(-((yy - 64.0) ** 2 + (xx - 50.0) ** 2) / (2 * 12.0**2))
    history = times / times[-1]
    for amp, expect_pass in ((0.0, False), (1.0, True)):
        disp = noise + amp * history[:, None, None] * bowl[None]
        w = cumulative_weights(times, sd**2, 4)
        series = np.stack([np.tensordot(w, disp, axes=1) * h for h in history])
        out, g, zmax, missed = gate_series(series.astype(np.float32), disp, times, sd**2, 4)
        if not expect_pass:
            assert g.max() == 0.0 and zmax.max() < 5.5, zmax
            cum = out[-1] - out[0]
            assert np.allclose(cum - np.median(cum), 0.0)
        else:
            core = bowl < -10.0
            assert g[core].min() > 0.99  # full amplitude where the bowl is strong
            cum_in, cum_out = series[-1] - series[0], out[-1] - out[0]
            kept = cum_out[core] - np.median(cum_out)
            assert np.allclose(cum_in[core] - np.median(cum_in), kept, atol=1e-3)


def test_a_block_missing_on_the_last_date_does_not_open_the_gate(monkeypatch):
    # pure noise; a block missing on the last date, where the network's series can only
    # extrapolate (here to -100 mm): that cumulative has no noise maps to judge it, so the
    # gate does not test it and stays shut; tested as before, its edge opens the gate
    rng = np.random.default_rng(4)
    t, n = 9, 128
    times = np.arange(t) * 12.0
    sd = np.full(t, 4.0)
    disp = _noise(rng, t, n, sd)
    disp[-1, 50:90, 40:80] = np.nan
    w = cumulative_weights(times, sd**2, 4)
    cum = np.tensordot(w, np.nan_to_num(disp), axes=1)
    cum[50:90, 40:80] = -100.0
    series = np.stack([cum * h for h in times / times[-1]]).astype(np.float32)
    seen = significance.tested_cumulative(cum, disp[0], disp[-1])
    assert np.isnan(seen[50:90, 40:80]).all() and np.isfinite(seen[:50]).all()
    out, g, zmax, _ = gate_series(series, disp, times, sd**2, 4)
    assert g.max() == 0.0, zmax
    monkeypatch.setattr(significance, "tested_cumulative", lambda c, first, last: c)
    _, g_plain, _, _ = gate_series(series, disp, times, sd**2, 4)
    assert g_plain[50:90, 40:80].max() == 1.0


def test_pixels_without_a_first_date_keep_the_gate_shut():
    # no first date: the whole series has no reference, the network's change is a guess;
    # where the gate opens beside such pixels it stays shut on them (a hole stays a hole)
    g = np.ones((3, 4), np.float32)
    first = np.zeros((3, 4))
    first[0, :2] = np.nan  # seen later, not on the first date
    first[2, 3] = np.nan  # seen on no date: the network returns nothing there
    change = np.full((3, 4), -70.0)
    change[2, 3] = np.nan
    out = significance.shut_unreferenced(g, first, change)
    assert (out[0, :2] == 0.0).all() and out[0, 2:].min() == 1.0
    assert out[2, 3] == 1.0 and out[1].min() == 1.0


def test_gate_ignores_nan_pixels():
    rng = np.random.default_rng(2)
    cum = rng.normal(0, 1, (64, 64)).astype(np.float32)
    cum[:10, :10] = np.nan
    noise = rng.normal(0, 1, (4, 64, 64)).astype(np.float32)
    g, zmax, missed = gate(cum, noise)
    assert np.isfinite(g).all() and g.max() == 0.0


def test_noise_sd_is_the_cumulative_noise_and_sets_the_band_floors():
    rng = np.random.default_rng(4)
    t, n = 18, 192
    times = np.arange(t) * 12.0
    sd = np.full(t, 4.0)
    w = cumulative_weights(times, sd**2, 4)
    # std of the cumulative's white noise after the 1 px Gaussian: x 1 / (2 sqrt(pi))
    expect = float(np.sqrt(np.sum(w**2 * sd**2))) / (2.0 * np.sqrt(np.pi))
    noise = _noise(rng, t, n, sd)
    xx = np.mgrid[:n, :n][1]
    for step_mm in (0.0, -40.0):  # nothing to detect; a strong block to detect
        disp = noise + (times / times[-1])[:, None, None] * np.where(xx < 24, step_mm, 0.0)
        cum = np.tensordot(w, disp, axes=1)
        g, _, noise_sd = gate(cum, noise_maps(disp, noise_combinations(w, times, n=32)))
        assert abs(np.median(noise_sd[:, 40:]) / expect - 1.0) < 0.15
        f68, f95 = band_floors(g, noise_sd)
        if step_mm == 0.0:
            assert g.max() == 0.0
            np.testing.assert_allclose(f68, BAND_68 * noise_sd)
            np.testing.assert_allclose(f95, BAND_95 * noise_sd)
        else:  # where the block passes, the floors are the (smaller) in-gate multiples
            passed = g > 0.999
            assert g[:, :16].min() > 0.999
            np.testing.assert_allclose(f68[passed], BAND_IN_68 * noise_sd[passed], rtol=1e-5)
            np.testing.assert_allclose(f95[passed], BAND_IN_95 * noise_sd[passed], rtol=1e-5)


def test_an_opened_gate_takes_the_wider_open_factors_everywhere():
    import dask.array as da

    from insar_denoise.inference.significance import BAND_OPEN_68, BAND_OPEN_95, gate_opened

    noise_sd = np.random.default_rng(0).uniform(1.0, 3.0, (20, 30)).astype(np.float32)
    opened = np.ones((20, 30), np.float32)
    partial = opened.copy()
    partial[:, :3] = 0.5
    assert gate_opened(opened) and gate_opened(da.from_array(opened, chunks=10))
    assert not gate_opened(partial) and not gate_opened(da.from_array(partial, chunks=10))
    # the streamed path's gate is a view of a disk stack, read by rows
    from insar_denoise.inference.strips import MapView

    assert gate_opened(MapView(opened[None], 0)) and not gate_opened(MapView(partial[None], 0))
    f68, f95 = band_floors(opened, noise_sd, opened=True)
    np.testing.assert_allclose(f68, BAND_OPEN_68 * noise_sd)
    np.testing.assert_allclose(f95, BAND_OPEN_95 * noise_sd)
    # wider than where a gate passes in part: the map there is the network's, whole
    assert BAND_OPEN_68 > BAND_IN_68 and BAND_OPEN_95 > BAND_IN_95
    in_gate = band_floors(opened, noise_sd)[0]
    np.testing.assert_allclose(in_gate, BAND_IN_68 * noise_sd)


def test_a_creep_step_under_correlated_atmosphere_passes_through_the_band_passes(monkeypatch):
    """Atmosphere correlated over ~10 px hides a 14 mm step from every Gaussian; across the
    step it cancels, so the band-passes find it (and nothing when their per-filter
    thresholds are raised out of reach); without the step nothing passes."""
    from scipy.ndimage import gaussian_filter

    from insar_denoise.inference.significance import FILTERS

    rng = np.random.default_rng(5)
    t, n = 18, 192
    times = np.arange(t) * 12.0
    atmo = np.stack([gaussian_filter(rng.normal(0, 1, (n, n)), 10) for _ in range(t)])
    atmo *= 5.0 / atmo.std()
    sd = np.full(t, 5.0)
    w = cumulative_weights(times, sd**2, 4)
    xx = np.mgrid[:n, :n][1]
    smooth_only = tuple(f for f in FILTERS if f[0] == "smooth")
    for amp in (0.0, 14.0):
        step = amp / 2 * np.sign(xx - 96.5) * np.exp(-np.abs(xx - 96.5) / 8.0)
        disp = (atmo - atmo[:1]) + (times / times[-1])[:, None, None] * step[None]
        cum = np.tensordot(w, disp, axes=1)
        maps = noise_maps(disp.astype(np.float32), noise_combinations(w, times))
        g_all = gate(cum, maps)[0]
        assert gate(cum, maps, filters=smooth_only)[0].max() == 0.0
        if amp == 0.0:
            assert g_all.max() == 0.0
        else:
            assert g_all[:, 90:103].mean() > 0.8  # the fault's trace passes
            # per-filter thresholds: the band-passes and derivatives silenced, nothing passes
            silent = {f: np.inf for f in FILTERS if f[0] != "smooth"}
            monkeypatch.setattr(significance, "FILTER_THRESHOLDS", silent)
            assert gate(cum, maps)[0].max() == 0.0


def test_noise_maps_keep_the_noise_of_dates_whose_variance_is_underestimated():
    """Dates 1 and 16 carry 12 mm of noise but their variance is estimated at 1 mm²: the
    cumulative leans on them. Noise maps from the unweighted fit keep most of the
    cumulative's real std; residuals of a fit weighted by the wrong variances hide half of it
    (the dates draw the fit to themselves)."""
    rng = np.random.default_rng(6)
    t, n = 18, 128
    times = np.arange(t) * 12.0
    sd_true = np.full(t, 3.0)
    sd_true[[1, 16]] = 12.0
    est = np.full(t, 9.0)
    est[[1, 16]] = 1.0
    w = cumulative_weights(times, est, 4)
    disp = _noise(rng, t, n, sd_true)
    real = float(np.std(np.tensordot(w, disp, axes=1)))  # the cumulative's real error
    honest = float(np.std(noise_maps(disp, noise_combinations(w, times))))
    hidden = float(np.std(noise_maps(disp, noise_combinations(w, times, date_var=est))))
    assert 0.8 < honest / real < 1.2, (honest, real)
    assert hidden / real < 0.6, (hidden, real)


def test_a_weak_steady_signal_of_a_long_stack_passes_through_the_straight_line():
    """72 dates, a broad bowl growing steadily: the straight-line cumulative has 0.68x the
    noise of the 4-segment one, so the gate finds the bowl in most realisations with it and
    in none without it; pure noise passes neither."""
    t, n = 72, 160
    times = np.arange(t) * 12.0
    sd = np.full(t, 4.0)
    yy, xx = np.mgrid[:n, :n]
    bowl = -0.55 * np.exp(-((yy - 80.0) ** 2 + (xx - 80.0) ** 2) / (2 * 12.0**2))
    history = (times / times[-1])[:, None, None]
    with_line = without = false = 0
    for seed in range(6):
        noise = _noise(np.random.default_rng(seed), t, n, sd)
        for amp in (0.0, 1.0):
            nz, proj, line_noise, line = gate_noise_maps(
                noise + amp * history * bowl, times, sd**2, 4
            )
            g_line = gate(proj, nz, projection=proj, linear=(line, line_noise))[0]
            if amp == 0.0:
                false += int(g_line.max() > 0.0)
                continue
            with_line += int(g_line[80, 80] > 0.5)
            without += int(gate(proj, nz, projection=proj)[0][80, 80] > 0.5)
    assert false == 0 and without == 0 and with_line >= 3, (false, without, with_line)


def test_gate_is_the_same_on_one_thread_or_two(monkeypatch):
    """The noise realisations are filtered in groups, one thread each: the gate, its z and
    the noise std must not depend on the thread count (the same sums in the same order),
    and the grouping may only reorder the float32 sums of one group."""
    from insar_denoise.inference import significance as sig

    rng = np.random.default_rng(3)
    n = 192
    yy, xx = np.mgrid[:n, :n]
    cum = rng.normal(0, 1, (n, n)).astype(np.float32)
    cum += (3.0 * np.exp(-((yy - 96.0) ** 2 + (xx - 90.0) ** 2) / (2 * 10.0**2))).astype("f4")
    noise = rng.normal(0, 1, (16, n, n)).astype(np.float32)
    noise[:, 10:30, 40:90] = np.nan  # a gap: the local inflation path too
    runs = {}
    for groups, threads in ((1, "1"), (2, "1"), (2, "2")):
        monkeypatch.setattr(sig, "NOISE_GROUPS", groups)
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        runs[groups, threads] = sig.gate(cum, noise)
    one_group, two_serial, two_threads = runs.values()
    assert two_threads[0].max() == 1.0  # the bump passes
    for a, b in zip(two_serial, two_threads, strict=True):
        assert np.array_equal(a, b, equal_nan=True)
    for a, b in zip(one_group, two_serial, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_signal_broader_than_the_scene_opens_the_gate_everywhere(monkeypatch):
    """The 128 px scene is under ``small_extent_px``: its quarter rule is checked last; the
    large-scene share first, by giving the small scene the same."""
    monkeypatch.setattr(significance, "SMALL_SCENE_SHARE", significance.WHOLE_SCENE_SHARE)
    rng = np.random.default_rng(4)
    n = 128
    noise = rng.normal(0.0, 1.0, (16, n, n)).astype(np.float32)
    yy, xx = np.mgrid[:n, :n]
    cum = rng.normal(0.0, 1.0, (n, n)).astype(np.float32)
    broad = 1.0 * np.exp(-((yy - 64.0) ** 2 + (xx - 64.0) ** 2) / (2 * 40.0**2))
    narrow = 3.0 * np.exp(-((yy - 64.0) ** 2 + (xx - 64.0) ** 2) / (2 * 8.0**2))
    g_broad = gate((cum + broad).astype(np.float32), noise)[0]
    g_narrow = gate((cum + narrow).astype(np.float32), noise)[0]
    assert g_broad.min() == 1.0  # 0.87 of the scene detected: no pixel set to its level
    assert 0.0 < (g_narrow > 0.5).mean() < significance.WHOLE_SCENE_SHARE
    assert g_narrow.min() == 0.0
    assert (g_narrow > 0.5).mean() > 0.25  # so that on a small scene (a quarter) it opens:
    monkeypatch.undo()
    assert gate((cum + narrow).astype(np.float32), noise)[0].min() == 1.0
