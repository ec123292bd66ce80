"""MintPy time series: read, round trip, and checks with MintPy's own readers."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from insar_denoise.errors import InputError, OutputError
from insar_denoise.io.mintpy import is_mintpy_file, open_mintpy, write_mintpy

readfile = pytest.importorskip("mintpy.utils.readfile")
utils0 = pytest.importorskip("mintpy.utils.utils0")

DATES = ["20200101", "20200113", "20200125", "20200206", "20200218"]
GRIDS = {
    "geo": ({"X_FIRST": "-118.5", "Y_FIRST": "35.25", "X_STEP": "0.000833333",
             "Y_STEP": "-0.000833333", "X_UNIT": "degrees", "Y_UNIT": "degrees"}, 4326),
    "utm_epsg": ({"X_FIRST": "400000.0", "Y_FIRST": "3900000.0", "X_STEP": "30.0",
                  "Y_STEP": "-30.0", "X_UNIT": "meters", "Y_UNIT": "meters", "EPSG": "32611"},
                 32611),
    "utm_zone": ({"X_FIRST": "400000.0", "Y_FIRST": "6100000.0", "X_STEP": "60.0",
                  "Y_STEP": "-60.0", "X_UNIT": "meters", "Y_UNIT": "meters", "UTM_ZONE": "19S"},
                 32719),
}  # fmt: skip


def make_timeseries(folder, grid="geo", shape=(7, 9), ref_index=1, seed=0):
    """A timeseries.h5 and inputs/geometryGeo.h5 laid out as MintPy writes them."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0, 0.01, (len(DATES), *shape)).astype(np.float32)  # metres
    data -= data[ref_index]
    data[:, 0, 0] = np.nan
    attrs = {"FILE_TYPE": "timeseries", "UNIT": "m", "LENGTH": str(shape[0]),
             "WIDTH": str(shape[1]), "REF_DATE": DATES[ref_index], "WAVELENGTH": "0.05546576",
             "PLATFORM": "Sen", "ORBIT_DIRECTION": "ASCENDING", "REF_Y": "3", "REF_X": "4",
             "PROCESSOR": "hyp3", **GRIDS[grid][0]}  # fmt: skip
    path = folder / "timeseries.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("timeseries", data=data, chunks=True)
        f.create_dataset("date", data=np.array(DATES, dtype=np.bytes_))
        f.create_dataset("bperp", data=np.linspace(-50, 50, len(DATES)).astype(np.float32))
        for key, value in attrs.items():
            f.attrs[key] = str(value)
    (folder / "inputs").mkdir()
    with h5py.File(folder / "inputs" / "geometryGeo.h5", "w") as f:
        f.create_dataset("height", data=rng.uniform(100, 900, shape).astype(np.float32))
        f.attrs.update({"FILE_TYPE": "geometry", **{k: attrs[k] for k in attrs if "_" in k}})
    return path, data, attrs


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_open_mintpy_values_dates_georeference(tmp_path, grid):
    path, data, attrs = make_timeseries(tmp_path, grid)
    assert is_mintpy_file(path) and not is_mintpy_file(tmp_path / "inputs" / "geometryGeo.h5")
    ds = open_mintpy(path)
    assert [np.datetime_as_string(t, "D").replace("-", "") for t in ds.time.values] == DATES
    expected_mm = (data - data[0]) * 1000.0
    np.testing.assert_allclose(ds.displacement.values, expected_mm, rtol=1e-5, atol=1e-4)
    assert ds.rio.crs.to_epsg() == GRIDS[grid][1]
    # MintPy's own pixel centres (in the file's CRS: without UTM_ZONE it does not go to lat/lon)
    grid_attrs = {k: v for k, v in attrs.items() if k != "UTM_ZONE"}
    lats, lons = utils0.get_lat_lon(grid_attrs, dimension=1)
    np.testing.assert_allclose(ds.y.values, lats, rtol=0, atol=1e-6 * abs(float(lats[0])))
    np.testing.assert_allclose(ds.x.values, lons, rtol=0, atol=1e-6 * abs(float(lons[0])))
    with h5py.File(tmp_path / "inputs" / "geometryGeo.h5") as f:
        np.testing.assert_array_equal(ds.dem.values, f["height"][()])
    np.testing.assert_allclose(ds.bperp.values, np.linspace(-50, 50, 5), rtol=1e-6)


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_round_trip_through_mintpy_readers(tmp_path, grid):
    path, data, attrs = make_timeseries(tmp_path, grid)
    ds = open_mintpy(path)
    denoised = ds.copy()
    denoised["displacement"] = ds.displacement * np.float32(0.5)  # stands in for the denoiser
    out = write_mintpy(denoised, tmp_path / "timeseries_denoised.h5")
    values, read_attrs = readfile.read(str(out))
    assert readfile.read_attribute(str(out)) == read_attrs
    np.testing.assert_allclose(values, 0.5 * (data - data[0]), rtol=1e-5, atol=1e-7)
    assert readfile.get_slice_list(str(out)) == [f"timeseries-{d}" for d in DATES]
    for key in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP"):
        assert float(read_attrs[key]) == pytest.approx(float(attrs[key]), rel=1e-12)
    for key in ("PLATFORM", "ORBIT_DIRECTION", "WAVELENGTH", "X_UNIT", "UNIT"):
        assert read_attrs[key] == attrs[key]
    assert read_attrs["REF_DATE"] == DATES[0] and read_attrs["FILE_TYPE"] == "timeseries"
    assert (read_attrs["LENGTH"], read_attrs["WIDTH"]) == (attrs["LENGTH"], attrs["WIDTH"])
    again = open_mintpy(out, geometry=tmp_path / "inputs" / "geometryGeo.h5")
    np.testing.assert_allclose(again.displacement.values, denoised.displacement.values, atol=1e-4)
    assert again.rio.crs == ds.rio.crs and again.rio.transform() == ds.rio.transform()
    np.testing.assert_array_equal(again.bperp.values, ds.bperp.values)


def test_mintpy_info_reads_our_file(tmp_path, capsys):
    from mintpy.cli import info

    path, _, _ = make_timeseries(tmp_path)
    out = write_mintpy(open_mintpy(path)["displacement"], tmp_path / "ts_out.h5")
    info.main([str(out)])
    printed = capsys.readouterr().out
    assert "timeseries" in printed and "20200218" in info_dates(out)
    info.main([str(out), "--date"])
    assert capsys.readouterr().out.split() == DATES


def info_dates(path) -> str:
    with h5py.File(path) as f:
        return " ".join(d.decode() for d in f["date"][()])


def test_errors(tmp_path):
    path, _, _ = make_timeseries(tmp_path)
    with h5py.File(tmp_path / "radar.h5", "w") as f:
        f.create_dataset("timeseries", data=np.zeros((2, 3, 3), np.float32))
        f.create_dataset("date", data=np.array(DATES[:2], dtype=np.bytes_))
        f.attrs.update(FILE_TYPE="timeseries", UNIT="m", LENGTH="3", WIDTH="3")
    with pytest.raises(InputError, match="radar coordinates"):
        open_mintpy(tmp_path / "radar.h5")
    with pytest.raises(InputError, match="not a MintPy"):
        open_mintpy(tmp_path / "inputs" / "geometryGeo.h5")
    with pytest.raises(OutputError, match="already exists"):
        write_mintpy(open_mintpy(path), path)
    before = path.read_bytes()
    write_mintpy(open_mintpy(path), path, overwrite=True)
    assert path.read_bytes() != before and is_mintpy_file(path)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []
