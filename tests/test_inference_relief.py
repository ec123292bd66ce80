"""The relief check: the cumulative's elevation part against that of its noise maps."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from insar_denoise.errors import OutOfDistributionWarning
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import relief, strips
from insar_denoise.inference.disk_stack import DiskStack
from insar_denoise.models import load_model
from insar_denoise.options import RunOptions
from insar_denoise.product import denoise


def _dem(shape=(120, 100), seed=0) -> np.ndarray:
    """A smooth DEM (m) with ~2 km of relief."""
    y, x = np.mgrid[: shape[0], : shape[1]] / 40.0
    rng = np.random.default_rng(seed)
    return 1000.0 * (1.0 + np.sin(x + rng.uniform()) * np.cos(0.7 * y)) + 5.0 * rng.random(shape)


def test_elevation_part_is_the_fitted_polynomial_spread():
    z = np.linspace(0.0, 3.0, 500)
    values = 3.0 + 5.0 * z + 2.0 * z * z
    assert relief.elevation_part_std(values, z) == pytest.approx(np.std(5.0 * z + 2.0 * z * z))
    values[::7] = np.nan  # NaN pixels are left out, not propagated
    assert relief.elevation_part_std(values, z) == pytest.approx(
        np.std((5.0 * z + 2.0 * z * z)[np.isfinite(values)]), rel=1e-9
    )


@pytest.mark.parametrize("step", [1, 3, 7])
def test_sampled_equals_strided_numpy_across_strips(step, monkeypatch):
    monkeypatch.setattr(strips, "STRIP_PX", 1000)  # strips of 10 rows
    rng = np.random.default_rng(1)
    arr = rng.normal(size=(2, 53, 100)).astype(np.float32)
    store = DiskStack(arr.shape)
    store[:] = arr
    np.testing.assert_array_equal(relief.sampled(arr[1], (53, 100), step), arr[1, ::step, ::step])
    view = strips.MapView(store, 1)
    np.testing.assert_array_equal(relief.sampled(view, (53, 100), step), arr[1, ::step, ::step])


def test_ratio_flags_stratification_that_the_noise_maps_miss():
    dem = _dem()
    z = (dem - dem.min()) / 1000.0
    rng = np.random.default_rng(2)
    noise = rng.normal(0.0, 2.0, size=(16, *dem.shape)) + rng.normal(0.0, 1.0, (16, 1, 1)) * z
    clean = rng.normal(0.0, 2.0, dem.shape) + rng.normal() * z
    ratio, mm = relief.relief_ratio(clean, noise, dem)
    assert ratio < relief.RELIEF_RATIO and relief.relief_warning(ratio, mm) is None
    stratified = clean + 8.0 * z * z  # 8 mm/km^2 left in the cumulative, not in the noise maps
    ratio, mm = relief.relief_ratio(stratified, noise, dem)
    assert ratio > 4 * relief.RELIEF_RATIO and mm > 2 * relief.RELIEF_MIN_MM
    assert relief.relief_warning(ratio, mm).startswith("the cumulative follows the elevation")
    flat = np.full(dem.shape, 250.0)
    assert np.isnan(relief.relief_ratio(stratified, noise, flat)[0])


def _run(split: str, index: int) -> tuple[list[str], dict]:
    """``run``'s product on a Benchmark v2 scene: the out-of-distribution warnings raised
    and the result's attributes."""
    spec = next(s for s in design(84, 0, split) if s.index == index)
    _, ds = simulate(spec, split, 192)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = denoise(ds, load_model("default"), RunOptions(progress=False))
    texts = [str(w.message) for w in caught if issubclass(w.category, OutOfDistributionWarning)]
    return texts, out.attrs


def test_run_warns_on_a_false_patch_of_stratification_and_not_on_a_calm_scene():
    """Benchmark v2, no deformation: shifted scene 56 (9 dates, 6 km of relief; the gate
    passes 185 mm of stratification) is flagged; split ``in`` scene 0 (nothing passes) is not."""
    texts, attrs = _run("shifted", 56)
    assert any(t.startswith("[relief] the cumulative follows the elevation") for t in texts)
    assert attrs[relief.RELIEF_RATIO_ATTR] > relief.RELIEF_RATIO
    # listed in qc.json too, beside the scene's unwrapping error (removed since session 41)
    assert [w.code for w in qc_findings_of(attrs)] == ["unwrapping_removed", "relief"]
    texts, attrs = _run("in", 0)
    assert not any(t.startswith("[relief]") for t in texts)
    assert attrs[relief.RELIEF_RATIO_ATTR] < relief.RELIEF_RATIO


def qc_findings_of(attrs: dict) -> list:
    import xarray as xr

    from insar_denoise.trust.stage import qc_findings

    return qc_findings(xr.Dataset(attrs=attrs))


def test_flagged_scene_without_deformation_gets_no_false_patch():
    """Benchmark v2 shifted scene 2 (no deformation, 36 dates, relief ratio 3.4): the stack
    is corrected for its date-to-date stratification and the noise maps gain the uncertainty
    of the trend that stays (``stratification``), so nothing passes the gate (session 8: a
    38 mm patch, p99 23 mm); the relief warning still says why."""
    spec = next(s for s in design(84, 0, "shifted") if s.index == 2)
    batch, ds = simulate(spec, "shifted", 192)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = denoise(ds, load_model("default"), RunOptions(progress=False))
    texts = [str(w.message) for w in caught if str(w.message).startswith("[relief]")]
    assert texts and "was removed before the network" in texts[0]  # 36 dates: corrected
    assert out.attrs["insar_denoise_stratification"].startswith("{")
    cum = out["cumulative_deformation"].values
    ok = batch.valid[0].numpy() & np.isfinite(cum)
    assert np.abs(cum[ok] - np.median(cum[ok])).max() < 1.0
