"""``benchmarks/partial_dates.py``: where the square missing on one date goes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _script():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # it imports fresh_draws beside it
    try:
        spec = importlib.util.spec_from_file_location(
            "partial_dates", ROOT / "benchmarks" / "partial_dates.py"
        )
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return mod


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
