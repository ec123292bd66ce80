"""Unwrapping errors of single dates (``inference/unwrapping.py``), against the simulator's own."""

from __future__ import annotations

import dataclasses
import functools
import json

import numpy as np
import pytest
from scipy import ndimage

import insar_denoise.evaluation.referee_scenes as rsc
from insar_denoise.inference import denoise_dataset, unwrapping
from insar_denoise.models import load_model
from insar_denoise.synth.config import S1_HALF_WAVELENGTH_MM
from tests.random_fields import power_law

HALF = S1_HALF_WAVELENGTH_MM


def scene_with_and_without_error(index: int, split: str = "shifted"):
    """A Benchmark v2 scene as simulated, and the same draws without its unwrapping error
    (the simulator draws the error's numbers either way: only the jump differs)."""
    spec = rsc.design(84, 0, split)[index]
    batch, ds = rsc.simulate(spec, split, 192)
    orig = rsc.SceneSpec.config
    try:
        rsc.SceneSpec.config = lambda self, s, n: dataclasses.replace(
            orig(self, s, n), unwrap_prob=0.0
        )
        _, clean = rsc.simulate(spec, split, 192)
    finally:
        rsc.SceneSpec.config = orig
    return batch, ds, clean


# 18, 36, 36, 9 dates; +1, +1, -2, -2 half wavelengths
@pytest.mark.parametrize("index", [1, 22, 58, 8])
def test_finds_the_simulators_errors_to_the_pixel(index):
    _, ds, clean = scene_with_and_without_error(index)
    disp = ds["displacement"].values
    truth = np.nan_to_num(disp - clean["displacement"].values)
    assert np.abs(truth).max() > 0.9 * HALF  # the scene has one
    jumps = unwrapping.find_jumps(disp, ds["dem"].values)
    found = unwrapping.removed(disp, jumps)
    rims = np.isnan(found) & np.isfinite(disp)
    # the rims, set missing, lie within RIM_PX of a region of their date, outside it
    for t in range(disp.shape[0]):
        regions = [j.mask for j in jumps if j.date == t]
        near = np.zeros(disp.shape[1:], bool)
        for m in regions:
            near |= ndimage.binary_dilation(m, iterations=unwrapping.RIM_PX) & ~m
        short = disp.shape[0] <= unwrapping.RIM_MAX_DATES
        assert not (rims[t] & ~near).any() and (rims[t].any() == (short and bool(regions)))
    fin = np.isfinite(disp) & ~rims
    # equal up to a constant per date (a region larger than the rest of its date is the
    # "background"; its complement is then shifted the other way, the same correction)
    for t in range(disp.shape[0]):
        left = np.round((truth[t] - found[t])[fin[t]], 1)
        values, counts = np.unique(left, return_counts=True)
        assert counts.max() >= 0.99 * fin[t].sum(), f"date {t}: {values} {counts}"
    assert {j.date for j in jumps} == set(np.flatnonzero(np.abs(truth).max(axis=(1, 2)) > 1))


def smooth_stack(n_dates: int = 12, size: int = 128, seed: int = 0) -> np.ndarray:
    """Steep-spectrum atmosphere of 5 mm per date, relative to the first date."""
    rng = np.random.default_rng(seed)
    d = 5.0 * power_law(rng, n_dates, size)
    return (d - d[:1]).astype(np.float32)


def ellipse(size: int, centre: tuple[float, float], axes: tuple[float, float]) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size].astype(float)
    return ((yy - centre[0]) / axes[0]) ** 2 + ((xx - centre[1]) / axes[1]) ** 2 <= 1.0


def test_a_spike_is_removed_but_a_step_that_stays_is_deformation():
    d = smooth_stack()
    spike = ellipse(128, (40, 50), (20, 30))
    step = ellipse(128, (90, 90), (18, 25))
    d[4][spike] += 2 * HALF  # one date only: an unwrapping error
    d[7:][:, step] += HALF  # from date 7 on: a ground step of exactly one half wavelength
    d[-1][ellipse(128, (100, 30), (15, 15))] -= HALF  # the last date
    jumps = unwrapping.find_jumps(d)
    assert [(j.date, j.cycles) for j in jumps] == [(4, 2), (11, -1)]
    assert np.array_equal(jumps[0].mask, spike)
    fixed = d - unwrapping.removed(d, jumps)
    assert np.abs(fixed[4][spike] - d[4][spike] + 2 * HALF).max() < 1e-3
    assert np.all(fixed[7:10][:, step] == d[7:10][:, step])  # the step stays


