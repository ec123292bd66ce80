"""End-to-end `insar-denoise run` / `demo` on simulated and real stacks (pipeline module)."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from click.testing import CliRunner

from insar_denoise.cli.main import main
from insar_denoise.io.scene import write_scene
from insar_denoise.synth import SimConfig, simulate_scene

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory) -> Path:
    """A 64 x 64 px, 10-date simulated stack with a 10 mm Okada signal, on disk."""
    out = tmp_path_factory.mktemp("scene")
    config = SimConfig(size=64, n_dates=10, turbulence_std_mm=(2.0, 4.0), holes_prob=0.0)
    scene = simulate_scene(config, 7, source="okada", amplitude_mm=10.0)
    write_scene(scene, out)
    return out


def _stack(d: Path) -> list[str]:
    return sorted(str(p) for p in d.glob("disp_*.tif"))


def _invoke(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=False)


def _read(path: Path) -> tuple[np.ndarray, rasterio.Affine, object]:
    with rasterio.open(path) as src:
        return src.read(), src.transform, src.crs


def _rmse_up_to_a_constant(est: np.ndarray, truth: np.ndarray) -> float:
    """RMSE with the median error removed (the whole-stack default is defined up to a
    constant; nothing de-planed)."""
    ok = np.isfinite(est) & np.isfinite(truth)
    err = est[ok].astype(np.float64) - truth[ok]
    return float(np.sqrt(np.mean((err - np.median(err)) ** 2)))


@pytest.fixture(scope="module")
def strong_scene_dir(tmp_path_factory) -> Path:
    """The scene of ``scene_dir`` with 40 mm instead of 10: an Okada source broader than the
    64 px scene, at ideal-observer SNR 32 (10 mm: SNR 8, returned as zero by the gate)."""
    out = tmp_path_factory.mktemp("strong")
    config = SimConfig(size=64, n_dates=10, turbulence_std_mm=(2.0, 4.0), holes_prob=0.0)
    write_scene(simulate_scene(config, 7, source="okada", amplitude_mm=40.0), out)
    return out


def test_run_default_model_beats_raw_and_keeps_georeference(strong_scene_dir: Path, tmp_path: Path):
    """A scene under the gate's size (padded to it) with a signal broader than the scene
    comes back whole (session 35: a detection over a quarter of a small scene opens the
    gate everywhere; with three quarters, as on large scenes, the gain was 0.59)."""
    scene_dir, out = strong_scene_dir, tmp_path / "def.tif"
    res = _invoke(
        [
            "run",
            *_stack(scene_dir),
            "--dem",
            str(scene_dir / "dem.tif"),
            "-o",
            str(out),
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    est, transform, crs = _read(out)
    truth, t_truth, crs_truth = _read(scene_dir / "truth_cumulative.tif")
    assert est.shape == (1, 64, 64) and est.dtype == np.float32
    assert transform == t_truth and crs == crs_truth
    raw = _read(Path(_stack(scene_dir)[-1]))[0][0] - _read(Path(_stack(scene_dir)[0]))[0][0]
    assert _rmse_up_to_a_constant(est[0], truth[0]) < 0.7 * _rmse_up_to_a_constant(raw, truth[0])
    o, t = est[0] - np.median(est[0]), truth[0] - np.median(truth[0])
    assert 0.9 < float((o * t).sum() / (t * t).sum()) < 1.1
    with rasterio.open(out) as src:
        tags = src.tags()
    assert tags["METHOD"] == "model" and tags["COMMAND_LINE"]
    assert tags["MODEL_ID"].startswith("insar-denoise")


def test_run_netcdf_series_noise_and_quicklook(scene_dir: Path, tmp_path: Path):
    nc, series, noise, png = (tmp_path / n for n in ("out.nc", "s.tif", "n.tif", "q.png"))
    res = _invoke(
        [
            "run",
            *_stack(scene_dir),
            "--dem",
            str(scene_dir / "dem.tif"),
            "-o",
            str(nc),
            "--series",
            str(series),
            "--noise",
            str(noise),
            "--quicklook",
            str(png),
            "-q",
            "--method",
            "elevation",
        ]
    )
    assert res.exit_code == 0, res.output
    ds = xr.open_dataset(nc)
    assert {"cumulative_deformation", "deformation", "noise"} <= set(ds.data_vars)
    assert ds.sizes["time"] == 10
    s = _read(series)[0]
    n = _read(noise)[0]
    disp = np.stack([_read(Path(p))[0][0] for p in _stack(scene_dir)])
    # what was removed plus what was kept gives back the input (relative to date 0), up to
    # the spatial reference: one constant per date (here the median of the valid area)
    offset = (s + n) - (disp - disp[0])
    np.testing.assert_allclose(offset, offset[:, :1, :1] + 0 * offset, atol=1e-3)
    assert ds.attrs["insar_denoise_reference"] == "median of valid area"
    np.testing.assert_allclose(np.median(ds["cumulative_deformation"].values), 0.0, atol=1e-4)
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_run_refuses_existing_output_and_leaves_it(scene_dir: Path, tmp_path: Path):
    out = tmp_path / "def.tif"
    out.write_bytes(b"keep me")
    res = CliRunner().invoke(
        main, ["run", *_stack(scene_dir), "--dem", str(scene_dir / "dem.tif"), "-o", str(out), "-q"]
    )
    assert res.exit_code == 2
    assert "already exists" in res.output and str(out) in res.output
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("model", ["default", "window_v1"])
def test_run_fewer_dates_than_the_model_needs_names_its_minimum(
    scene_dir: Path, tmp_path: Path, model: str
):
    """One line naming the model's minimum: the whole-stack default's ``min_valid_dates``, the
    window model's window."""
    from insar_denoise.models import load_model

    meta = load_model(model).metadata
    need = int(meta["min_valid_dates"] if meta.get("kind") == "stack" else meta["window"])
    out = tmp_path / "def.tif"
    stack = _stack(scene_dir)[: need - 1]
    res = CliRunner().invoke(
        main,
        ["run", *stack, "--dem", str(scene_dir / "dem.tif"), "-o", str(out), "-q"]
        + ["--model", model],
    )
    assert res.exit_code == 2
    assert f"has {need - 1} dates" in res.output
    assert f"at least {need} dates" in res.output or f"at least N={need} dates" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not out.exists() and not list(tmp_path.iterdir())


