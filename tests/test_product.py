"""``product.denoise``: the one in-memory product behind run, batch, demo and the accessor;
``RunOptions``; the model loaded and hashed once per run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import insar_denoise.accessor  # noqa: F401
from insar_denoise.errors import ConfigError, InputError
from insar_denoise.io.layouts import load_inputs
from insar_denoise.models import build_untrained, export_model, registry
from insar_denoise.options import METHODS, RunOptions
from insar_denoise.pipeline import run_pipeline

SHAPE = (40, 36)


def write_tif(path: Path, data: np.ndarray) -> None:
    profile = dict(driver="GTiff", count=1, height=SHAPE[0], width=SHAPE[1], dtype="float32")
    transform = from_origin(745000.0, 4055000.0, 90.0, 90.0)
    with rasterio.open(path, "w", crs="EPSG:32616", transform=transform, **profile) as dst:
        dst.write(data.astype("float32"), 1)
        dst.set_band_unit(1, "mm")


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> tuple[list[str], Path, Path]:
    """14 dates, 12 days apart (mm), a DEM, and a small untrained window model file (with a
    small default overlap)."""
    root = tmp_path_factory.mktemp("frame")
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    dem = 300.0 + 4.0 * yy + rng.normal(0, 20, SHAPE)
    write_tif(root / "dem.tif", dem)
    bowl = -np.exp(-((yy - 20) ** 2 + (xx - 18) ** 2) / 60.0)
    for i in range(14):
        day = np.datetime64("2021-03-05") + np.timedelta64(12 * i, "D")
        disp = 0.8 * i * bowl + 0.004 * (dem - dem.mean()) * rng.normal() + rng.normal(0, 1, SHAPE)
        write_tif(root / f"S1_{str(day).replace('-', '')}.tif", disp)
    module = build_untrained(window=5, channels=(4, 8, 8, 8), seed=2)
    # 8 px of overlap, not the receptive field's 88: 56 px tiles, not 216 (these tests compare
    # two paths of one run, and each of its 16 test-time copies runs the model)
    meta = {**module.insar_metadata, "default_overlap": 8}
    model = export_model(module, meta, root / "tiny.pt")
    return sorted(str(p) for p in root.glob("S1_*.tif")), root / "dem.tif", model


def bands(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.mark.parametrize("model", ["default", "tiny"])
def test_accessor_output_is_run_output_bit_for_bit(frame, tmp_path, model):
    """The accessor with ``reference="auto"`` and ``run`` give the same arrays (uncertainty on;
    detection too for the whole-stack default model)."""
    inputs, dem, tiny = frame
    model = tiny if model == "tiny" else "default"
    stack = registry.load_model(model).kind == "stack"
    out = {k: tmp_path / f"{k}.tif" for k in ("cum", "series", "noise", "sigma", "det")}
    run_pipeline(
        inputs,
        out["cum"],
        dem=dem,
        series=out["series"],
        noise=out["noise"],
        uncertainty=out["sigma"],
        detection=out["det"] if stack else None,
        model=model,
        device="cpu",
        progress=False,
    )
    ds, _ = load_inputs(inputs, dem=dem)
    got = ds.insar.denoise(
        model=model,
        uncertainty=True,
        detection=stack,
        reference="auto",
        device="cpu",
        progress=False,
    )
    assert got.attrs["insar_denoise_reference"] == "median of valid area"
    np.testing.assert_array_equal(bands(out["cum"])[0], got["cumulative_deformation"].values)
    np.testing.assert_array_equal(bands(out["series"]), got["deformation"].values)
    np.testing.assert_array_equal(bands(out["noise"]), got["noise"].values)
    sigma = np.stack([got["uncertainty"].values, got["uncertainty_95"].values])
    np.testing.assert_array_equal(bands(out["sigma"]), sigma.astype("float32"))
    if stack:
        det = got["detection"].values.astype(bands(out["det"]).dtype)
        np.testing.assert_array_equal(bands(out["det"])[0], det)


def test_a_run_hashes_the_weights_once(frame, tmp_path, monkeypatch):
    """``run --uncertainty --report`` loads and hashes its model once (it was three times)."""
    inputs, dem, tiny = frame
    calls = []
    real = registry.weights_sha256
    monkeypatch.setattr(registry, "weights_sha256", lambda m: calls.append(1) or real(m))
    run_pipeline(
        inputs,
        tmp_path / "cum.tif",
        dem=dem,
        uncertainty=tmp_path / "sigma.tif",
        report=tmp_path / "report",
        model=str(tiny),
        device="cpu",
        progress=False,
    )
    assert len(calls) == 1


def test_options_refuse_unknown_names_and_bad_combinations(frame):
    inputs, dem, _ = frame
    with pytest.raises(ConfigError, match="run_pipeline: unknown option 'strides'"):
        run_pipeline(inputs, "x.tif", dem=dem, strides=2)
    with pytest.raises(ConfigError, match="--uncertainty needs --method model"):
        run_pipeline(inputs, "x.tif", dem=dem, uncertainty="s.tif", method="elevation")
    ds, _ = load_inputs(inputs, dem=dem)
    with pytest.raises(InputError, match="unknown option 'tiles'"):
        ds.insar.denoise(tiles=3)


def test_option_lists_match_the_engine():
    from insar_denoise.inference import METHODS as ENGINE_METHODS
    from insar_denoise.inference.engine import denoise_dataset
    from insar_denoise.options import ENGINE_OPTIONS

    assert set(METHODS) == set(ENGINE_METHODS)
    params = set(denoise_dataset.__code__.co_varnames[: denoise_dataset.__code__.co_argcount])
    params |= set(denoise_dataset.__kwdefaults__)
    assert set(ENGINE_OPTIONS) <= params
    assert RunOptions().with_(stride=3).engine_kwargs()["stride"] == 3
