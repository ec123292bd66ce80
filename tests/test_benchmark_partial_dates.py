"""``benchmarks/partial_dates.py``: where the square missing on one date goes."""

from __future__ import annotations

import numpy as np
from benchmark_scripts import load_benchmark


def _script():
    return load_benchmark("partial_dates")


def test_the_square_is_centred_on_the_largest_offset_and_kept_inside():
    blocks = _script().block_slices
    truth = np.zeros((100, 80))
    truth[40, 30] = -7.0  # below the median: the largest offset either way
    rows, cols = blocks(truth, 20)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (30, 50, 20, 40)
    truth[:] = 0.0
    truth[98, 2] = 5.0  # in a corner: the square is shifted inside the scene
    rows, cols = blocks(truth, 20)
    assert (rows.start, rows.stop, cols.start, cols.stop) == (80, 100, 0, 20)
    rows, cols = blocks(np.zeros((100, 80)), 20)  # no deformation: the centre
    assert (rows.start, cols.start) == (40, 30)