def test_run_without_dem_is_a_clear_error(scene_dir: Path, tmp_path: Path):
    res = CliRunner().invoke(main, ["run", *_stack(scene_dir), "-o", str(tmp_path / "x.tif")])
    assert res.exit_code == 2 and "--dem" in res.output


@pytest.mark.parametrize("user_value", [None, "2048"])
def test_the_cli_caps_gdals_block_cache_unless_the_user_sets_it(tmp_path, monkeypatch, user_value):
    from insar_denoise.cli.main import GDAL_CACHE_MB

    if user_value is None:
        monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    else:
        monkeypatch.setenv("GDAL_CACHEMAX", user_value)
    res = CliRunner().invoke(
        main, ["run", str(tmp_path / "none.tif"), "-o", str(tmp_path / "o.tif")]
    )
    assert res.exit_code == 2
    assert os.environ["GDAL_CACHEMAX"] == (user_value or str(GDAL_CACHE_MB))


def test_run_real_envisat_network_end_to_end(tmp_path: Path):
    ifgs = sorted(str(p) for p in (DATA / "real_envisat_nsw" / "interferograms").glob("*.tif"))
    dem = DATA / "real_envisat_nsw" / "dem.tif"
    out = tmp_path / "envisat.tif"
    res = _invoke(
        [
            "run",
            *ifgs,
            "--dem",
            str(dem),
            "-o",
            str(out),
            "--series",
            str(tmp_path / "series.tif"),
            "-q",
        ]
    )
    assert res.exit_code == 0, res.output
    est, transform, crs = _read(out)
    with rasterio.open(dem) as src:
        assert (src.crs, src.shape) == (crs, est.shape[1:])
        assert src.transform.almost_equals(transform, precision=1e-12)
    assert np.isfinite(est).mean() > 0.5
    with rasterio.open(tmp_path / "series.tif") as src:
        assert src.count == 13
        assert src.descriptions[0].startswith("2006-06-19")


def test_rio_plugin_runs_as_rio_insar_denoise():
    from rasterio.rio.main import main_group

    names = {ep.name: ep.value for ep in entry_points(group="rasterio.rio_plugins")}
    assert names.get("insar-denoise") == "insar_denoise.cli.main:main"
    res = CliRunner().invoke(main_group, ["insar-denoise", "run", "--help"])
    assert res.exit_code == 0, res.output
    assert "--dem" in res.output and "--quicklook" in res.output


def test_demo_writes_outputs_and_scores(monkeypatch, tmp_path: Path):
    import insar_denoise.demo as demo

    monkeypatch.setattr(demo, "DEMO_SIZE", 64)
    monkeypatch.setattr(demo, "DEMO_DATES", 10)
    res = _invoke(["demo", "-o", str(tmp_path / "d"), "-q"])
    assert res.exit_code == 0, res.output
    for name in (
        "deformation.tif",
        "series.tif",
        "noise.tif",
        "quicklook.png",
        "demo_metrics.json",
    ):
        assert (tmp_path / "d" / name).is_file()
    assert "zero" in res.output and "raw" in res.output and "model" in res.output


