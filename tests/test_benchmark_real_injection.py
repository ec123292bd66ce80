"""The real-noise benchmark's readings: the target test and the stack's own signal."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "real_injection.py"


@pytest.fixture(scope="module")
def real_injection():
    spec = importlib.util.spec_from_file_location("real_injection", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_target_needs_gain_in_range_and_r(real_injection) -> None:
    assert real_injection._in_target(0.95, 0.91)
    assert not real_injection._in_target(0.8999, 0.99)
    assert not real_injection._in_target(1.0, 0.89)
    assert not real_injection._in_target(1.0, math.nan)


def test_own_signal_reads_a_steady_patch_rate(real_injection) -> None:
    rng = np.random.default_rng(3)
    days = np.arange(13) * 35.0
    h, w = 40, 30
    patch = np.zeros((h, w), bool)
    patch[10:20, 10:20] = True  # 100 px: more than the map's lowest 5 % (60 px)
    rate = -8.0 / 365.25  # mm per day
    disp = rng.normal(0.0, 0.3, (13, h, w))
    disp += np.where(patch, rate, 0.0)[None] * days[:, None, None]
    base = np.where(patch, -10.0, 0.0) + rng.normal(0.0, 0.1, (h, w))
    got = real_injection.own_signal(disp, base, np.ones((h, w), bool), days)
    assert 55 <= got["pixels"] <= 60
    assert got["rate_mm_per_year"] == pytest.approx(-8.0, abs=0.3)
    assert got["residual_std_mm"] < 0.2
    assert len(got["history_mm"]) == 13
