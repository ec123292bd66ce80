"""MintPy in, `insar-denoise run`, MintPy out: checked with MintPy's own reader."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from click.testing import CliRunner

from insar_denoise.cli.main import main
from insar_denoise.inference import denoise_dataset
from insar_denoise.io.mintpy import open_mintpy, write_mintpy
from insar_denoise.io.scene import scene_dataset
from insar_denoise.reference import apply_reference, resolve_reference
from insar_denoise.synth import SimConfig, simulate_scene


def _mintpy_project(folder: Path) -> Path:
    """A geocoded MintPy time series (10 dates, 64 x 64, UTM) with its geometryGeo.h5."""
    scene = simulate_scene(
        SimConfig(size=64, n_dates=10, holes_prob=0.0), 3, source="mogi", amplitude_mm=8.0
    )
    ds = scene_dataset(scene)
    ts = write_mintpy(ds[["displacement"]], folder / "timeseries.h5")
    with h5py.File(folder / "geometryGeo.h5", "w") as f:
        f.create_dataset("height", data=ds["dem"].values.astype(np.float32))
        f.attrs["FILE_TYPE"] = "geometry"
        with h5py.File(ts, "r") as src:
            for key in ("LENGTH", "WIDTH", "X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "EPSG"):
                if key in src.attrs:
                    f.attrs[key] = src.attrs[key]
    return ts


def test_run_mintpy_in_mintpy_out_read_by_mintpy(tmp_path: Path):
    from mintpy.objects import timeseries
    from mintpy.utils import readfile

    ts = _mintpy_project(tmp_path)
    out_series = tmp_path / "timeseries_denoised.h5"
    res = CliRunner().invoke(
        main,
        ["run", str(ts), "-o", str(tmp_path / "def.tif"), "--series", str(out_series), "-q"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    data, atr = readfile.read(str(out_series), datasetName="timeseries")
    _, atr_in = readfile.read(str(ts), datasetName="timeseries")
    assert timeseries(str(out_series)).get_date_list() == timeseries(str(ts)).get_date_list()
    for key in ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "LENGTH", "WIDTH"):
        assert float(atr[key]) == float(atr_in[key])
    assert atr["UNIT"] == "m" and atr["FILE_TYPE"] == "timeseries"
    # values: the same denoised series as the library gives, in metres
    # this file has no REF_Y/REF_X: referred to the median of the valid area
    ref = resolve_reference(open_mintpy(ts))
    assert "REF_Y" not in atr_in and ref.kind == "median"
    expected = apply_reference(denoise_dataset(open_mintpy(ts), progress=False), ref)
    expected = expected["deformation"].values
    np.testing.assert_allclose(data, expected / 1000.0, atol=1e-6)
    assert not np.allclose(data, open_mintpy(ts)["displacement"].values / 1000.0, atol=1e-4)


def _licsbas_project(folder: Path) -> Path:
    """TS_GEOCml1/cum.h5 (10 dates, 64 x 64, EPSG:4326) and results/hgt, as LiCSBAS13 writes."""
    scene = simulate_scene(
        SimConfig(size=64, n_dates=10, holes_prob=0.0), 4, source="okada", amplitude_mm=8.0
    )
    ts_dir = folder / "TS_GEOCml1"
    (ts_dir / "results").mkdir(parents=True)
    dates = [int(str(d).replace("-", "")) for d in scene["dates"].astype("datetime64[D]")]
    with h5py.File(ts_dir / "cum.h5", "w") as f:
        f.create_dataset("imdates", data=np.asarray(dates, np.int32))
        f.create_dataset("bperp", data=np.zeros(len(dates)))
        f.create_dataset("cum", data=scene["displacement"].astype(np.float32))
        f.create_dataset("vel", data=np.zeros((64, 64), np.float32))
        f.create_dataset("corner_lat", data=36.7)
        f.create_dataset("corner_lon", data=-84.4)
        f.create_dataset("post_lat", data=-0.0008333)
        f.create_dataset("post_lon", data=0.0008333)
        f.create_dataset("refarea", data="30:31/30:31")
    scene["dem"].astype(np.float32).tofile(ts_dir / "results" / "hgt")
    return ts_dir / "cum.h5"


def test_run_licsbas_in_licsbas_out(tmp_path: Path):
    from insar_denoise.io.licsbas import open_licsbas

    cum = _licsbas_project(tmp_path)
    out_series = tmp_path / "cum_denoised.h5"
    res = CliRunner().invoke(
        main,
        ["run", str(cum), "-o", str(tmp_path / "def.tif"), "--series", str(out_series), "-q"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    ref = resolve_reference(open_licsbas(cum))  # the input's refarea
    assert ref.kind == "area"
    expected = apply_reference(denoise_dataset(open_licsbas(cum), progress=False), ref)
    expected = expected["deformation"].values
    with h5py.File(out_series, "r") as f, h5py.File(cum, "r") as g:
        np.testing.assert_array_equal(f["imdates"][()], g["imdates"][()])
        for key in ("corner_lat", "corner_lon", "post_lat", "post_lon"):
            assert float(f[key][()]) == float(g[key][()])
        np.testing.assert_allclose(f["cum"][()], expected, atol=1e-4)
        assert f["refarea"][()] == g["refarea"][()]
