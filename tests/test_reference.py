"""Tests of insar_denoise.reference and of the reference options of `insar-denoise run`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.warp import transform as warp_transform

from insar_denoise.cli.main import main
from insar_denoise.errors import ConfigError
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.testing import synthetic_dataset, tiny_model
from insar_denoise.io.scene import write_scene
from insar_denoise.reference import (
    Reference,
    apply_reference,
    lalo_to_yx,
    reference_from_attrs,
    resolve_reference,
)
from insar_denoise.synth import SimConfig, simulate_scene


def _ds(crs: str = "EPSG:32611", chunk: bool = False):
    ds = synthetic_dataset(n_dates=6, shape=(20, 24), seed=1, crs=crs)
    disp = ds["displacement"].values.copy()
    disp[2, 0, 0] = np.nan
    ds = ds.assign(displacement=(("time", "y", "x"), disp))
    return ds.chunk({"y": 10, "x": 12}) if chunk else ds


@pytest.mark.parametrize("chunk", [False, True])
def test_pixel_reference_subtracts_its_series(chunk):
    ds = _ds(chunk=chunk)
    ref = resolve_reference(ds, ref_yx=(12, 7))
    out = apply_reference(ds, ref)
    disp = ds["displacement"].values
    np.testing.assert_allclose(
        out["displacement"].values, disp - disp[:, 12:13, 7:8], rtol=1e-6, atol=1e-6
    )
    assert np.all(out["displacement"].values[:, 12, 7] == 0)
    np.testing.assert_array_equal(out["dem"].values, ds["dem"].values)  # not referenced
    assert out.attrs["insar_denoise_reference"] == "yx=12,7"
    assert reference_from_attrs(out.attrs) == Reference("yx", (12, 13), (7, 8), "attrs")


def test_area_and_default_median():
    ds = _ds()
    disp = ds["displacement"].values
    out = apply_reference(ds, resolve_reference(ds, ref_area=(0, 5, 0, 6)))
    expected = disp - np.nanmedian(disp[:, 0:5, 0:6], axis=(1, 2))[:, None, None]
    np.testing.assert_allclose(out["displacement"].values, expected, rtol=1e-6, atol=1e-6)
    assert out.attrs["insar_denoise_reference"] == "area=rows 0:5, cols 0:6"
    default = resolve_reference(ds)
    assert default.kind == "median"
    med = apply_reference(ds, default)["displacement"].values
    np.testing.assert_allclose(np.nanmedian(med, axis=(1, 2)), 0.0, atol=1e-5)


def test_result_reference_keeps_series_plus_noise():
    ds = _ds()
    res = denoise_dataset(ds, tiny_model(), progress=False)
    for ref in (resolve_reference(ds, ref_yx=(3, 4)), resolve_reference(ds)):
        out = apply_reference(res, ref)
        total = (out["deformation"] + out["noise"]).values
        base = (res["deformation"] + res["noise"]).values
        offset = total - base  # one constant per date
        np.testing.assert_allclose(
            offset, np.nanmedian(offset, axis=(1, 2), keepdims=True) + 0 * offset, atol=1e-4
        )
    out = apply_reference(res, resolve_reference(ds, ref_yx=(3, 4)))
    assert out["cumulative_deformation"].values[3, 4] == 0 and np.all(
        out["deformation"].values[:, 3, 4] == 0
    )


@pytest.mark.parametrize("crs", ["EPSG:32611", "EPSG:4326"])
def test_lalo_to_pixel(crs):
    ds = _ds(crs=crs)
    if crs == "EPSG:4326":
        ds = ds.assign_coords(y=-34.17 - 0.001 * np.arange(20), x=150.9 + 0.001 * np.arange(24))
        ds = ds.rio.write_crs(crs)
    x, y = float(ds.x[9]), float(ds.y[13])  # the centre of pixel (13, 9)
    lon, lat = (
        (x, y) if crs == "EPSG:4326" else [v[0] for v in warp_transform(crs, "EPSG:4326", [x], [y])]
    )
    assert lalo_to_yx(ds, lat, lon) == (13, 9)
    ref = resolve_reference(ds, ref_lalo=(lat, lon))
    assert ref.yx == (13, 9) and ref.describe().startswith(f"lalo={lat:.6f}")


def test_bad_references_name_the_option():
    ds = _ds()
    with pytest.raises(
        ConfigError, match=r"^--ref-yx 30 2: pixel \(30, 2\) is outside the 20 x 24 grid"
    ):
        resolve_reference(ds, ref_yx=(30, 2))
    with pytest.raises(ConfigError, match=r"^--ref-yx 0 0: pixel \(0, 0\) is NaN on 1 of 6 dates"):
        resolve_reference(ds, ref_yx=(0, 0))
    with pytest.raises(ConfigError, match="^--ref-area 5 3 0 4: box"):
        resolve_reference(ds, ref_area=(5, 3, 0, 4))
    with pytest.raises(ConfigError, match=r"^--ref-lalo 10 20: pixel"):
        resolve_reference(ds, ref_lalo=(10.0, 20.0))
    with pytest.raises(ConfigError, match="at most one"):
        resolve_reference(ds, ref_yx=(1, 1), ref_area=(0, 2, 0, 2))


def test_reference_of_mintpy_and_licsbas_inputs():
    ds = _ds()
    mint = ds.assign_attrs(mintpy_metadata=json.dumps({"REF_Y": "4", "REF_X": "11"}))
    ref = resolve_reference(mint)
    assert ref.yx == (4, 11) and ref.describe() == "yx=4,11 (from MintPy REF_Y/REF_X)"
    assert resolve_reference(mint, ref_yx=(1, 2)).yx == (1, 2)  # the option wins
    lics = ds.assign_attrs(licsbas_metadata=json.dumps({"refarea": "3:8/2:6"}))
    ref = resolve_reference(lics)
    assert (ref.kind, ref.rows, ref.cols) == ("area", (2, 6), (3, 8))
    bad = ds.assign_attrs(mintpy_metadata=json.dumps({"REF_Y": "0", "REF_X": "0"}))  # NaN there
    assert resolve_reference(bad).kind == "median"


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scene")
    config = SimConfig(size=32, n_dates=10, turbulence_std_mm=(2.0, 4.0), holes_prob=0.0)
    write_scene(simulate_scene(config, 3, source="okada", amplitude_mm=10.0), out)
    return out


def _run(scene_dir: Path, out: Path, *extra: str):
    stack = sorted(str(p) for p in scene_dir.glob("disp_*.tif"))
    args = ["run", *stack, "--dem", str(scene_dir / "dem.tif"), "-o", str(out), *extra]
    return CliRunner().invoke(main, args)


def test_cli_reference_tag_summary_and_errors(scene_dir: Path, tmp_path: Path):
    out = tmp_path / "def.tif"
    res = _run(
        scene_dir,
        out,
        "--method",
        "stack",
        "--ref-yx",
        "5",
        "9",
        "--quicklook",
        str(tmp_path / "q.png"),
    )
    assert res.exit_code == 0, res.output
    assert "reference: yx=5,9" in res.output
    assert "raw cumulative p1..p99:" in res.output and "output cumulative p1..p99:" in res.output
    with rasterio.open(out) as src:
        assert src.tags()["REFERENCE"] == "yx=5,9"
        assert src.read(1)[5, 9] == 0.0
    bad = _run(scene_dir, tmp_path / "x.tif", "--ref-yx", "99", "0")
    assert bad.exit_code == 2
    assert bad.output.strip().splitlines()[-1] == (
        "insar-denoise: error: --ref-yx 99 0: pixel (99, 0) is outside the 32 x 32 grid"
    )
    assert not (tmp_path / "x.tif").exists()
