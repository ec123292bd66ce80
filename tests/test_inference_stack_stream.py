"""The streamed whole-stack path (through disk) against the in-memory path."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from insar_denoise.inference import (
    denoise_dataset,
    fine_scales,
    planning,
    relief,
    stack_path,
    stratification,
)
from insar_denoise.inference.bilaplacian_support import SECOND_DETECTOR_ATTR
from insar_denoise.inference.disk_stack import DiskStack
from insar_denoise.inference.testing import synthetic_dataset
from insar_denoise.models import load_model

OUTPUTS = ("deformation", "cumulative_deformation", "noise", "uncertainty", "detection")


@pytest.fixture(scope="module")
def model():
    return load_model("default")


@pytest.fixture(scope="module")
def scene():
    """A lazy 176 x 168 px, 12-date scene with a gap, a patch missing on the last date (which
    the gate leaves untested) and one on the first (where it stays shut), several blocks at
    ``chunk=64``."""
    ds = synthetic_dataset(n_dates=12, shape=(176, 168), seed=5, noise_mm=2.0)
    ds["displacement"][4, 10:20, 30:50] = np.nan
    ds["displacement"][11, 120:140, 100:130] = np.nan
    ds["displacement"][0, 60:80, 70:90] = np.nan
    return ds.chunk({"time": -1, "y": 64, "x": 64})


def _run(ds, model, monkeypatch, streamed: bool, **options):
    monkeypatch.setattr(stack_path, "IN_MEMORY_MAX_BYTES", 0 if streamed else 10**12)
    return denoise_dataset(ds, model, chunk=64, progress=False, **options).compute()


@pytest.fixture(scope="module")
def calm_in_memory(scene, model):
    """The scene's in-memory result with the default options (read by two tests)."""
    with pytest.MonkeyPatch.context() as patch:
        return _run(scene, model, patch, streamed=False)


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


KEYS = [
    (slice(None), slice(5, 15), slice(3, 20)),
    (1, slice(2, 9)),
    (2, 7),
    (0, 3, 4),
    ([0, 2], slice(1, 19)),
    (slice(1, None), -1, slice(None, None, 2)),
    (slice(None), slice(None, None, 3), 5),  # rows with a step: whole-file mapping
    (slice(0, 0), slice(None)),  # empty
    (Ellipsis, 4),
    -1,
]


@pytest.mark.parametrize("key", KEYS, ids=str)
def test_disk_stack_indexing_as_numpy(key):
    """Reads and writes of a few rows of each map equal numpy's on the same key."""
    data = np.arange(3 * 20 * 30, dtype=np.float32).reshape(3, 20, 30)
    stack = DiskStack(data.shape)
    stack[:] = data
    np.testing.assert_array_equal(stack[key], data[key])
    assert stack[key].shape == data[key].shape
    expected = data.copy()
    expected[key] = -np.asarray(data[key]) - 1.0
    stack[key] = -np.asarray(data[key]) - 1.0
    np.testing.assert_array_equal(stack[:], expected)
    stack[key] = 7.0  # broadcast scalar
    expected[key] = 7.0
    np.testing.assert_array_equal(stack[:], expected)


@pytest.mark.parametrize(
    "flagged", ["", "corrected", "terms"], ids=["calm", "relief-corrected", "relief-terms"]
)
def test_streamed_gate_equals_in_memory_gate(scene, model, monkeypatch, flagged, calm_in_memory):
    """Scenes of 160 px or more take the significance gate on both paths: same result (also
    when the relief check flags the scene: with the stratified-delay correction of 12 dates
    or more, or with the stratification terms of the noise maps below that)."""
    if flagged:
        monkeypatch.setattr(relief, "RELIEF_RATIO", 0.0)
        monkeypatch.setattr(relief, "RELIEF_MIN_MM", 0.0)
    if flagged == "terms":
        monkeypatch.setattr(stratification, "MIN_DATES", 13)
    ref = calm_in_memory if not flagged else _run(scene, model, monkeypatch, streamed=False)
    monkeypatch.setattr(planning, "DATES_PER_READ", 5)  # block inputs read 5, 5, 2 dates
    got = _run(scene, model, monkeypatch, streamed=True)
    for name in OUTPUTS:
        a, b = ref[name].values, got[name].values
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        np.testing.assert_allclose(b, a, atol=2e-4, rtol=0, err_msg=name)
    z_ref = json.loads(ref.attrs["insar_denoise_significance_z"])
    assert json.loads(got.attrs["insar_denoise_significance_z"]) == pytest.approx(
        z_ref, abs=1e-3, rel=1e-4
    )
    assert max(z_ref) > 5.5  # the bump is detected: the gate acted on both paths
    second = json.loads(ref.attrs[SECOND_DETECTOR_ATTR])  # the second detector ran on both
    got_second = json.loads(got.attrs[SECOND_DETECTOR_ATTR])
    assert got_second["filled_pixels"] == second["filled_pixels"]
    assert got_second["largest_z"] == pytest.approx(second["largest_z"], abs=0.02)
    for key in ("insar_denoise_relief_ratio", "insar_denoise_relief_mm"):  # the relief check
        assert got.attrs[key] == pytest.approx(ref.attrs[key], abs=0.011), key
    note = got.attrs[stratification.STRAT_ATTR]
    assert note == ref.attrs[stratification.STRAT_ATTR]
    assert note.startswith("{") == (flagged == "corrected"), note


