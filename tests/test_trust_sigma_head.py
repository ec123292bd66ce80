"""The variance head (insar_denoise.trust.sigma_head) and its use in the uncertainty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from insar_denoise.errors import ModelError
from insar_denoise.models.registry import build_untrained, export_model, load_model
from insar_denoise.trust import sigma_head as sh
from insar_denoise.trust.uncertainty import calibrate, load_sigma_head


def test_stack_cumulative_matches_numpy_polyfit():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 300, 7))
    d = rng.normal(size=(2, 7, 5, 6))
    d[0, 3, 1, 2] = np.nan  # a hole: the line is fitted on the other dates
    got = sh.stack_cumulative(torch.from_numpy(d), torch.from_numpy(t)).numpy()
    for b in range(2):
        for i in range(5):
            for j in range(6):
                ok = np.isfinite(d[b, :, i, j])
                slope = np.polyfit(t[ok] - t[0], d[b, ok, i, j], 1)[0]
                assert got[b, i, j] == pytest.approx(slope * (t[-1] - t[0]), rel=1e-9, abs=1e-9)


def test_head_inputs_are_scale_free():
    """Multiplying every map in mm by k leaves the normalised inputs and multiplies the scale."""
    g = torch.Generator().manual_seed(1)
    est, raw, stack = (torch.randn(2, 32, 32, generator=g, dtype=torch.float64) for _ in range(3))
    dem = 100 * torch.randn(2, 32, 32, generator=g, dtype=torch.float64)
    valid = torch.rand(2, 32, 32, generator=g) > 0.1
    x1, s1 = sh.head_inputs(est, raw, stack, dem, valid)
    x7, s7 = sh.head_inputs(7 * est, 7 * raw, 7 * stack, dem, valid)
    torch.testing.assert_close(x1, x7, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s7, 7 * s1)
    assert x1.shape == (2, len(sh.CHANNELS), 32, 32)
    assert torch.equal(x1[:, -1] > 0, valid)


def test_sigma_map_is_scale_equivariant_and_nan_outside_valid():
    head = sh.SigmaHead(width=4).eval()
    rng = np.random.default_rng(2)
    h, w = 70, 90  # not a multiple of the tile step
    est, raw, stack = (rng.normal(size=(h, w)) for _ in range(3))
    dem = rng.normal(size=(h, w)) * 300
    valid = np.ones((h, w), bool)
    valid[5:9, 10:20] = False
    s1 = sh.sigma_map(head, est, raw, stack, dem, valid)
    s3 = sh.sigma_map(head, 3 * est, 3 * raw, 3 * stack, dem, valid)
    assert s1.shape == (h, w)
    assert np.all(np.isnan(s1[~valid])) and np.all(np.isfinite(s1[valid]) & (s1[valid] > 0))
    np.testing.assert_allclose(s3[valid], 3 * s1[valid], rtol=1e-4)


def test_gaussian_nll_is_smallest_at_the_true_sigma():
    e = torch.from_numpy(np.random.default_rng(3).normal(0, 2.0, (1, 100, 100)))
    mask = torch.ones_like(e, dtype=torch.bool)
    grid = np.linspace(0.5, 4, 71)
    nll = [float(sh.gaussian_nll(torch.full_like(e, np.log(s)), e, mask)) for s in grid]
    assert grid[int(np.argmin(nll))] == pytest.approx(2.0, abs=0.1)


def test_head_learns_heteroscedastic_noise():
    """Errors whose std is 3x larger where the 'raw' channel is positive: the trained head
    finds the two levels (ratio ~3)."""
    g = torch.Generator().manual_seed(0)
    n, size = 48, 24
    inputs = torch.zeros(n, len(sh.CHANNELS), size, size)
    inputs[:, 1] = torch.sign(torch.randn(n, 1, size, generator=g)).expand(n, size, size)
    inputs[:, -1] = 1.0
    std = torch.where(inputs[:, 1] > 0, 3.0, 1.0)
    data = {
        "inputs": inputs,
        "scale": torch.ones(n),
        "error": std * torch.randn(n, size, size, generator=g),
        "mask": torch.ones(n, size, size, dtype=torch.bool),
    }
    torch.manual_seed(0)
    head = sh.train_head(data, steps=150, batch=16, lr=1e-2, log=lambda s: None)
    sigma = sh.predict_sigma(head, inputs, data["scale"])
    hi, lo = sigma[inputs[:, 1] > 0].median(), sigma[inputs[:, 1] < 0].median()
    assert 0.7 < float(lo) < 1.4 and 2.1 < float(hi) < 4.2


@pytest.fixture(scope="module")
def tiny_with_head(tmp_path_factory) -> Path:
    net = build_untrained(window=9, channels=(2, 4, 4, 4))
    path = export_model(net, net.insar_metadata, tmp_path_factory.mktemp("m") / "tiny.pt")
    model = load_model(path)
    head = sh.SigmaHead(width=4)
    sh.export_head(head, {"model_sha256": model.metadata["sha256"]}, sh.head_path(path))
    return path


def test_head_round_trip_and_model_check(tiny_with_head: Path, tmp_path: Path):
    model = load_model(tiny_with_head)
    head, meta = load_sigma_head(model)
    assert meta["format"] == sh.FORMAT and meta["model_sha256"] == model.metadata["sha256"]
    x = torch.randn(1, len(sh.CHANNELS), 16, 16)
    assert head(x).shape == (1, 16, 16)
    # a head exported for other weights is refused
    other = tmp_path / "other.pt"
    net = build_untrained(window=9, channels=(2, 4, 4, 4), seed=1)
    export_model(net, net.insar_metadata, other)
    sh.export_head(sh.SigmaHead(width=4), {"model_sha256": "0" * 64}, sh.head_path(other))
    assert load_sigma_head(load_model(other)) == (None, {})
    with pytest.raises(ModelError, match="another model"):
        load_sigma_head(load_model(other), required=True)


def test_calibration_uses_the_head(tiny_with_head: Path):
    cal = calibrate(load_model(tiny_with_head), n=6, seed=0, size=48, sign=False, fit_seeds=1)
    assert cal["coefficients"]["head"] > 0 and cal["sigma_head"] is not None
    assert set(cal["coverage_by_amplitude"]) == {"0", "1", "2", "3", "5", "10", "20"}
    assert all(0 <= c <= 1 for pair in cal["coverage_by_amplitude"].values() for c in pair)
