"""Readers of insar_denoise.io: GeoTIFF lists, multi-band GeoTIFF, NetCDF/Zarr, DEM, units."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import dask.array
import numpy as np
import pytest
import rasterio
import xarray as xr
from conftest import GRIDS, multiband_file, random_stack, write_raster
from dask.callbacks import Callback
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Transformer

from insar_denoise.errors import (
    InputError,
)
from insar_denoise.io import SENTINEL1_WAVELENGTH_MM, open_dem, open_stack
from insar_denoise.io.dates import dates_in_name, parse_date_text
from insar_denoise.io.units import scale_to_mm


def test_single_band_files_give_the_canonical_dataset(make_stack, grid: str) -> None:
    stack = make_stack(grid)
    ds = open_stack(stack.paths)
    disp = ds["displacement"]
    assert disp.dims == ("time", "y", "x")
    assert disp.dtype == np.float32
    assert ds["time"].dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(ds["time"].values, stack.times)
    np.testing.assert_array_equal(disp.values, stack.data)
    assert ds.rio.crs == rasterio.crs.CRS.from_string(stack.crs)
    assert ds.rio.transform().almost_equals(stack.transform)
    assert "spatial_ref" in ds.coords
    assert ds.attrs["units"] == "mm" and disp.attrs["units"] == "mm"
    assert "towards the satellite" in ds.attrs["sign_convention"]
    assert ds.attrs["source_files"] == [str(p) for p in stack.paths]


def test_reading_is_lazy_and_chunked(make_stack) -> None:
    stack = make_stack(shape=(40, 48))
    ds = open_stack(stack.paths, chunks={"y": 16, "x": 32})
    assert isinstance(ds["displacement"].data, dask.array.Array)
    assert ds["displacement"].chunks == ((1, 1, 1, 1), (16, 16, 8), (32, 16))
    ds = open_stack(stack.paths, chunks={"time": 2, "y": 20, "x": 24})
    assert ds["displacement"].chunks == ((2, 2), (20, 20), (24, 24))


class _CountTasks(Callback):
    """Counts the dask tasks run while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def _posttask(self, key, result, dsk, state, worker_id) -> None:
        self.count += 1


def test_opening_reads_only_the_first_date(make_stack) -> None:
    stack = make_stack(shape=(40, 48))
    with _CountTasks() as opening:
        ds = open_stack(stack.paths, chunks=8)
    with _CountTasks() as everything:
        ds["displacement"].sum().compute()
    # the all-NaN check stops after date 1 (30 of the 120 chunks)
    assert 0 < opening.count < everything.count / 3


def test_glob_and_unsorted_list_are_sorted_by_date(make_stack) -> None:
    stack = make_stack()
    by_glob = open_stack(str(stack.paths[0].parent / "S1_*.tif"))
    shuffled = open_stack([stack.paths[2], stack.paths[0], stack.paths[3], stack.paths[1]])
    for ds in (by_glob, shuffled):
        np.testing.assert_array_equal(ds["time"].values, stack.times)
        np.testing.assert_array_equal(ds["displacement"].values, stack.data)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("S1_{:%Y%m%d}.tif", "2021-03-05T00:00:00"),
        ("disp_{:%Y-%m-%d}_los.tif", "2021-03-05T00:00:00"),
        ("S1A_IW_{:%Y%m%dT%H%M%S}_v1.tif", "2021-03-05T00:00:00"),
    ],
)
def test_date_forms_in_file_names(make_stack, name: str, expected: str) -> None:
    stack = make_stack(name=name, n_dates=2)
    ds = open_stack(stack.paths)
    assert str(ds["time"].values[0])[:19] == expected


def test_date_from_tiff_datetime_tag(tmp_path: Path) -> None:
    crs, transform = GRIDS["utm"]
    data = random_stack(2, (8, 8))
    paths = [
        write_raster(
            tmp_path / f"scene_{letter}.tif",
            band,
            crs,
            transform,
            tags={"TIFFTAG_DATETIME": when},
        )
        for letter, band, when in zip(
            "ab", data, ["2022:07:09 05:43:10", "2022:06:27 05:43:10"], strict=True
        )
    ]
    ds = open_stack(paths)
    assert [str(t)[:19] for t in ds["time"].values] == [
        "2022-06-27T05:43:10",
        "2022-07-09T05:43:10",
    ]
    np.testing.assert_array_equal(ds["displacement"].values, data[::-1])


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2099, 12, 31)))
def test_date_parsing_round_trips_every_form(when: datetime) -> None:
    when = when.replace(microsecond=0)
    day = when.replace(hour=0, minute=0, second=0)
    assert dates_in_name(f"S1_{when:%Y%m%d}_x.tif") == [day]
    assert dates_in_name(f"a{when:%Y-%m-%d}.tif") == [day]
    assert dates_in_name(f"S1A_{when:%Y%m%dT%H%M%S}.tif") == [when]
    assert parse_date_text(f"{when:%Y:%m:%d %H:%M:%S}") == when
    assert parse_date_text(when.isoformat()) == when


