"""Tests of insar_denoise.inference.windows: window starts and the least-squares combination."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insar_denoise.errors import InputError
from insar_denoise.inference.windows import combination_matrix, combine_windows, window_starts


def _exact_window_outputs(series: np.ndarray, starts: np.ndarray, n: int) -> np.ndarray:
    return np.stack([series[s + n - 1] - series[s] for s in starts])


@pytest.mark.parametrize("stride", [1, 2, 3, 7])
def test_window_starts_cover_last_date(stride):
    starts = window_starts(20, 9, stride)
    assert starts[0] == 0 and starts[-1] == 20 - 9
    assert np.all(np.diff(starts) >= 1) and np.all(np.diff(starts)[:-1] == stride)


def test_fewer_dates_than_window_names_n():
    with pytest.raises(InputError, match="N=9"):
        window_starts(8, 9)
    assert list(window_starts(9, 9)) == [0]


@settings(max_examples=25, deadline=None)
@given(
    n_dates=st.integers(3, 30),
    window=st.integers(2, 10),
    stride=st.integers(1, 4),
    seed=st.integers(0, 10_000),
)
def test_linear_series_recovered_exactly(n_dates, window, stride, seed):
    if n_dates < window:
        return
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(6, 24, n_dates))  # irregular sampling, days
    rate = rng.normal(size=(5, 4))
    truth = (times - times[0])[:, None, None] * rate[None]
    starts = window_starts(n_dates, window, stride)
    p = combination_matrix(n_dates, window, starts, times)
    series = combine_windows(_exact_window_outputs(truth, starts, window), p)
    np.testing.assert_allclose(series, truth, atol=1e-4 * max(1.0, np.abs(truth).max()))


def test_nonlinear_series_recovered_on_constrained_dates():
    # stride 1: d(t_{k(N-1)}) is a chain of window outputs, hence exact for any truth.
    n_dates, n = 17, 5
    times = np.arange(n_dates) * 12.0
    truth = (np.sin(times / 40.0) * 7.0)[:, None, None] * np.ones((1, 3, 2))
    starts = window_starts(n_dates, n, 1)
    series = combine_windows(
        _exact_window_outputs(truth, starts, n), combination_matrix(n_dates, n, starts, times)
    )
    np.testing.assert_allclose(series[:: n - 1], truth[:: n - 1], atol=1e-3)
    np.testing.assert_allclose(series, truth, atol=0.3)  # smooth truth: small curvature error


def test_single_window_is_exact_at_the_ends():
    starts = window_starts(6, 6)
    p = combination_matrix(6, 6, starts)
    w = np.full((1, 2, 2), 3.5)
    series = combine_windows(w, p)
    np.testing.assert_allclose(series[-1], 3.5, rtol=1e-6)
    np.testing.assert_allclose(series[:, 0, 0], np.linspace(0, 3.5, 6), atol=1e-6)