def test_run_stride_is_recorded_and_validated(scene_dir: Path, tmp_path: Path):
    """The window model records its stride; the whole-stack default refuses one (no windows)."""
    out = tmp_path / "def.tif"
    args = ["run", *_stack(scene_dir), "--dem", str(scene_dir / "dem.tif"), "-o", str(out), "-q"]
    res = CliRunner().invoke(main, [*args, "--stride", "0"])
    assert res.exit_code == 2 and "--stride" in res.output and not out.exists()
    res = CliRunner().invoke(main, [*args, "--stride", "8"])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines() == [
        "insar-denoise: error: --stride 8: this model sees the whole stack at once (no windows "
        "to stride over); leave --stride out"
    ]
    assert not list(tmp_path.iterdir())
    res = _invoke([*args, "--stride", "8", "--model", "window_v1"])
    assert res.exit_code == 0, res.output
    with rasterio.open(out) as src:
        assert src.tags()["STRIDE"] == "8"
        assert np.isfinite(src.read(1)).mean() > 0.99


def test_run_uncertainty_with_a_classical_method_fails_before_writing(
    scene_dir: Path, tmp_path: Path
):
    args = ["run", *_stack(scene_dir), "--dem", str(scene_dir / "dem.tif")]
    args += ["-o", str(tmp_path / "def.tif"), "--method", "raw"]
    res = CliRunner().invoke(main, [*args, "--uncertainty", str(tmp_path / "s.tif")])
    assert res.exit_code == 2
    assert "--uncertainty needs --method model" in res.output
    assert list(tmp_path.iterdir()) == []


def test_run_uncertainty_bands_of_the_window_model(scene_dir: Path, tmp_path: Path):
    """Band 1 (1 sigma) and band 2 (95 % half-width) on the output grid; the 95 % band is the
    wider one, and the stored calibration is for the single run the output holds."""
    sigma_path = tmp_path / "sigma.tif"
    args = ["run", *_stack(scene_dir), "--dem", str(scene_dir / "dem.tif")]
    args += ["--model", "window_v1"]
    res = _invoke([*args, "-o", str(tmp_path / "def.tif"), "--uncertainty", str(sigma_path)])
    assert res.exit_code == 0, res.output
    with rasterio.open(sigma_path) as s, rasterio.open(tmp_path / "def.tif") as d:
        assert (s.count, s.crs, s.transform) == (2, d.crs, d.transform)
        assert s.tags()["N_AUGMENTATIONS"] == "1"
        sigma, half = s.read(1), s.read(2)
    ok = np.isfinite(sigma)
    assert ok.mean() > 0.9 and np.all(half[ok] > sigma[ok]) and np.all(sigma[ok] > 0)


def test_run_uncertainty_bands_of_the_shipped_model(scene_dir: Path, tmp_path: Path):
    """The whole-stack default writes its bands: the conformal factors of its metadata times
    its sigma head's map, raised to the gate's floors (this 64 px scene is padded to the
    gate's size); the NetCDF output holds the same maps."""
    from insar_denoise.models import load_model

    cal = load_model("default").metadata["sigma_calibration"]
    sigma_path, nc = tmp_path / "sigma.tif", tmp_path / "out.nc"
    args = ["run", *_stack(scene_dir), "--dem", str(scene_dir / "dem.tif")]
    res = _invoke([*args, "-o", str(nc), "--uncertainty", str(sigma_path), "-q"])
    assert res.exit_code == 0, res.output
    with rasterio.open(sigma_path) as s:
        assert s.count == 2 and s.tags()["SIGMA_MODEL"] == "model head"
        assert s.tags()["N_AUGMENTATIONS"] == "1"
        sigma, half = s.read(1), s.read(2)
    ok = np.isfinite(sigma)
    assert ok.mean() > 0.9 and np.all(sigma[ok] > 0)
    # each band is the larger of the head's (k95 / k68 apart) and the gate's floor for it
    assert np.all(half[ok] > sigma[ok]) and cal["k95"] > cal["k68"]
    with xr.open_dataset(nc) as ds:
        np.testing.assert_allclose(ds["uncertainty"].values[ok], sigma[ok], rtol=1e-6)
        np.testing.assert_allclose(ds["uncertainty_95"].values[ok], half[ok], rtol=1e-6)


def test_run_denoise_fine_scales_flag_reaches_the_engine(scene_dir: Path, tmp_path: Path):
    """``--denoise-fine-scales`` is passed to the engine, which says what it did: this 64 px
    scene is padded to the gate's size (session 35), so the step runs and says so."""
    nc = tmp_path / "fine.nc"
    args = ["run", *_stack(scene_dir), "--dem", str(scene_dir / "dem.tif"), "-o", str(nc), "-q"]
    res = _invoke([*args, "--denoise-fine-scales"])
    assert res.exit_code == 0, res.output
    note = xr.open_dataset(nc).attrs["insar_denoise_fine_scales"]
    assert note.startswith("denoised: kept where their local power exceeds")
    plain = _invoke([*args[:-3], "-o", str(tmp_path / "plain.nc"), "-q"])
    assert plain.exit_code == 0, plain.output
    assert "insar_denoise_fine_scales" not in xr.open_dataset(tmp_path / "plain.nc").attrs