def test_pieces_cut_off_by_holes_and_an_error_ringed_by_holes_are_removed_too():
    d = smooth_stack(seed=5)
    spike = ellipse(128, (40, 50), (20, 30))
    d[4][spike] += HALF
    cut = np.zeros((128, 128), bool)
    cut[:, 70:72] = True  # a decorrelated strip: the ellipse's east tip (< 256 px) is apart
    island = ellipse(128, (95, 90), (12, 12))
    ring = ellipse(128, (95, 90), (15, 15)) & ~island  # a hole all around a second error
    d[:, cut | ring] = np.nan
    d[4][island] -= HALF
    tip = spike & ~cut & (np.mgrid[:128, :128][1] > 71)
    assert 16 <= tip.sum() < unwrapping.MIN_PIXELS
    jumps = unwrapping.find_jumps(d)
    fixed = d - unwrapping.removed(d, jumps)
    clean = d.copy()
    clean[4][spike] -= HALF
    clean[4][island] += HALF
    assert all(j.rim is None for j in jumps)  # 12 dates: no rim set missing
    np.testing.assert_allclose(fixed, clean, atol=1e-3)  # every wrong pixel, nothing else
    assert {j.date for j in jumps} == {4}


def test_steep_stratification_is_not_taken_for_an_error_when_the_dem_is_given():
    size = 128
    rng = np.random.default_rng(3)
    dem = 3000.0 * (power_law(rng, 1, size, beta=4.0)[0] + 2.0)  # ~3 km of relief
    z = (dem - np.median(dem)) / 1000.0
    d = smooth_stack(size=size, seed=4)
    k = rng.normal(0.0, 15.0, len(d))  # mm/km of stratified delay per date
    d = d + (k[:, None, None] - k[0]) * z[None] + 3.0 * rng.normal(size=(len(d), 1, 1)) * z**2
    assert unwrapping.find_jumps(d, dem) == []


@pytest.mark.parametrize("index", [1, 0])  # no deformation; 18 / 9 dates, an error on date 6 / 2
def test_engine_removes_the_error_and_keeps_noise_plus_signal_equal_to_input(index):
    batch, ds, clean = scene_with_and_without_error(index)
    out = denoise_dataset(ds, load_model("default"), progress=False)
    (note,) = json.loads(out.attrs[unwrapping.UNWRAP_ATTR])
    date = {1: 6, 0: 2}[index]
    assert note["date"] == str(np.datetime_as_string(ds["time"].values[date], unit="D"))
    assert note["jump_mm"] == pytest.approx(HALF, abs=0.01)
    referenced = ds["displacement"].values - ds["displacement"].values[:1]
    total = out["noise"].values + out["deformation"].values
    # the error's rim is set missing on its date: no deformation or noise there, as in a gap
    rim = np.isfinite(referenced) & np.isnan(out["deformation"].values)
    assert rim.sum() == rim[date].sum() == note["rim_missing"]
    assert (note["rim_missing"] > 0) == (ds.sizes["time"] <= unwrapping.RIM_MAX_DATES)
    fin = np.isfinite(referenced) & ~rim
    np.testing.assert_allclose(total[fin], referenced[fin], atol=1e-3)
    # the input the model saw is the clean one up to a constant on that date
    cum = out["cumulative_deformation"].values
    assert np.nanmax(np.abs(cum - np.nanmedian(cum))) < 0.5


def test_a_nine_date_stack_loses_its_error_before_the_model():
    """Session 39's fresh-draw failure: a 9-date `shifted` deep Mogi (36, noise draw 1) whose
    -55.4 mm error stayed in gave the fault-trace search a straight edge (36.2 mm against the
    zero map's 1.80); removed, with its rim set missing, the output beats the zero map."""
    from insar_denoise.evaluation import referee_scoring as rs
    from insar_denoise.evaluation.referee import model_stride

    spec = rsc.design(84, 0, "shifted")[36]
    batch, noise, ds = rsc.with_fresh_noise(spec, "shifted", 192, 1)
    assert ds.sizes["time"] == 9
    model = load_model("default")
    out = denoise_dataset(ds, model, stride=model_stride(model, 9), progress=False)
    (note,) = json.loads(out.attrs[unwrapping.UNWRAP_ATTR])
    assert note["jump_mm"] == pytest.approx(-2 * HALF, abs=0.01) and note["rim_missing"] > 0
    cum = out["cumulative_deformation"].values.astype(np.float64)
    truth = batch.cumulative[0].numpy().astype(np.float64)
    mask = noise.valid[0].numpy() & np.isfinite(cum)
    got = rs.offset_free_scores(cum, truth, mask)["rmse_mm"]
    zero = rs.offset_free_scores(np.zeros_like(truth), truth, mask)["rmse_mm"]
    assert got < zero  # 1.50 against 1.80 mm (36.2 with the error left in)


