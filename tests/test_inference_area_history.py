"""Each filled area's history in time (:mod:`insar_denoise.inference.area_history`)."""

import numpy as np
import pytest
from random_fields import gaussian_bump, power_law

from insar_denoise.inference import area_history as ah
from insar_denoise.inference import bilaplacian_support as bls
from insar_denoise.inference.noise_prediction import HarmonicPredictor, harmonic_fill


def test_ramp_fit_finds_a_step_and_leaves_a_steady_history_alone():
    rng = np.random.default_rng(0)
    frac = np.linspace(0.0, 1.0, 36)
    w = np.ones(36)
    step = (frac > 0.6).astype(float) + 0.05 * rng.standard_normal(36)
    ramp = ah.fit_ramp(step, frac, w)
    assert ramp is not None and ramp.bic_gain > ah.MIN_BIC_GAIN
    assert 0.55 < ramp.start_days <= ramp.end_days < 0.66
    assert ramp.shape[0] == 0.0 and ramp.shape[-1] == 1.0
    kept = 0
    for _ in range(20):
        steady = frac + 0.05 * rng.standard_normal(36)
        found = ah.fit_ramp(steady, frac, w)
        kept += found is None or found.bic_gain <= ah.MIN_BIC_GAIN
    assert kept >= 18


def test_shared_factorisation_is_the_single_fill():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((40, 50))
    hole = np.zeros(values.shape, bool)
    hole[10:25, 12:30] = True
    hole[30:35, 40:45] = True
    predictor = HarmonicPredictor(hole)
    assert predictor(values) == pytest.approx(harmonic_fill(values, hole), abs=1e-10)


def _stack(history: np.ndarray, amplitude: float, seed: int):
    """A bump with ``history`` under turbulence: ``(series input, noise maps, line map)``."""
    rng = np.random.default_rng(seed)
    size, n = 128, len(history)
    bump = amplitude * gaussian_bump(size, 12.0)
    delays = 1.5 * power_law(rng, n, size)
    referenced = history[:, None, None] * bump + delays - delays[0]
    frac = np.linspace(0.0, 1.0, n)
    coef = (frac - frac.mean()) / ((frac - frac.mean()) ** 2).sum()
    line = np.tensordot(coef, referenced, axes=1)
    signs = rng.choice([-1.0, 1.0], (16, n))
    noise = np.stack([np.tensordot(coef * s, referenced - referenced.mean(0), 1) for s in signs])
    return referenced, noise, line, bump


@pytest.mark.parametrize("onset", [0.3, 0.5])
def test_a_step_comes_back_at_its_size_where_the_line_overstates_it(onset):
    n = 36
    frac = np.linspace(0.0, 1.0, n)
    history = (frac > onset).astype(float)
    referenced, noise, line, bump = _stack(history, 16.0, seed=2)
    maps = (noise, line, noise, line)
    days = frac * 700.0
    series = np.zeros_like(referenced, dtype=np.float32)
    gate = np.zeros(bump.shape, np.float32)
    plain, _, _ = bls.support_step(series.copy(), gate.copy(), maps, days)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    out, g, note = bls.support_step(series.copy(), gate, maps, days, None, rows, np.ones(n))
    c = bump.shape[0] // 2
    assert note["ramps"] and abs(note["ramps"][0]["ramp_start_days"] - onset * 700) < 60
    # the straight line overstates a step at f by 6 f (1 - f): 1.26 at 0.3, 1.5 at 0.5
    assert plain[-1, c, c] - plain[0, c, c] > 1.15 * 16.0
    assert out[-1, c, c] - out[0, c, c] == pytest.approx(16.0, rel=0.1)
    before = frac < onset - 0.1
    assert np.abs(out[before, c, c] - out[0, c, c]).max() < 1.5


def test_steady_motion_keeps_the_straight_line():
    n = 36
    frac = np.linspace(0.0, 1.0, n)
    referenced, noise, line, bump = _stack(frac, 16.0, seed=4)
    maps = (noise, line, noise, line)
    series = np.zeros_like(referenced, dtype=np.float32)
    gate = np.zeros(bump.shape, np.float32)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    out, _, note = bls.support_step(series, gate, maps, frac * 700.0, None, rows, np.ones(n))
    assert note["filled_pixels"] > 0 and note["ramps"] == []
    c = bump.shape[0] // 2
    assert out[:, c, c] - out[0, c, c] == pytest.approx(frac * (out[-1, c, c] - out[0, c, c]))


def test_pixels_missing_dates_use_their_own_dates():
    n = 36
    frac = np.linspace(0.0, 1.0, n)
    history = (frac > 0.5).astype(float)
    referenced, noise, line, bump = _stack(history, 16.0, seed=2)
    c = bump.shape[0] // 2
    gappy = referenced.copy()
    gappy[22:, c - 6 : c + 6, c - 6 : c + 6] = np.nan  # a patch missing its last 14 dates
    maps = (noise, line, noise, line)
    series = np.zeros_like(referenced, dtype=np.float32)
    gate = np.zeros(bump.shape, np.float32)
    rows = lambda t, a, b: gappy[t, a:b]  # noqa: E731
    out, _, note = bls.support_step(series, gate, maps, frac * 700.0, None, rows, np.ones(n))
    assert note["ramps"] and np.isfinite(out).all()
    assert out[-1, c, c] - out[0, c, c] == pytest.approx(16.0, rel=0.1)


def test_pixel_coefficients_skip_missing_dates():
    shape = np.r_[np.zeros(5), np.ones(5)]
    px = np.outer(shape, [2.0, 3.0]) + 7.0
    px[1, 0] = px[8, 1] = np.nan
    got = ah.pixel_coefficients(px, shape, np.ones(10))
    assert got == pytest.approx([2.0, 3.0])
    px[5:, 0] = np.nan  # only the dates before the step: no coefficient
    assert np.isnan(ah.pixel_coefficients(px, shape, np.ones(10))[0])


