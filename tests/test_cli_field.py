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
from insar_denoise.inference import stack_path
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
        np.testing.assert_allclose(src.read(1), written["cumulative_deformation"].values, atol=1e-4)
    # --variable names another series: the removed noise
    noise = tmp_path / "noise.tif"
    res = _invoke(
        ["run", out, "--variable", "noise", "--dem", scene_dir / "dem.tif"]
        + ["-o", noise, "--method", "raw", "-q"]
    )
    assert res.exit_code == 0, res.output
    n = written["noise"].values
    with rasterio.open(noise) as src:
        got = src.read(1)
    # the re-run refers its map to the median of the valid area (noise is not median-zero:
    # series + noise is the referenced input), so compare up to that constant
    want = n[-1] - n[0]
    np.testing.assert_allclose(got - np.median(got), want - np.median(want), atol=1e-4)


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


def _stale(folder: Path, name: str) -> list[Path]:
    """Fake leftovers of a killed write of ``folder/name`` (the writer's naming scheme)."""
    stem, suffix = Path(name).stem, Path(name).suffix
    tmp = folder / f".{stem}.partial-0123abcd{suffix}"
    if suffix == ".zarr":
        tmp.mkdir()
        (tmp / ".zgroup").write_text("{}")
        return [tmp]
    tmp.write_bytes(b"half a file")
    aux = folder / f"{tmp.name}.aux.xml"
    aux.write_text("<PAMDataset/>")
    return [tmp, aux]


@pytest.mark.parametrize("name", ["def.tif", "out.zarr"])
def test_run_removes_stale_partials_of_its_outputs(scene_dir: Path, tmp_path: Path, name: str):
    stale = _stale(tmp_path, name)
    other = tmp_path / ".other.partial-0123abcd.tif"  # another output's: kept
    other.write_bytes(b"not ours")
    res = _run(scene_dir, "-o", tmp_path / name, "--method", "raw", "-q")
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in stale) and other.exists()
    lines = [x for x in res.stderr.splitlines() if "stale partial" in x]
    assert len(lines) == 1 and lines[0].startswith("insar-denoise: warning: ")
    assert str(tmp_path / name) in lines[0] and stale[0].name in lines[0]


def test_batch_removes_stale_partials_and_labels_warnings_by_frame(scene_dir: Path, tmp_path: Path):
    import yaml

    frame = {
        "name": "frame_a",
        "stack": f"{scene_dir}/disp_*.tif",
        "dem": str(scene_dir / "dem.tif"),
        "output": str(tmp_path / "out" / "a.tif"),
        "method": "elevation",
        "units": "m",  # mm data read as metres: the noise check fires
    }
    manifest = tmp_path / "frames.yaml"
    manifest.write_text(yaml.safe_dump({"frames": [frame]}))
    (tmp_path / "out").mkdir()
    stale = _stale(tmp_path / "out", "a.tif")
    res = _invoke(["batch", manifest, "-q"])
    assert res.exit_code == 0, res.output
    assert not any(p.exists() for p in stale)
    lines = res.stderr.strip().splitlines()
    assert any("frame_a: " in x and "stale partial" in x and stale[0].name in x for x in lines)
    assert any(x.startswith("insar-denoise: warning: frame_a: [noise_high]") for x in lines)
    # one line per warning: no Python source lines, no logging-format lines
    assert all(x.startswith("insar-denoise: warning: frame_a: ") for x in lines), lines


def _default_meta() -> dict:
    from insar_denoise.models import load_model

    return load_model("default").metadata


def _too_few_dates() -> int:
    """Dates the default model runs on but warns about (``few_dates``)."""
    from insar_denoise.trust.qc import date_needs

    need, fewest, _ = date_needs(_default_meta())
    assert need <= fewest - 1 <= 10, (need, fewest)
    return fewest - 1


def test_run_warnings_are_one_cli_line_naming_the_input(scene_dir: Path, tmp_path: Path):
    n = _too_few_dates()
    stack = _stack(scene_dir)[:n]
    res = _invoke(
        ["run", *stack, "--dem", scene_dir / "dem.tif", "-o", tmp_path / "d.tif"]
        + ["--overlap", 4, "--units", "m", "-q"]
    )
    assert res.exit_code == 0, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 3, lines  # seams, few dates, noise
    label = f"{stack[0]} (+{n - 1} files): "
    assert all(x.startswith(f"insar-denoise: warning: {label}") for x in lines), lines
    assert any("overlap 4 px" in x for x in lines) and any("[noise_high]" in x for x in lines)
    assert any("[few_dates]" in x for x in lines)


