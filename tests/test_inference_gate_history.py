"""The network's history where the gate returns its map: a step read from the data."""

import numpy as np
import pytest
from random_fields import gaussian_bump, power_law

from insar_denoise.inference import gate_history as gh


def _scene(history: np.ndarray, seed: int, overshoot: float = 1.15):
    """A bump with ``history`` under turbulence and stratification, and a network-like series:
    the bump ``overshoot`` times too strong, a straight line in time, gate open on it."""
    rng = np.random.default_rng(seed)
    size, n = 96, len(history)
    bump = 12.0 * gaussian_bump(size, 10.0)
    dem = 1000.0 + 800.0 * gaussian_bump(size, 30.0)[::-1]
    strat = rng.normal(0.0, 3.0, n)[:, None, None] * (dem / 1000.0)
    delays = 1.5 * power_law(rng, n, size) + strat
    referenced = history[:, None, None] * bump + delays - delays[0]
    frac = np.linspace(0.0, 1.0, n)
    series = (frac[:, None, None] * overshoot * bump).astype(np.float32)
    gate = (bump > 0.5).astype(np.float32)
    return referenced, series, gate, dem, bump, frac * 12.0 * (n - 1)


@pytest.mark.parametrize("onset", [0.4, 0.7])
def test_a_step_the_network_smears_comes_back_at_its_size(onset):
    n = 36
    frac = np.linspace(0.0, 1.0, n)
    history = (frac > onset).astype(float)
    referenced, series, gate, dem, bump, days = _scene(history, seed=3)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    found = gh.gate_ramp(series, gate, rows, dem, days, np.ones(n))
    assert found is not None and abs(found.ramp.start_days - onset * days[-1]) < 40
    gh.write_ramp(series, gate, found)
    on = gate > 0.5
    cumulative = series[-1] - series[0]
    gain = np.polyfit(bump[on], cumulative[on], 1)[0]
    assert gain == pytest.approx(1.0, abs=0.06)  # the series said 1.15
    c = bump.shape[0] // 2
    before = frac < onset - 0.05
    assert np.abs(series[before, c, c] - series[0, c, c]).max() < 0.05 * bump[c, c]


def test_steady_motion_and_short_stacks_keep_the_network_series():
    n = 36
    frac = np.linspace(0.0, 1.0, n)
    referenced, series, gate, dem, _, days = _scene(frac, seed=5)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    assert gh.gate_ramp(series, gate, rows, dem, days, np.ones(n)) is None
    step = (np.linspace(0.0, 1.0, 9) > 0.5).astype(float)
    referenced, series, gate, dem, _, days = _scene(step, seed=5)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    assert gh.gate_ramp(series, gate, rows, dem, days, np.ones(9)) is None


def test_a_closed_gate_reads_nothing():
    n = 36
    history = (np.linspace(0.0, 1.0, n) > 0.5).astype(float)
    referenced, series, gate, dem, _, days = _scene(history, seed=3)

    def rows(t, a, b):
        raise AssertionError("the stack was read")

    assert gh.gate_ramp(series, np.zeros_like(gate), rows, dem, days, np.ones(n)) is None


def test_the_second_detector_refits_the_network_series_it_leaves_whole():
    """Gate open everywhere: the second detector fills nothing and the network's series gets
    the step the data show (``gate_ramp`` in its note)."""
    from insar_denoise.inference import bilaplacian_support as bls

    n = 36
    frac = np.linspace(0.0, 1.0, n)
    history = (frac > 0.6).astype(float)
    referenced, series, _, dem, bump, days = _scene(history, seed=3)
    rng = np.random.default_rng(9)
    noise = rng.normal(0.0, 1.0, (16, *bump.shape))
    line = referenced[-1] - referenced[0]
    maps = (noise, line, noise, line)
    gate = np.ones(bump.shape, np.float32)
    rows = lambda t, a, b: referenced[t, a:b]  # noqa: E731
    out, g, note = bls.support_step(series, gate, maps, days, dem, rows, np.ones(n))
    assert note["filled_pixels"] == 0 and note["gate_ramp"]["pixels"] == bump.size
    assert abs(note["gate_ramp"]["ramp_start_days"] - 0.6 * days[-1]) < 40
    c = bump.shape[0] // 2
    assert out[-1, c, c] - out[0, c, c] == pytest.approx(bump[c, c], rel=0.08)


def test_the_amplitude_standard_error_matches_its_scatter_over_draws():
    """Twelve turbulence draws of one step: the fitted amplitude (1 / 1.15 of the network's
    overshooting pattern) scatters by about its stated standard error, not more."""
    n = 36
    history = (np.linspace(0.0, 1.0, n) > 0.5).astype(float)
    z = []
    for seed in range(12):
        referenced, series, gate, dem, _, days = _scene(history, seed=seed)
        rows = lambda t, a, b, r=referenced: r[t, a:b]  # noqa: E731
        found = gh.gate_ramp(series, gate, rows, dem, days, np.ones(n))
        z.append((found.amplitude - 1.0 / 1.15) / found.amplitude_sd)
    assert abs(np.mean(z)) < 0.8 and 0.4 < np.std(z) < 1.5


def test_the_bands_gain_the_amplitude_error_in_proportion_to_the_map():
    from insar_denoise.inference.stack_path import gate_ramp_variance

    cumulative = np.array([[0.0, 0.0, 0.0], [0.0, 10.0, 20.0]])
    var = gate_ramp_variance(cumulative, {"amplitude": 0.8, "amplitude_sd": 0.04})
    # (0.04 / 0.8)² = 0.0025 of the squared map above its median (0)
    np.testing.assert_allclose(var, 0.0025 * cumulative**2)