def test_streamed_fine_scales_equal_in_memory(scene, model, monkeypatch, calm_in_memory):
    """With ``denoise_fine_scales`` both paths take the same fine scales out, by the same
    row strips, and the option changes the result inside the gate."""
    ref = _run(scene, model, monkeypatch, streamed=False, denoise_fine_scales=True)
    monkeypatch.setattr(planning, "DATES_PER_READ", 5)
    got = _run(scene, model, monkeypatch, streamed=True, denoise_fine_scales=True)
    for name in OUTPUTS:
        a, b = ref[name].values, got[name].values
        assert np.array_equal(np.isnan(a), np.isnan(b)), name
        np.testing.assert_allclose(b, a, atol=2e-4, rtol=0, err_msg=name)
    assert got.attrs[fine_scales.FINE_ATTR].startswith("denoised")
    off = calm_in_memory
    assert fine_scales.FINE_ATTR not in off.attrs
    moved = np.abs(ref["cumulative_deformation"].values - off["cumulative_deformation"].values)
    assert np.nanmax(moved) > 0.01


def test_default_block_is_capped_but_holds_a_tile(scene, model):
    """Six tile steps of 128 px would be 768 px blocks (2.1 GB at 1024² x 100 dates): the
    stack path caps the default block at BLOCK_MAX_PX, never below one tile."""
    tile, overlap = model.metadata["default_tile"], model.metadata["default_overlap"]
    assert planning.default_chunk(tile, overlap) == 6 * (tile - overlap) > stack_path.BLOCK_MAX_PX
    assert planning.default_chunk(tile, overlap, 64) == tile
    out = denoise_dataset(scene, model, progress=False)
    assert out.attrs["insar_denoise_chunk_px"] == stack_path.BLOCK_MAX_PX


def test_scenes_under_the_gate_size_are_padded_and_equal_in_memory(model, monkeypatch):
    """A lazy 96 x 88 px scene is padded to the gate's size and gated; the streamed path
    (forced by a zero memory limit) gives the in-memory result."""
    ds = synthetic_dataset(n_dates=12, shape=(96, 88), seed=3, noise_mm=2.0)
    lazy = ds.chunk({"time": -1, "y": 64, "x": 64})
    ref = _run(lazy, model, monkeypatch, streamed=False)
    got = _run(lazy, model, monkeypatch, streamed=True)
    assert json.loads(got.attrs[stack_path.PAD_ATTR]) == [stack_path.GATE_MIN_PX] * 2
    assert "insar_denoise_significance_z" in got.attrs
    assert got["cumulative_deformation"].shape == (96, 88)
    for name in OUTPUTS:
        np.testing.assert_allclose(got[name].values, ref[name].values, atol=2e-4, rtol=0)


def test_block_run_reuse_matches_copy_and_copy_leaves_input(model):
    """``run(reuse=True)`` writes the NaN mask into the given array (no copy) and gives the
    copying run's result bit for bit; the copying run leaves its input untouched."""
    import torch

    from insar_denoise.inference.runner import Progress
    from insar_denoise.inference.stack_runner import StackBlockDenoiser
    from insar_denoise.inference.tiling import iter_tiled_blocks

    ds = synthetic_dataset(n_dates=12, shape=(96, 96), seed=3, noise_mm=2.0)
    disp = ds["displacement"].values.astype(np.float32)
    disp[:9, 5:9, 7:11] = np.nan  # too few valid dates there: masked by run
    dem = ds["dem"].values.astype(np.float32)
    days = ((ds["time"].values - ds["time"].values[0]) / np.timedelta64(1, "D")).astype(float)
    fn = StackBlockDenoiser(model, torch.device("cpu"), 64, 32, days, 2, None)
    fn.progress = Progress(10**6, False)
    block = list(iter_tiled_blocks((96, 96), 48, (64, 64), 32, fn.margin))[0][0]
    sy, sx = slice(*block.read_y), slice(*block.read_x)
    given = disp[:, sy, sx].copy()
    ref, applied_ref = fn.run(given, dem[sy, sx], None, block)
    np.testing.assert_array_equal(given, disp[:, sy, sx])  # input untouched
    got, applied = fn.run(given, dem[sy, sx], None, block, reuse=True)
    np.testing.assert_array_equal(got, ref)
    assert applied.keys() == applied_ref.keys()
    assert np.isnan(given[:, 5 - sy.start, 7 - sx.start]).all()  # mask written in place


def test_read_window_by_dates_equals_compute():
    """``read_window`` gives the window's values, read 3 + 3 + 1 dates; numpy passes as is."""
    import dask.array as da

    values = np.random.default_rng(0).normal(size=(7, 30, 40)).astype(np.float32)
    values[2, 5:9, 3:7] = np.nan
    lazy = da.from_array(values, chunks=(1, 16, 16))[:, 4:27, 9:33]
    got = planning.read_window(lazy, per_read=3)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32
    np.testing.assert_array_equal(got, values[:, 4:27, 9:33])
    assert planning.read_window(values) is values
    np.testing.assert_array_equal(planning.read_window(lazy[0]), values[0, 4:27, 9:33])