@pytest.mark.parametrize("case", ["below_multiple", "not_above_overlap"])
def test_bad_tile_is_a_one_line_error_naming_the_options(
    scene_dir: Path, tmp_path: Path, case: str
):
    meta = _default_meta()
    multiple, overlap = int(meta["tile_multiple"]), int(meta["default_overlap"])
    if case == "below_multiple":
        tile = 0
        message = f"--tile 0 px is too small: at least the model's tile multiple, {multiple} px"
    else:
        tile = overlap // multiple * multiple
        assert tile >= multiple
        message = (
            f"--overlap {overlap} px must be smaller than --tile {tile} px: lower --overlap or "
            "raise"
        )
    res = _run(scene_dir, "-o", tmp_path / "d.tif", "--tile", tile, "-q")
    assert res.exit_code == 2 and message in res.output, res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert list(tmp_path.iterdir()) == []


def test_tile_larger_than_the_scene_records_the_tile_used(scene_dir: Path, tmp_path: Path):
    meta = _default_meta()
    multiple, overlap = int(meta["tile_multiple"]), int(meta["default_overlap"])
    out = tmp_path / "d.tif"
    res = _run(scene_dir, "-o", out, "--tile", 512, "-q")
    assert res.exit_code == 0, res.output
    # the 64 px scene, padded to the gate's size (stack_path.GATE_MIN_PX), plus the overlap
    # on both sides, up to the model's tile multiple
    used = -(-(stack_path.GATE_MIN_PX + 2 * overlap) // multiple) * multiple
    padded = f"{stack_path.GATE_MIN_PX}x{stack_path.GATE_MIN_PX}"
    assert f"--tile 512 px is larger than the scene (64x64 px, padded to {padded} px)" in res.stderr
    assert f"tiles of {used} px used" in res.stderr
    with rasterio.open(out) as src:
        assert src.tags()["TILE_PX"] == str(used)


def test_messages_use_command_line_spelling(scene_dir: Path, tmp_path: Path):
    res = _run(scene_dir, "-o", tmp_path / "d.tif", "--units", "furlong", "-q")
    assert res.exit_code == 2 and "(override with --units)" in res.output, res.output
    assert "units=" not in res.output
    # a NetCDF with two series and no insar-denoise provenance: ambiguous
    ds = xr.Dataset(
        {n: (("time", "y", "x"), np.zeros((3, 4, 4), "float32")) for n in ("east", "north")},
        coords={"time": np.array(["2020-01-01", "2020-01-13", "2020-01-25"], "datetime64[ns]")},
    )
    ds.rio.write_crs("EPSG:4326").to_netcdf(tmp_path / "two.nc")
    res = _invoke(["info", tmp_path / "two.nc"])
    assert res.exit_code == 2 and "pass --variable" in res.output, res.output
    assert "variable=" not in res.output


def test_info_shows_wavelength_and_the_warnings_run_gives(scene_dir: Path):
    res = _invoke(["info", *_stack(scene_dir), "--units", "m"])
    assert res.exit_code == 0, res.output
    assert "wavelength:     not used (input in m)" in res.output
    assert "reference:      median of valid area" in res.output
    assert "run would warn (default):" in res.output and "[noise_high]" in res.output
    n = _too_few_dates()
    res = _invoke(["info", *_stack(scene_dir)[:n]])
    assert f"[few_dates] {n} dates: fewer than the shortest stacks" in res.output, res.output
    # the window model's own rule: a 9-date window needs 11 dates to be averaged
    res = _invoke(["info", *_stack(scene_dir), "--model", "window_v1"])
    assert "run would warn (window_v1):" in res.output
    assert "[few_dates] 10 dates for a 9-date window" in res.output
    res = _invoke(
        ["info", *_stack(scene_dir)[:n], "--units", "rad", "--wavelength", 236.0, "--json"]
    )
    import json

    summary = json.loads(res.output)
    assert summary["wavelength_mm"] == 236.0
    assert summary["reference"] == "median of valid area"
    assert {w["code"] for w in summary["qc_warnings"]} >= {"few_dates"}


def test_output_names_cumulative_deformation_and_old_files_read_back(
    scene_dir: Path, tmp_path: Path
):
    out = tmp_path / "out.nc"
    assert _run(scene_dir, "-o", out, "--method", "raw", "-q").exit_code == 0
    with xr.open_dataset(out) as ds:
        assert "cumulative_deformation" in ds.data_vars and "cumulative" not in ds.data_vars
        old = ds.load().rename({"cumulative_deformation": "cumulative"})
    old.to_netcdf(tmp_path / "old.nc")  # as written before the rename
    res = _invoke(["info", tmp_path / "old.nc", "--json"])
    assert res.exit_code == 0, res.output
    assert '"n_dates": 10' in res.output