def test_names_without_a_real_date() -> None:
    assert dates_in_name("orbit_123456789_frame.tif") == []
    assert dates_in_name("burst_20211345.tif") == []  # month 13
    assert parse_date_text("band 1") is None


def test_multiband_with_date_descriptions_is_sorted(tmp_path: Path) -> None:
    path, data = multiband_file(tmp_path, descriptions=["2020-02-01", "2020-01-01", "20200301"])
    ds = open_stack(path)
    assert [str(t)[:10] for t in ds["time"].values] == ["2020-01-01", "2020-02-01", "2020-03-01"]
    np.testing.assert_array_equal(ds["displacement"].values, data[[1, 0, 2]])
    assert ds.attrs["source_files"] == [str(path)]


def test_multiband_with_date_band_tags(tmp_path: Path) -> None:
    tags = [{"DATE": d} for d in ("2020-01-01", "2020-01-13", "2020-01-25")]
    path, data = multiband_file(tmp_path, band_tags=tags)
    ds = open_stack(path)
    np.testing.assert_array_equal(ds["displacement"].values, data)


def _netcdf_dataset(units: str | None = "mm") -> tuple[xr.Dataset, np.ndarray]:
    """A CF stack on lat/lon, latitude ascending, without a grid mapping."""
    data = random_stack(3, (10, 12))
    lat = 36.60 + 0.001 * (np.arange(10) + 0.5)
    lon = -84.30 + 0.001 * (np.arange(12) + 0.5)
    times = np.array(["2020-01-01", "2020-01-13", "2020-01-25"], dtype="datetime64[ns]")
    var = xr.Variable(("time", "lat", "lon"), data[:, ::-1, :], {"units": units} if units else {})
    ds = xr.Dataset(
        {"los": var, "coherence": (("lat", "lon"), np.ones((10, 12), "float32"))},
        coords={"time": times, "lat": lat, "lon": lon},
    )
    return ds, data


def test_netcdf_lat_lon_is_flipped_north_up_with_wgs84(tmp_path: Path) -> None:
    source, data = _netcdf_dataset(units="cm")
    source.to_netcdf(tmp_path / "ts.nc")
    ds = open_stack(tmp_path / "ts.nc")
    assert ds.rio.crs.to_epsg() == 4326
    assert ds["y"].values[0] > ds["y"].values[-1]
    np.testing.assert_allclose(ds["displacement"].values, 10 * data, rtol=1e-6)
    assert isinstance(ds["displacement"].data, dask.array.Array)
    assert ds.attrs["input_units"] == "cm"


def test_netcdf_variable_selection(tmp_path: Path) -> None:
    source, data = _netcdf_dataset()
    source["other"] = source["los"] * 2
    source.to_netcdf(tmp_path / "two.nc")
    with pytest.raises(InputError, match="two.nc.*pass variable="):
        open_stack(tmp_path / "two.nc")
    ds = open_stack(tmp_path / "two.nc", variable="other")
    np.testing.assert_allclose(ds["displacement"].values, 2 * data)
    with pytest.raises(InputError, match="no variable 'nope'"):
        open_stack(tmp_path / "two.nc", variable="nope")


def test_zarr_store_with_valid_mask(tmp_path: Path) -> None:
    source, data = _netcdf_dataset()
    source["valid"] = (("lat", "lon"), np.arange(120).reshape(10, 12) % 2 == 0)
    source.to_zarr(tmp_path / "ts.zarr", zarr_format=2, consolidated=True)
    ds = open_stack(tmp_path / "ts.zarr")
    np.testing.assert_array_equal(ds["displacement"].values, data)
    assert ds["valid"].dtype == bool
    np.testing.assert_array_equal(ds["valid"].values, source["valid"].values[::-1])


def test_in_memory_dataset_is_canonicalised(make_stack) -> None:
    stack = make_stack()
    ds = open_stack(stack.paths).load()
    ds["displacement"] = ds["displacement"] / 1000
    ds["displacement"].attrs["units"] = "m"
    again = open_stack(ds)
    np.testing.assert_allclose(again["displacement"].values, stack.data, rtol=1e-6)
    assert again.rio.crs == ds.rio.crs


@pytest.mark.parametrize(
    ("unit", "factor"),
    [
        ("mm", 1.0),
        ("cm", 10.0),
        ("m", 1000.0),
        ("metres", 1000.0),
        ("rad", -55.465763 / (4 * math.pi)),
        ("radians", -55.465763 / (4 * math.pi)),
    ],
)
def test_units_stated_by_the_file_convert_to_mm(make_stack, unit: str, factor: float) -> None:
    stack = make_stack(unit=unit)
    ds = open_stack(stack.paths)
    np.testing.assert_allclose(ds["displacement"].values, stack.data * factor, rtol=1e-6)
    assert ds["displacement"].dtype == np.float32


def test_radians_hand_computed() -> None:
    # pi rad of phase = a quarter wavelength of range increase = 13.8664 mm away from the satellite
    assert scale_to_mm("rad") * math.pi == pytest.approx(-13.86644075)
    assert scale_to_mm("rad", wavelength_mm=236.0571) * 2 * math.pi == pytest.approx(-118.02855)
    assert SENTINEL1_WAVELENGTH_MM == 55.465763


def test_units_override_beats_the_file(make_stack) -> None:
    stack = make_stack(unit="m")
    ds = open_stack(stack.paths, units="rad", wavelength_mm=236.0571)
    expected = -stack.data * 236.0571 / (4 * math.pi)
    np.testing.assert_allclose(ds["displacement"].values, expected, rtol=1e-6)
    assert (ds.attrs["input_units"], ds.attrs["input_units_from"]) == ("rad", "override")
    assert ds.attrs["wavelength_mm"] == 236.0571


def test_missing_units_default_to_mm(make_stack, caplog) -> None:
    stack = make_stack(unit=None)
    ds = open_stack(stack.paths)
    np.testing.assert_array_equal(ds["displacement"].values, stack.data)
    assert ds.attrs["input_units_from"] == "default"
    assert "assuming mm" in caplog.text


def test_dem_in_another_crs_is_resampled_bilinearly(make_stack, plane_dem) -> None:
    stack = make_stack("utm")
    path, plane = plane_dem
    ds = open_stack(stack.paths, dem=path)
    dem = ds["dem"]
    assert dem.dtype == np.float32 and dem.dims == ("y", "x")
    assert dem.attrs["units"] == "m"
    xx, yy = np.meshgrid(ds["x"].values, ds["y"].values)
    lon, lat = Transformer.from_crs(stack.crs, 4326, always_xy=True).transform(xx, yy)
    np.testing.assert_allclose(dem.values, plane(lon, lat), atol=0.5)


def test_dem_in_another_gdal_format(make_stack, tmp_path: Path) -> None:
    stack = make_stack("geographic")
    transform = rasterio.transform.from_origin(-84.32, 36.67, 0.002, 0.002)
    elevation = np.full((40, 40), 432.0, "float32")
    path = write_raster(tmp_path / "dem.img", elevation, "EPSG:4326", transform, driver="HFA")
    dem = open_stack(stack.paths, dem=path)["dem"].values
    np.testing.assert_allclose(dem, 432.0)


def test_real_dem_matches_both_grids(make_stack, grid: str, real_dem: Path) -> None:
    stack = make_stack(grid)
    ds = open_stack(stack.paths)
    dem = open_dem(real_dem, ds)
    with rasterio.open(real_dem) as src:
        source = src.read(1, masked=True)
    assert dem.shape == (ds.sizes["y"], ds.sizes["x"])
    assert np.isfinite(dem.values).all()
    assert source.min() - 1 <= float(dem.min()) < float(dem.max()) <= source.max() + 1
    assert float(dem.std()) > 5  # real relief, not a constant


def test_dem_nodata_becomes_nan(make_stack, tmp_path: Path) -> None:
    stack = make_stack("geographic")
    crs, _ = GRIDS["geographic"]
    elevation = np.full((60, 80), 250.0, "float32")
    elevation[:30, :] = -9999.0
    transform = rasterio.transform.from_origin(-84.31, 36.66, 0.001, 0.001)
    path = write_raster(tmp_path / "dem.tif", elevation, crs, transform, nodata=-9999.0)
    dem = open_stack(stack.paths, dem=path)["dem"].values
    assert np.isnan(dem[0]).all()
    assert np.allclose(dem[-1], 250.0)
