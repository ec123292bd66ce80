"""Fine scales of the gated output: kept where the stack's own fine structure stands above
its noise, taken out elsewhere."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from insar_denoise.inference import fine_scales

SIZE = 96


def _noise(seed: int, n: int, sd: float = 1.0) -> np.ndarray:
    """``n`` white noise maps (the fine scales are where white noise has its power)."""
    return sd * np.random.default_rng(seed).standard_normal((n, SIZE, SIZE))


def _bowl() -> np.ndarray:
    r, c = np.mgrid[:SIZE, :SIZE]
    return 10.0 * np.exp(-((r - 48.0) ** 2 + (c - 40.0) ** 2) / (2 * 15.0**2))


def _reference_removal(projection, noise, gate) -> np.ndarray:
    """The module's removal from whole maps with scipy alone (all pixels finite)."""

    def fine(m):
        return m - gaussian_filter(m, fine_scales.FINE_PX, mode="reflect")

    def power(m):
        return gaussian_filter(fine(m) ** 2, fine_scales.POWER_PX, mode="reflect")

    noise_power = np.mean([power(n) for n in noise], axis=0)
    return np.where(power(projection) > fine_scales.KEEP_RATIO * noise_power, 0.0, gate)


def test_removal_equals_the_whole_map_filter_by_strips(monkeypatch):
    # strips of 7 rows: each strip's filters read their halo from the rows around it
    strips_of_7 = lambda h, w: [(a, min(h, a + 7)) for a in range(0, h, 7)]  # noqa: E731
    monkeypatch.setattr(fine_scales, "row_strips", strips_of_7)
    projection = _bowl() + _noise(1, 1)[0]
    noise = _noise(2, 8)
    gate = np.zeros((SIZE, SIZE))
    gate[10:80, 5:90] = 1.0
    got = fine_scales.removal_map(projection, noise, gate, (SIZE, SIZE))
    np.testing.assert_allclose(got, _reference_removal(projection, noise, gate), atol=1e-5)


def test_a_smooth_signal_loses_its_noise_and_keeps_its_amplitude():
    truth = _bowl()
    noisy = truth + _noise(3, 1)[0]
    series = np.stack([np.zeros_like(noisy), noisy]).astype(np.float32)
    gate = np.ones((SIZE, SIZE))
    removal = fine_scales.removal_map(noisy, _noise(4, 16), gate, (SIZE, SIZE))
    fine_scales.shrink_fine_scales(series, removal)
    before = np.sqrt(np.mean((noisy - truth) ** 2))
    after = np.sqrt(np.mean((series[1] - truth) ** 2))
    assert after < 0.5 * before
    slope = np.polyfit(truth.ravel(), series[1].ravel().astype(np.float64), 1)[0]
    assert 0.95 < slope < 1.05
    np.testing.assert_array_equal(series[0], 0.0)  # the first date, zero, stays zero


def test_a_sharp_step_that_stands_above_the_noise_is_kept():
    cols = np.arange(SIZE)[None, :].repeat(SIZE, axis=0)
    truth = np.where(cols < 48, -5.0, 5.0)  # a creeping fault along the rows
    noisy = truth + _noise(5, 1)[0]
    series = noisy[None].astype(np.float32).copy()
    removal = fine_scales.removal_map(noisy, _noise(6, 16), np.ones((SIZE, SIZE)), (SIZE, SIZE))
    fine_scales.shrink_fine_scales(series, removal)
    assert removal[:, 44:52].mean() < 0.2  # kept across the step
    step = series[0][:, 49:52].mean() - series[0][:, 44:47].mean()
    assert 9.0 < step < 11.0


def test_nothing_changes_where_the_gate_is_closed():
    noisy = _bowl() + _noise(7, 1)[0]
    series = noisy[None].astype(np.float32).copy()
    gate = np.zeros((SIZE, SIZE))
    gate[:, :30] = 1.0
    removal = fine_scales.removal_map(noisy, _noise(8, 16), gate, (SIZE, SIZE))
    assert np.all(removal[:, 30:] == 0.0)
    fine_scales.shrink_fine_scales(series, removal)
    # where nothing is removed the values are those of the input, bit for bit
    np.testing.assert_array_equal(series[0][:, 30:], noisy.astype(np.float32)[:, 30:])


def test_engine_option_lowers_the_error_of_a_broad_source():
    """Benchmark v2 `shifted` 74 (a deep fault, SNR 32): the option takes out speckle the
    network left inside the gate (RMSE 1.16 -> 1.07 mm, r 0.84 -> 0.86 when measured in
    session 32; the earlier examples, `shifted` 66 and 19, are smoothed by default since the
    risk-chosen smoothing of sessions 30 and 32); it is off by default."""
    from insar_denoise.evaluation.referee_scenes import design, simulate
    from insar_denoise.evaluation.referee_scoring import offset_free_scores
    from insar_denoise.inference import denoise_dataset
    from insar_denoise.models import load_model

    spec = next(s for s in design(84, 0, "shifted") if s.index == 74)
    batch, ds = simulate(spec, "shifted", 192)
    truth = batch.cumulative[0].numpy().astype(np.float64)
    model = load_model("default")
    scores = {}
    for option in (False, True):
        out = denoise_dataset(ds, model, progress=False, denoise_fine_scales=option)
        cumulative = out["cumulative_deformation"].values.astype(np.float64)
        scores[option] = offset_free_scores(cumulative, truth, batch.valid[0].numpy())
    assert scores[True]["rmse_mm"] < 0.95 * scores[False]["rmse_mm"]
    assert scores[True]["r"] > scores[False]["r"] + 0.01
