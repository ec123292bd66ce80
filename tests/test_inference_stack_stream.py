"""The streamed whole-stack path (through disk) against the in-memory path."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from insar_denoise.inference import broad_scales, denoise_dataset, stack_path
from insar_denoise.inference.disk_stack import DiskStack
from insar_denoise.inference.testing import synthetic_dataset
from insar_denoise.models import load_model

OUTPUTS = ("deformation", "cumulative_deformation", "noise", "uncertainty", "detection")


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def scene():
    """A lazy 150 x 140 px, 12-date scene with a gap, several blocks at ``chunk=64``."""
    ds = synthetic_dataset(n_dates=12, shape=(150, 140), seed=3, noise_mm=2.0)
    ds["displacement"][4, 10:20, 30:50] = np.nan
    return ds.chunk({"time": -1, "y": 64, "x": 64})


def _run(ds, model, monkeypatch, streamed: bool, q: int = 1):
    monkeypatch.setattr(stack_path, "IN_MEMORY_MAX_BYTES", 0 if streamed else 10**12)
    monkeypatch.setattr(stack_path, "BROAD_DECIMATION", q)
    return denoise_dataset(ds, model, chunk=64, progress=False).compute()


def test_streamed_equals_in_memory(scene, model, monkeypatch):
    ref = _run(scene, model, monkeypatch, streamed=False)
    got = _run(scene, model, monkeypatch, streamed=True, q=1)
    for name in OUTPUTS:
        a, b = ref[name].values, got[name].values
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        np.testing.assert_allclose(b, a, atol=2e-4, rtol=0, err_msg=name)
    assert got.attrs["insar_denoise_broad_gain"] == ref.attrs["insar_denoise_broad_gain"]
    # the broad-scale step did act (else both paths would agree trivially on it)
    assert any(g < 0.99 for g in json.loads(ref.attrs["insar_denoise_broad_gain"]))


def test_decimated_broad_scales_stay_within_005_mm(scene, model, monkeypatch):
    ref = _run(scene, model, monkeypatch, streamed=False)
    got = _run(scene, model, monkeypatch, streamed=True, q=stack_path.BROAD_DECIMATION)
    diff = np.abs(got["deformation"].values - ref["deformation"].values)
    assert 0 < np.nanmax(diff) < 0.05


def test_decimate_keeps_broad_scales():
    yy, xx = np.mgrid[0:200, 0:160]
    img = np.cos(2 * np.pi * yy / 100.0) + np.sin(2 * np.pi * xx / 80.0)
    small = broad_scales.decimate(img, 2)
    # block j centred on pixel 2 j + 0.5; a 1-px Gaussian and 2-sample mean barely touch it
    centre_y, centre_x = np.mgrid[0:100, 0:80] * 2 + 0.5
    want = np.cos(2 * np.pi * centre_y / 100.0) + np.sin(2 * np.pi * centre_x / 80.0)
    np.testing.assert_allclose(small[5:-5, 5:-5], want[5:-5, 5:-5], atol=0.01)


def test_disk_stack_round_trip_and_cleanup():
    stack = DiskStack((3, 20, 30))
    data = np.arange(3 * 20 * 30, dtype=np.float32).reshape(3, 20, 30)
    stack[:, 5:15, :] = data[:, 5:15, :]
    np.testing.assert_array_equal(stack[1, 5:15], data[1, 5:15])
    lazy = stack.to_dask((3, 8, 8))
    np.testing.assert_array_equal(lazy[:, 5:15].compute(), data[:, 5:15])
    folder = stack.folder
    assert folder.exists()
    del stack, lazy
    gc.collect()
    assert not folder.exists()


def test_streamed_gate_equals_in_memory_gate(model, monkeypatch):
    """Scenes of 160 px or more take the significance gate on both paths: same result."""
    ds = synthetic_dataset(n_dates=12, shape=(176, 168), seed=5, noise_mm=2.0)
    ds = ds.chunk({"time": -1, "y": 64, "x": 64})
    ref = _run(ds, model, monkeypatch, streamed=False)
    got = _run(ds, model, monkeypatch, streamed=True)
    for name in OUTPUTS:
        a, b = ref[name].values, got[name].values
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        np.testing.assert_allclose(b, a, atol=2e-4, rtol=0, err_msg=name)
    z_ref = json.loads(ref.attrs["insar_denoise_significance_z"])
    assert json.loads(got.attrs["insar_denoise_significance_z"]) == pytest.approx(z_ref, abs=1e-3)
    assert max(z_ref) > 5.5  # the bump is detected: the gate acted on both paths