@pytest.mark.parametrize("index", [22, 8])  # 36 dates, +1 half wavelength; 9 dates with a rim
def test_a_dask_stack_is_read_one_date_at_a_time_and_corrected_as_in_memory(index):
    import dask
    import dask.array as da

    _, ds, _ = scene_with_and_without_error(index)
    disp = ds["displacement"].transpose("time", "y", "x").values.astype(np.float32)
    dem = ds["dem"].values
    want, note = unwrapping.unwrapping_fix(disp, dem)
    reads = []

    def read(t: int) -> np.ndarray:  # a date of a stack on disk, each read recorded
        reads.append(t)
        return disp[t]

    n_dates = disp.shape[0]
    parts = [
        da.from_delayed(dask.delayed(read)(t), disp.shape[1:], disp.dtype) for t in range(n_dates)
    ]
    lazy = da.stack(parts).rechunk((1, 96, 96))
    got, lazy_note = unwrapping.unwrapping_fix(lazy, dem)
    assert isinstance(got, da.Array) and got.chunks == lazy.chunks
    assert lazy_note == note and json.loads(note)  # the same regions found
    assert sorted(reads) == list(range(n_dates))  # every date read once
    np.testing.assert_array_equal(got.compute(), want)  # NaN on the same rims
    assert np.isnan(want).any() == (n_dates <= unwrapping.RIM_MAX_DATES)


@functools.cache
def _eager_run(index: int):
    """The engine's in-memory result of :func:`scene_with_and_without_error` ``index``, once
    for both lazy paths."""
    _, ds, _ = scene_with_and_without_error(index)
    return denoise_dataset(ds, load_model("default"), progress=False)


@pytest.mark.parametrize("index", [1, 0])  # 18 dates; 9 dates, with a rim set missing
@pytest.mark.parametrize("streamed", [False, True])
def test_engine_corrects_a_lazy_stack_as_an_in_memory_one(streamed, index, monkeypatch):
    from insar_denoise.inference import stack_path

    eager = _eager_run(index)  # numpy input: in memory whatever the limit
    if streamed:  # through disk, as a frame is
        monkeypatch.setattr(stack_path, "IN_MEMORY_MAX_BYTES", 1)
    _, ds, _ = scene_with_and_without_error(index)
    model = load_model("default")
    lazy = denoise_dataset(ds.chunk({"time": 1, "y": 96, "x": 96}), model, progress=False)
    assert lazy.attrs[unwrapping.UNWRAP_ATTR] == eager.attrs[unwrapping.UNWRAP_ATTR] != "none"
    for name in ("cumulative_deformation", "noise"):
        np.testing.assert_allclose(
            np.asarray(lazy[name].values), eager[name].values, atol=1e-4, equal_nan=True
        )


def test_large_scenes_are_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(unwrapping, "MAX_PIXELS", 100)
    removed, note = unwrapping.unwrapping_fix(np.zeros((5, 20, 20), np.float32))
    assert removed is None and note.startswith("skipped: scene over 100 pixels")


def test_qc_lists_the_removed_errors():
    from insar_denoise.trust.qc import unwrapping_findings

    note = json.dumps([{"date": "2020-03-13", "jump_mm": 27.7, "pixels": 8557, "rim_missing": 9}])
    (finding,) = unwrapping_findings({unwrapping.UNWRAP_ATTR: note})
    assert finding.code == "unwrapping_removed"
    assert "+27.7 mm on 8557 px of 2020-03-13" in finding.message
    assert finding.message.endswith("9 px around them were set missing on their date")
    assert unwrapping_findings({unwrapping.UNWRAP_ATTR: "none"}) == []
    assert unwrapping_findings({}) == []
