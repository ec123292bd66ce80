"""Field-readiness of the CLI: reading its own output, output checks before any work, stale
partial files, option frictions and one-line warnings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from click.testing import CliRunner
from insar_denoise.cli.main import main

from insar_denoise.io.scene import write_scene
from insar_denoise.synth import SimConfig, simulate_scene


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory) -> Path:
    """A 64 x 64 px, 10-date simulated stack with a 10 mm Okada signal, on disk."""
    out = tmp_path_factory.mktemp("scene")
    config = SimConfig(size=64, n_dates=10, turbulence_std_mm=(2.0, 4.0), holes_prob=0.0)
    write_scene(simulate_scene(config, 7, source="okada", amplitude_mm=10.0), out)
    return out


def _stack(d: Path) -> list[str]:
    return sorted(str(p) for p in d.glob("disp_*.tif"))


def _invoke(args: list[str]):
    return CliRunner().invoke(main, [str(a) for a in args])


def _run(scene_dir: Path, *args) -> object:
    return _invoke(["run", *_stack(scene_dir), "--dem", scene_dir / "dem.tif", *args])


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_own_output_reads_back_as_the_denoised_series(scene_dir: Path, tmp_path: Path, suffix: str):
    out = tmp_path / f"out{suffix}"
    res = _run(scene_dir, "-o", out, "--method", "elevation", "-q")
    assert res.exit_code == 0, res.output
    info = _invoke(["info", out])
    assert info.exit_code == 0, info.output
    assert "layout:         stack" in info.output and "dates:          10" in info.output
    # without --dem: the usual one-line error (the output holds no DEM)
    no_dem = _invoke(["run", out, "-o", tmp_path / "x.tif", "-q"])
    assert no_dem.exit_code == 2 and "no DEM; pass --dem" in no_dem.output
    # the raw last-minus-first of the denoised series read back is the cumulative map
    again = tmp_path / "again.tif"
    res = _invoke(["run", out, "--dem", scene_dir / "dem.tif", "-o", again, "--method", "raw"])
    assert res.exit_code == 0, res.output
    written = xr.open_dataset(out, engine="zarr" if suffix == ".zarr" else None)
    with rasterio.open(again) as src:
        np.testing.assert_allclose(src.read(1), written["cumulative"].values, atol=1e-4)
    # --variable names another series: the removed noise
    noise = tmp_path / "noise.tif"
    res = _invoke(
        ["run", out, "--variable", "noise", "--dem", scene_dir / "dem.tif"]
        + ["-o", noise, "--method", "raw", "-q"]
    )
    assert res.exit_code == 0, res.output
    n = written["noise"].values
    with rasterio.open(noise) as src:
        np.testing.assert_allclose(src.read(1), n[-1] - n[0], atol=1e-4)
