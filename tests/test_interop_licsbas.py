"""LiCSBAS cum.h5: read, georeference, height files and round trip."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import rasterio
from affine import Affine

from insar_denoise.errors import InputError, OutputError
from insar_denoise.io.licsbas import is_licsbas_file, linear_rate, open_licsbas, write_licsbas

IMDATES = [20180104, 20180116, 20180128, 20180209, 20180221, 20180305]
CORNER_LAT, CORNER_LON, POST_LAT, POST_LON = 37.9, 139.1, -0.001, 0.0015
SHAPE = (8, 10)


def make_cum(folder, seed=0):
    """TS_GEOCml1/cum.h5 and results/hgt laid out as LiCSBAS13 writes them."""
    rng = np.random.default_rng(seed)
    ts_dir = folder / "TS_GEOCml1"
    (ts_dir / "results").mkdir(parents=True)
    cum = np.cumsum(rng.normal(0, 3, (len(IMDATES), *SHAPE)), axis=0).astype(np.float32)
    cum -= cum[0]
    cum[:, 1, 2] = np.nan
    cum[3:, 5, 5] = np.nan
    path = ts_dir / "cum.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("imdates", data=[np.int32(d) for d in IMDATES])
        f.create_dataset("bperp", data=[12.5, -30.0, 4.0, 55.0, -8.0, 0.5])
        f.create_dataset("cum", data=cum)
        f.create_dataset("vel", data=np.zeros(SHAPE, np.float32))
        f.create_dataset("vintercept", data=np.zeros(SHAPE, np.float32))
        f.create_dataset("gap", data=np.zeros((len(IMDATES) - 1, *SHAPE), np.int8))
        f.create_dataset("corner_lat", data=CORNER_LAT)
        f.create_dataset("corner_lon", data=CORNER_LON)
        f.create_dataset("post_lat", data=POST_LAT)
        f.create_dataset("post_lon", data=POST_LON)
        f.create_dataset("refarea", data="3:4/2:3")
    hgt = rng.uniform(0, 2000, SHAPE).astype(np.float32)
    hgt.tofile(ts_dir / "results" / "hgt")
    return path, cum, hgt


def test_open_licsbas_values_dates_pixel_centres(tmp_path):
    path, cum, hgt = make_cum(tmp_path)
    assert is_licsbas_file(path) and not is_licsbas_file(path.parent / "results" / "hgt")
    ds = open_licsbas(path)
    assert [int(np.datetime_as_string(t, "D").replace("-", "")) for t in ds.time.values] == IMDATES
    np.testing.assert_array_equal(ds.displacement.values, cum)
    # LiCSBAS: pixel (i, j) is centred at corner + post * index (grid registration)
    np.testing.assert_allclose(ds.y.values, CORNER_LAT + POST_LAT * np.arange(SHAPE[0]))
    np.testing.assert_allclose(ds.x.values, CORNER_LON + POST_LON * np.arange(SHAPE[1]))
    expected = Affine(
        POST_LON, 0, CORNER_LON - POST_LON / 2, 0, POST_LAT, CORNER_LAT - POST_LAT / 2
    )
    assert ds.rio.transform().almost_equals(expected) and ds.rio.crs.to_epsg() == 4326
    np.testing.assert_array_equal(ds.dem.values, hgt)
    assert json.loads(ds.attrs["licsbas_metadata"])["refarea"] == "3:4/2:3"
    np.testing.assert_allclose(ds.bperp.values, [12.5, -30.0, 4.0, 55.0, -8.0, 0.5])


def test_round_trip(tmp_path):
    path, cum, _ = make_cum(tmp_path)
    ds = open_licsbas(path)
    denoised = ds.copy()
    denoised["displacement"] = ds.displacement * np.float32(0.5)  # stands in for the denoiser
    out = write_licsbas(denoised, path.parent / "cum_denoised.h5")
    with h5py.File(out) as f, h5py.File(path) as g:
        np.testing.assert_array_equal(f["cum"][()], 0.5 * cum)
        np.testing.assert_array_equal(f["imdates"][()], IMDATES)
        assert f["imdates"].dtype == np.int32 and f["cum"].dtype == np.float32
        for key in ("corner_lat", "corner_lon", "post_lat", "post_lon"):
            assert f[key][()] == pytest.approx(g[key][()], rel=1e-12, abs=1e-12)
        assert f["refarea"][()].decode() == "3:4/2:3"
        np.testing.assert_allclose(f["bperp"][()], g["bperp"][()])
        vel = f["vel"][()]
    iso = [f"{d // 10000}-{d // 100 % 100:02d}-{d % 100:02d}" for d in IMDATES]
    years = np.array(iso, "datetime64[D]") - np.datetime64("2018-01-04")
    years = years.astype(float) / 365.25
    slope, intercept = np.polyfit(years, 0.5 * cum[:, 4, 7], 1)
    assert vel[4, 7] == pytest.approx(slope, rel=1e-4)
    again = open_licsbas(out, height=path.parent / "results" / "hgt")
    np.testing.assert_array_equal(again.displacement.values, denoised.displacement.values)
    assert again.rio.transform().almost_equals(ds.rio.transform())
    assert json.loads(again.attrs["licsbas_metadata"])["refarea"] == "3:4/2:3"
    np.testing.assert_array_equal(again.dem.values, ds.dem.values)


def test_linear_rate_nan_aware():
    times = np.array(["2020-01-01", "2020-07-01", "2021-01-01"], dtype="datetime64[D]")
    t = (times - times[0]).astype(float) / 365.25
    series = np.stack([3.0 * t + 1.0, 3.0 * t + 1.0, np.full(3, np.nan)], axis=-1)[:, None, :]
    series[1, 0, 1] = np.nan
    vel, c = linear_rate(series, times)
    np.testing.assert_allclose(vel[0, :2], 3.0)
    np.testing.assert_allclose(c[0, :2], 1.0, atol=1e-6)
    assert np.isnan(vel[0, 2])


def test_licsar_geotiff_height_resampled(tmp_path):
    path, _, _ = make_cum(tmp_path)
    (path.parent / "results" / "hgt").unlink()
    fine = Affine(POST_LON / 2, 0, CORNER_LON - POST_LON, 0, POST_LAT / 2, CORNER_LAT - POST_LAT)
    rows, cols = 2 * SHAPE[0] + 4, 2 * SHAPE[1] + 4
    lat = CORNER_LAT - POST_LAT + POST_LAT / 2 * (np.arange(rows) + 0.5)
    plane = np.repeat((1000.0 * (lat - CORNER_LAT))[:, None], cols, axis=1).astype(np.float32)
    profile = dict(driver="GTiff", width=cols, height=rows, count=1, dtype="float32",
                   crs="EPSG:4326", transform=fine)  # fmt: skip
    with rasterio.open(path.parent / "052D_04917_131313.geo.hgt.tif", "w", **profile) as dst:
        dst.write(plane, 1)
    ds = open_licsbas(path)
    expected = 1000.0 * (ds.y.values - CORNER_LAT)
    np.testing.assert_allclose(ds.dem.values, np.repeat(expected[:, None], SHAPE[1], 1), atol=1e-3)


def test_errors(tmp_path):
    path, _, _ = make_cum(tmp_path)
    with h5py.File(tmp_path / "radar.h5", "w") as f:
        f.create_dataset("cum", data=np.zeros((2, 3, 3), np.float32))
        f.create_dataset("imdates", data=np.array(IMDATES[:2], np.int32))
    with pytest.raises(InputError, match="radar coordinates"):
        open_licsbas(tmp_path / "radar.h5")
    with pytest.raises(InputError, match="not a LiCSBAS"):
        open_licsbas(path.parent / "results" / "hgt")
    ds = open_licsbas(path)
    with pytest.raises(OutputError, match="already exists"):
        write_licsbas(ds, path)
    with pytest.raises(OutputError, match="EPSG:4326"):
        write_licsbas(ds.rio.write_crs("EPSG:32654"), tmp_path / "utm.h5")
