"""Writers of insar_denoise.io: GeoTIFF/COG, NetCDF, Zarr, atomic_output, write_output."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate

from insar_denoise import __version__
from insar_denoise.errors import OutputError
from insar_denoise.io import (
    atomic_output,
    open_stack,
    write_geotiff,
    write_netcdf,
    write_output,
)


@pytest.mark.parametrize("name", ["out.tif", "cog.tif", "out.nc", "out.zarr"])
def test_round_trip_keeps_values_crs_transform_and_dates(
    make_stack, grid: str, tmp_path: Path, name: str
) -> None:
    stack = make_stack(grid)
    ds = open_stack(stack.paths)
    out = write_output(ds, tmp_path / name, cog=name.startswith("cog"))
    back = open_stack(out)
    np.testing.assert_array_equal(back["displacement"].values, stack.data)
    np.testing.assert_array_equal(back["time"].values, stack.times)
    assert back.rio.crs == ds.rio.crs
    assert back.rio.transform().almost_equals(stack.transform)
    assert back.attrs["input_units"] == "mm" and back.attrs["input_units_from"] == "file"


@pytest.mark.parametrize("chunks", [{"time": 3, "y": 70, "x": 5}, None])
def test_geotiff_from_dask_chunks_or_memory(make_stack, tmp_path: Path, chunks) -> None:
    stack = make_stack(shape=(1100, 9))
    ds = open_stack(stack.paths, chunks=chunks)
    if chunks is None:
        ds = ds.load()
    path = write_geotiff(ds, tmp_path / "d.tif")
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), stack.data)


def test_geotiff_layout_and_tags(make_stack, tmp_path: Path) -> None:
    ds = open_stack(make_stack(shape=(300, 280)).paths)
    path = write_geotiff(ds, tmp_path / "d.tif", tags={"model_id": "default-v1"})
    with rasterio.open(path) as src:
        assert src.count == 4 and src.dtypes == ("float32",) * 4
        assert src.block_shapes == [(256, 256)] * 4
        assert src.compression.name.lower() == "deflate"
        assert np.isnan(src.nodata)
        assert src.descriptions == ("2021-03-05", "2021-03-17", "2021-03-29", "2021-04-10")
        assert src.units == ("mm",) * 4
        assert src.tags(2)["DATE"] == "2021-03-17"
        tags = src.tags()
    assert tags["INSAR_DENOISE_VERSION"] == __version__
    assert tags["MODEL_ID"] == "default-v1"
    assert tags["COMMAND_LINE"] == " ".join(sys.argv)
    assert tags["UNITS"] == "mm"
    assert not list(tmp_path.glob(".*"))  # no temporary left over


def test_cog_is_valid(make_stack, tmp_path: Path) -> None:
    ds = open_stack(make_stack(shape=(300, 280)).paths)
    path = write_geotiff(ds, tmp_path / "c.tif", cog=True)
    valid, errors, _ = cog_validate(path)
    assert valid, errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.tif", "stack"]


def test_two_dimensional_array_writes_one_band(make_stack, tmp_path: Path) -> None:
    ds = open_stack(make_stack("geographic").paths)
    cumulative = (ds["displacement"][-1] - ds["displacement"][0]).rename("cumulative")
    cumulative.attrs["units"] = "mm"
    path = write_geotiff(cumulative, tmp_path / "cum.tif")
    with rasterio.open(path) as src:
        assert src.count == 1 and src.descriptions == ("cumulative",)
        assert src.crs == ds.rio.crs
        np.testing.assert_array_equal(src.read(1), cumulative.values)


def test_dataset_with_several_variables_needs_a_choice(make_stack, tmp_path: Path) -> None:
    ds = open_stack(make_stack().paths)
    two = xr.Dataset({"a": ds["displacement"], "b": ds["displacement"]})
    with pytest.raises(OutputError, match="a, b"):
        write_geotiff(two, tmp_path / "x.tif")
    assert not list(tmp_path.glob("*.tif"))


def test_netcdf_is_cf_with_grid_mapping(make_stack, tmp_path: Path, real_dem: Path) -> None:
    stack = make_stack("utm")
    ds = open_stack(stack.paths, dem=real_dem)
    path = write_netcdf(ds, tmp_path / "d.nc")
    raw = xr.open_dataset(path, decode_coords=False)
    assert raw.attrs["Conventions"] == "CF-1.8"
    assert raw["displacement"].attrs["grid_mapping"] == "spatial_ref"
    assert raw["dem"].attrs["grid_mapping"] == "spatial_ref"
    assert "crs_wkt" in raw["spatial_ref"].attrs
    assert raw["x"].attrs["standard_name"] == "projection_x_coordinate"
    back = open_stack(path)
    np.testing.assert_array_equal(back["displacement"].values, stack.data)
    assert back.rio.crs.to_epsg() == 32616
    np.testing.assert_array_equal(back["dem"].values, ds["dem"].values)
    assert back["dem"].attrs["units"] == "m"
    raw.close()


def test_existing_output_needs_overwrite(make_stack, tmp_path: Path) -> None:
    ds = open_stack(make_stack().paths)
    for name in ("o.tif", "o.nc", "o.zarr"):
        target = tmp_path / name
        write_output(ds, target)
        before = sorted(p.name for p in tmp_path.rglob("*"))
        with pytest.raises(OutputError, match=f"{name}: already exists"):
            write_output(ds * 2, target)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
        write_output(ds.assign(displacement=ds["displacement"] * 2), target, overwrite=True)
        np.testing.assert_allclose(
            open_stack(target)["displacement"].values, 2 * ds["displacement"].values
        )
    assert not list(tmp_path.glob(".*"))


def test_atomic_output_renames_on_success(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    with atomic_output(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt" and tmp != target
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_output_removes_temporary_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "b.zarr"
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as tmp:
        tmp.mkdir()
        (tmp / "chunk").write_text("partial")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_refuses_bad_targets(tmp_path: Path) -> None:
    (tmp_path / "c.nc").write_text("old")
    with pytest.raises(OutputError, match="c.nc: already exists"), atomic_output(tmp_path / "c.nc"):
        pass
    with (
        pytest.raises(OutputError, match="does not exist"),
        atomic_output(tmp_path / "no" / "x.nc"),
    ):
        pass
    with pytest.raises(OutputError, match="nothing was written"), atomic_output(tmp_path / "d.nc"):
        pass
    with atomic_output(tmp_path / "c.nc", overwrite=True) as tmp:
        tmp.write_text("new")
    assert (tmp_path / "c.nc").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.nc"]


def test_write_output_unknown_extension(make_stack, tmp_path: Path) -> None:
    ds = open_stack(make_stack().paths)
    with pytest.raises(OutputError, match=r"out.png: unknown output format '.png'"):
        write_output(ds, tmp_path / "out.png")
    assert not (tmp_path / "out.png").exists()