def test_short_stacks_and_repeated_days_keep_the_line_or_a_finite_ramp():
    w4 = np.ones(ah.MIN_DATES - 1)
    assert (
        ah.fit_ramp(np.r_[0.0, 0.0, 1.0, 1.0, 1.0][: len(w4)], np.linspace(0, 1, len(w4)), w4)
        is None
    )
    frac = np.r_[0.0, 0.1, 0.2, 0.5, 0.5, 0.8, 0.9, 1.0]  # two acquisitions on one day
    ramp = ah.fit_ramp((frac >= 0.5).astype(float), frac, np.ones(8))
    assert ramp is not None and np.isfinite(ramp.shape).all()


def test_averaged_history_runs_from_the_line_to_the_ramp():
    frac = np.linspace(0.0, 1.0, 20)
    step = ah.ramp_basis(frac, 7, 7)
    assert ah.averaged_history(frac, step, 0.0, 0.7) == pytest.approx(frac)
    assert ah.averaged_history(frac, step, 1.0, 0.7) is step
    mid = ah.averaged_history(frac, step, 0.5, 0.7)
    assert mid[0] == 0.0 and mid[-1] == pytest.approx(1.0)
    assert (mid >= np.minimum(frac, step) - 1e-12).all()
    assert (mid <= np.maximum(frac, step) + 1e-12).all()
    assert ah.averaged_history(frac, step, 0.5, -0.2) is None  # amplitudes of opposite sign


def _weights_of(gains):
    return [ah.Ramp(np.zeros(3), 0.0, 0.0, g).weight for g in gains]


def test_ramp_weight_is_the_bic_posterior_within_the_strong_evidence():
    inside = np.linspace(-5.9, 5.9, 9)
    up, down = _weights_of(inside), _weights_of(-inside)
    assert np.add(up, down) == pytest.approx(1.0)  # two models, equal prior odds
    assert _weights_of([0.0]) == [0.5]
    assert np.all(np.diff(up) > 0)
    assert _weights_of([6.5, 40.0, -6.5, -40.0]) == [1.0, 1.0, 0.0, 0.0]


@pytest.mark.parametrize("n", [18, 72])
def test_model_averaging_lowers_the_error_of_weak_steps_and_keeps_steady_motion(n):
    # a step a third into the stack at an evidence between the two models: the line alone
    # overstates it by 6 f (1 - f) = 4/3, the best ramp alone is noisy; their BIC-weighted
    # average is closer to the truth on average than either the line or the old rule (the
    # ramp only over a BIC gain of 6), while steady motion stays near the line's
    rng = np.random.default_rng(5)
    frac = np.linspace(0.0, 1.0, n)
    w = np.ones(n)
    sd = 0.55 * np.sqrt(n / 72.0)  # the same evidence at both lengths
    line_err, avg_err, rule_err, steady = [], [], [], []
    for _ in range(60):
        step = (frac > 1 / 3).astype(float) + sd * rng.standard_normal(n)
        a_line = ah._amplitude(step, frac, w)
        fitted = ah.averaged_fit(step, frac, w)
        factor = 1.0 if fitted is None else fitted[2]
        line_err.append((a_line - 1.0) ** 2)
        avg_err.append((a_line * factor - 1.0) ** 2)
        best = ah.fit_ramp(step, frac, w)
        strong = best is not None and best.bic_gain > ah.MIN_BIC_GAIN
        rule_err.append(((ah._amplitude(step, best.shape, w) if strong else a_line) - 1.0) ** 2)
        flat = frac + sd * rng.standard_normal(n)
        fitted = ah.averaged_fit(flat, frac, w)
        steady.append(ah._amplitude(flat, frac, w) * (1.0 if fitted is None else fitted[2]))
    assert np.mean(avg_err) < 0.6 * np.mean(line_err)
    assert np.mean(avg_err) < 0.8 * np.mean(rule_err)
    assert 0.9 < np.mean(steady) < 1.05


def test_a_ramp_of_weak_evidence_fills_the_average_of_the_two_estimates(monkeypatch):
    n = 36
    frac = np.linspace(0.0, 1.0, n)
    referenced, noise, line, bump = _stack((frac > 0.5).astype(float), 16.0, seed=2)
    maps = (noise, line, noise, line)
    days = frac * 700.0
    series = np.zeros_like(referenced, dtype=np.float32)
    gate = np.zeros(bump.shape, np.float32)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    plain, _, _ = bls.support_step(series.copy(), gate.copy(), maps, days)
    strong, _, _ = bls.support_step(series.copy(), gate.copy(), maps, days, None, rows, np.ones(n))
    fit = ah.fit_ramp

    def even_odds(*args, **kwargs):
        found = fit(*args, **kwargs)
        return ah.Ramp(found.shape, found.start_days, found.end_days, 0.0)

    monkeypatch.setattr(ah, "fit_ramp", even_odds)
    out, _, note = bls.support_step(series.copy(), gate.copy(), maps, days, None, rows, np.ones(n))
    assert note["ramps"][0]["ramp_weight"] == 0.5
    area = plain[-1] != plain[0]
    cum = lambda s: (s[-1] - s[0])[area]  # noqa: E731
    assert cum(out) == pytest.approx(0.5 * cum(strong) + 0.5 * cum(plain), abs=1e-3)
    c = bump.shape[0] // 2
    # before the step the history lies between the step's (0) and the line's
    mid = n // 4
    assert frac[mid] * (out[-1, c, c] - out[0, c, c]) > out[mid, c, c] - out[0, c, c] > 0.0
