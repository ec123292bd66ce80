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


OUTPUT_OPTIONS = ["-o", "--series", "--noise", "--quicklook", "--uncertainty", "--report"]


@pytest.mark.parametrize("option", OUTPUT_OPTIONS)
@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_output_fails_before_any_work(
    scene_dir: Path, tmp_path: Path, option: str, where: str
):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file, not a folder")
    name = "rep" if option == "--report" else ("q.png" if option == "--quicklook" else "x.tif")
    bad = blocker / name if where == "under_a_file" else Path("/proc") / name
    paths = {"-o": tmp_path / "def.tif", "--series": tmp_path / "s.tif", option: bad}
    args = [a for opt, p in paths.items() for a in (opt, p)]
    res = _run(scene_dir, *args, "-q")
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("insar-denoise: error: "), res.output
    assert str(bad) in lines[0] or str(bad.parent) in lines[0]
    assert "not a folder" in lines[0] or "cannot write" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]  # nothing written


def test_run_creates_a_missing_output_folder_but_not_two(scene_dir: Path, tmp_path: Path):
    res = _run(scene_dir, "-o", tmp_path / "a" / "b" / "def.tif", "--method", "raw", "-q")
    assert res.exit_code == 2 and "does not exist" in res.output
    assert not (tmp_path / "a").exists()
    out = tmp_path / "new" / "def.tif"
    res = _run(scene_dir, "-o", out, "--series", tmp_path / "new2" / "s.tif", "--method", "raw")
    assert res.exit_code == 0, res.output
    assert out.is_file() and (tmp_path / "new2" / "s.tif").is_file()


@pytest.mark.parametrize(
    ("option", "name", "message"),
    [("--series", "s.h5", "needs a MintPy or LiCSBAS input"), ("-o", "d.png", "unknown output")],
)
def test_unwritable_format_fails_before_any_work(
    scene_dir: Path, tmp_path: Path, option: str, name: str, message: str
):
    paths = {"-o": tmp_path / "def.tif", option: tmp_path / name}
    res = _run(scene_dir, *[a for opt, p in paths.items() for a in (opt, p)], "-q")
    assert res.exit_code == 2 and message in res.output, res.output
    assert list(tmp_path.iterdir()) == []


def test_uncertainty_geotiff_carries_the_sign_convention(scene_dir: Path, tmp_path: Path):
    sigma = tmp_path / "sigma.tif"
    res = _run(scene_dir, "-o", tmp_path / "def.tif", "--uncertainty", sigma, "-q")
    assert res.exit_code == 0, res.output
    with rasterio.open(sigma) as src:
        assert "towards the satellite" in src.tags()["SIGN_CONVENTION"]
