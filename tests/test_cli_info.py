"""``insar-denoise info`` through click's CliRunner, and ``stack_info``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from conftest import GRIDS, write_raster

from insar_denoise.cli.main import main
from insar_denoise.io import open_stack, stack_info

DATA = Path(__file__).parent / "data"


def _invoke(*args: str):
    return CliRunner().invoke(main, ["info", *map(str, args)])


def test_info_text(make_stack) -> None:
    stack = make_stack("utm")
    result = _invoke(*stack.paths)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "dates:          4 (2021-03-05 .. 2021-04-10)" in out
    assert "grid:           24 rows x 32 columns" in out
    assert "crs:            EPSG:32616" in out
    assert "pixel spacing:  90 x 90 (CRS units)" in out
    assert "dem:            none given" in out
    assert "  2021-03-05  0.0078" in out  # 6 of 768 pixels are NaN


def test_info_json_matches_the_stack(make_stack, real_dem: Path) -> None:
    stack = make_stack("geographic")
    result = _invoke(str(stack.paths[0].parent / "S1_*.tif"), "--dem", real_dem, "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["dates"] == ["2021-03-05", "2021-03-17", "2021-03-29", "2021-04-10"]
    assert info["shape"] == {"time": 4, "y": 24, "x": 32}
    assert info["crs"] == "EPSG:4326" and info["crs_is_geographic"] is True
    np.testing.assert_allclose(info["bounds"], [-84.30, 36.626, -84.268, 36.65])
    np.testing.assert_allclose(info["pixel_spacing"], [0.001, 0.001])
    # spherical-earth estimates of 0.001 degree at 36.638 N, to 0.5 %
    lat = math.radians(36.638)
    np.testing.assert_allclose(
        info["pixel_spacing_m"], [111.320 * math.cos(lat), 110.950], rtol=5e-3
    )
    expected_nan = np.isnan(stack.data).mean(axis=(1, 2))
    np.testing.assert_allclose(list(info["nan_fraction"].values()), expected_nan, atol=1e-4)
    assert info["memory_bytes"] == 4 * 24 * 32 * 4 + 24 * 32 * 4
    assert info["dem"]["covers_stack"] is True
    assert 200 < info["dem"]["min_m"] < info["dem"]["max_m"] < 1200
    assert info["units"] == "mm" and info["input_units"] == "mm"


def test_info_units_and_wavelength(make_stack) -> None:
    stack = make_stack(unit=None)
    result = _invoke(*stack.paths, "--units", "rad", "--wavelength", "236.0571", "--json")
    info = json.loads(result.output)
    assert (info["input_units"], info["input_units_from"]) == ("rad", "override")


def test_stack_info_library_function(make_stack) -> None:
    ds = open_stack(make_stack("utm").paths)
    info = stack_info(ds)
    assert info["pixel_spacing_m"] == [90.0, 90.0]
    assert info["n_dates"] == 4 and info["dem"] is None
    json.dumps(info)


# ---- every input error: exit code 2, one line naming the file, nothing written ----------


def _crs_mismatch(stack, tmp_path):
    crs, transform = GRIDS["utm"]
    write_raster(stack.paths[1], stack.data[1], "EPSG:32617", transform)
    return [*stack.paths], stack.paths[1].name


def _shape_mismatch(stack, tmp_path):
    crs, transform = GRIDS["utm"]
    write_raster(stack.paths[2], stack.data[2][:, :-3], crs, transform)
    return [*stack.paths], stack.paths[2].name


def _transform_mismatch(stack, tmp_path):
    crs, transform = GRIDS["utm"]
    write_raster(stack.paths[2], stack.data[2], crs, transform @ rasterio.Affine.translation(0, 1))
    return [*stack.paths], stack.paths[2].name


def _duplicate_date(stack, tmp_path):
    copy = stack.paths[0].with_name("copy_" + stack.paths[0].name)
    copy.write_bytes(stack.paths[0].read_bytes())
    return [*stack.paths, copy], copy.name


def _no_date(stack, tmp_path):
    bad = stack.paths[0].with_name("unknown.tif")
    stack.paths[0].rename(bad)
    return [bad, *stack.paths[1:]], "unknown.tif"


def _corrupt(stack, tmp_path):
    stack.paths[3].write_bytes(b"II*\x00garbage")
    return [*stack.paths], stack.paths[3].name


def _empty_glob(stack, tmp_path):
    return [str(tmp_path / "none_*.tif")], "none_*.tif"


def _all_nan(stack, tmp_path):
    crs, transform = GRIDS["utm"]
    for path in stack.paths:
        write_raster(path, np.full(stack.data.shape[1:], np.nan, "float32"), crs, transform)
    return [*stack.paths], stack.paths[0].name


def _dem_not_covering(stack, tmp_path):
    return [*stack.paths, "--dem", Path(__file__).parent / "data" / "dem_salish_sea.tif"], (
        "dem_salish_sea.tif"
    )


def _dem_without_crs(stack, tmp_path):
    dem = write_raster(
        tmp_path / "flat.tif", np.zeros((9, 9), "float32"), None, rasterio.Affine(1, 0, 0, 0, -1, 9)
    )
    return [*stack.paths, "--dem", dem], "flat.tif"


def _unknown_units(stack, tmp_path):
    crs, transform = GRIDS["utm"]
    for path, band in zip(stack.paths, stack.data, strict=True):
        write_raster(path, band, crs, transform, unit="ft")
    return [*stack.paths], stack.paths[0].name


@pytest.mark.parametrize(
    "case",
    [
        _crs_mismatch,
        _shape_mismatch,
        _transform_mismatch,
        _duplicate_date,
        _no_date,
        _corrupt,
        _empty_glob,
        _all_nan,
        _dem_not_covering,
        _dem_without_crs,
        _unknown_units,
    ],
)
def test_info_errors_exit_2_with_one_line(make_stack, tmp_path: Path, case) -> None:
    stack = make_stack("utm")
    args, name = case(stack, tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = CliRunner().invoke(main, ["info", *map(str, args)])
    assert result.exit_code == 2, result.output
    lines = [x for x in result.output.strip().splitlines() if "insar-denoise: warning: " not in x]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("insar-denoise: error: ")
    assert name in lines[0]
    assert sorted(tmp_path.rglob("*")) == before


def test_info_recognises_an_interferogram_network():
    ifgs = sorted(str(p) for p in (DATA / "real_envisat_nsw" / "interferograms").glob("*.tif"))
    res = CliRunner().invoke(main, ["info", *ifgs, "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert info["layout"] == "interferograms"
    assert info["n_dates"] == 13 and info["dates"][0].startswith("2006-06-19")
    assert info["input_units"] == "rad"
