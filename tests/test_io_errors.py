"""Every bad input to insar_denoise.io raises a specific error: one line, naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import GRIDS, multiband_file, write_raster

from insar_denoise.errors import (
    DateError,
    DemError,
    GridMismatchError,
    InputError,
    UnitsError,
)
from insar_denoise.io import open_stack


def _grid_error_case(tmp_path: Path, stack, kind: str) -> Path:
    """Replace the last file of ``stack`` by one on another grid."""
    crs, transform = GRIDS["utm"]
    data = stack.data[-1]
    if kind == "crs":
        crs = "EPSG:32617"
    elif kind == "shape":
        data = data[:-1]
    else:
        transform = transform @ rasterio.Affine.translation(0.5, 0)
    return write_raster(stack.paths[-1], data, crs, transform, unit="mm")


def _assert_one_line(exc: pytest.ExceptionInfo, name: str) -> None:
    message = str(exc.value)
    assert "\n" not in message
    assert name in message


@pytest.mark.parametrize("kind", ["crs", "shape", "transform"])
def test_grid_mismatch(make_stack, tmp_path: Path, kind: str) -> None:
    stack = make_stack("utm")
    bad = _grid_error_case(tmp_path, stack, kind)
    with pytest.raises(GridMismatchError, match=kind if kind != "crs" else "CRS") as exc:
        open_stack(stack.paths)
    _assert_one_line(exc, bad.name)


def test_duplicate_dates(make_stack) -> None:
    stack = make_stack()
    copy = stack.paths[0].with_name(f"other_{stack.paths[0].name}")
    copy.write_bytes(stack.paths[0].read_bytes())
    with pytest.raises(DateError, match="duplicate date") as exc:
        open_stack([*stack.paths, copy])
    _assert_one_line(exc, copy.name)


def test_duplicate_band_dates(tmp_path: Path) -> None:
    path, _ = multiband_file(tmp_path, descriptions=["2020-01-01", "2020-01-02", "2020-01-01"])
    with pytest.raises(DateError, match="band 3"):
        open_stack(path)


def test_file_without_date(make_stack) -> None:
    stack = make_stack()
    bad = stack.paths[0].with_name("nodate.tif")
    stack.paths[0].rename(bad)
    with pytest.raises(DateError, match="no date") as exc:
        open_stack([bad, *stack.paths[1:]])
    _assert_one_line(exc, "nodate.tif")


def test_multiband_without_dates(tmp_path: Path) -> None:
    path, _ = multiband_file(tmp_path, descriptions=["vv", "vh", "x"])
    with pytest.raises(DateError, match="band 1") as exc:
        open_stack(path)
    _assert_one_line(exc, "cube.tif")


@pytest.mark.parametrize("kind", ["text", "truncated"])
def test_corrupt_or_non_raster_file(make_stack, kind: str) -> None:
    stack = make_stack(shape=(300, 300))
    bad = stack.paths[1]
    if kind == "text":
        bad.write_text("this is not a raster\n")
    else:
        bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    with pytest.raises(InputError, match="not a readable raster") as exc:
        open_stack(stack.paths)
    _assert_one_line(exc, bad.name)


def test_missing_file_and_empty_glob(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist") as exc:
        open_stack(tmp_path / "S1_20200101.tif")
    _assert_one_line(exc, "S1_20200101.tif")
    with pytest.raises(InputError, match="no file matches") as exc:
        open_stack(str(tmp_path / "*.tif"))
    _assert_one_line(exc, "*.tif")


def test_all_nan_stack(tmp_path: Path) -> None:
    crs, transform = GRIDS["utm"]
    paths = [
        write_raster(
            tmp_path / f"d_2020010{i}.tif", np.full((8, 8), np.nan, "float32"), crs, transform
        )
        for i in (1, 2)
    ]
    with pytest.raises(InputError, match="every pixel") as exc:
        open_stack(paths)
    _assert_one_line(exc, "d_20200101.tif")


def test_dem_that_misses_the_stack(make_stack) -> None:
    stack = make_stack("utm")
    salish = Path(__file__).parent / "data" / "dem_salish_sea.tif"
    with pytest.raises(DemError, match="does not cover") as exc:
        open_stack(stack.paths, dem=salish)
    _assert_one_line(exc, "dem_salish_sea.tif")


def test_dem_partly_covering_the_stack(make_stack, tmp_path: Path) -> None:
    stack = make_stack("geographic")
    transform = rasterio.transform.from_origin(-84.29, 36.66, 0.001, 0.001)
    path = write_raster(tmp_path / "half.tif", np.ones((40, 40), "float32"), "EPSG:4326", transform)
    with pytest.raises(DemError, match="half.tif: DEM does not cover"):
        open_stack(stack.paths, dem=path)


def test_dem_without_crs(make_stack, tmp_path: Path) -> None:
    stack = make_stack()
    path = write_raster(
        tmp_path / "nocrs.tif", np.ones((20, 20), "float32"), None, rasterio.Affine.identity()
    )
    with pytest.raises(DemError, match="no CRS") as exc:
        open_stack(stack.paths, dem=path)
    _assert_one_line(exc, "nocrs.tif")


def test_unknown_units(make_stack) -> None:
    stack = make_stack(unit="furlong")
    with pytest.raises(UnitsError, match="furlong") as exc:
        open_stack(stack.paths)
    _assert_one_line(exc, stack.paths[0].name)
    with pytest.raises(UnitsError, match="'inch'"):
        open_stack(stack.paths, units="inch")


def test_files_that_disagree_on_units(make_stack) -> None:
    stack = make_stack(unit="mm")
    crs, transform = GRIDS["utm"]
    write_raster(stack.paths[2], stack.data[2], crs, transform, unit="cm")
    with pytest.raises(UnitsError, match="disagree"):
        open_stack(stack.paths)
    ds = open_stack(stack.paths, units="mm")
    np.testing.assert_array_equal(ds["displacement"].values, stack.data)
