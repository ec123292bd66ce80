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
    expected = denoise_dataset(open_mintpy(ts), progress=False)["deformation"].values
    np.testing.assert_allclose(data, expected / 1000.0, atol=1e-6)
    assert not np.allclose(data, open_mintpy(ts)["displacement"].values / 1000.0, atol=1e-4)
