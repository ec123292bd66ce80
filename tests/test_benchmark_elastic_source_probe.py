"""``benchmarks/elastic_source_probe.py``: its source fit recovers a source of the simulator."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from insar_denoise.synth.mogi import mogi_surface

ROOT = Path(__file__).resolve().parents[1]


def _script():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # it imports fresh_draws beside it
    try:
        spec = importlib.util.spec_from_file_location(
            "elastic_source_probe", ROOT / "benchmarks" / "elastic_source_probe.py"
        )
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod  # its dataclass looks its module up
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return mod


def _mogi_map(n: int = 96) -> np.ndarray:
    """The simulator's Mogi source (an independent implementation) in a line of sight of
    the probe's set, mm, 20 px deep under (40, 55)."""
    c = torch.arange(n, dtype=torch.float64)
    east, north, up = mogi_surface(
        c[None, :] - 55.0 + 0.0 * c[:, None],
        -(c[:, None] - 40.0) + 0.0 * c[None, :],
        x0_m=0.0,
        y0_m=0.0,
        depth_m=20.0,
        volume_change_m3=20.0,  # about 12 mm of uplift above it
    )
    los = np.array([-0.397, -0.145, 0.906])  # heading -12°, incidence 25° (the probe's set)
    return 1e3 * sum(v * x.numpy() for v, x in zip(los, (east, north, up), strict=True))


def test_a_mogi_source_is_fitted_by_its_family_at_full_gain():
    probe = _script()
    truth = _mogi_map()
    rng = np.random.default_rng(3)
    noisy = truth + rng.normal(0.0, 0.05 * np.abs(truth).max(), truth.shape)
    peak = np.unravel_index(int(np.argmax(np.abs(truth))), truth.shape)
    starts = lambda family: probe.seeds(family, [(float(peak[0]) + 3, float(peak[1]) - 3)])  # noqa: E731
    mogi = probe.fit_source(noisy, None, "mogi", starts("mogi"))
    bowl = probe.fit_source(noisy, None, "bowl", starts("bowl"))
    assert mogi.rss < bowl.rss  # the right family fits better
    assert abs(mogi.geometry[2] - 20.0) < 3.0  # its depth (px)
    a, b = mogi.cumulative - mogi.cumulative.mean(), truth - truth.mean()
    assert 0.95 < float(a.ravel() @ b.ravel() / (b.ravel() @ b.ravel())) < 1.05
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99
