"""``insar-denoise evaluate`` through click's CliRunner, and ``scripts/results_table.py``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
import xarray as xr
from click.testing import CliRunner

from insar_denoise.cli.main import main
from insar_denoise.evaluation import run_benchmark
from insar_denoise.evaluation.report_common import json_ready
from insar_denoise.io import write_geotiff
from insar_denoise.models import build_untrained, export_model, load_model
from insar_denoise.models.normalization import deplane
from insar_denoise.scoring import benchmark_scenes as scn
from insar_denoise.synth import SimConfig, simulate_batch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "results_table.py"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    scripted = build_untrained(window=5, channels=(4, 8, 8, 8))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    return export_model(scripted, scripted.insar_metadata, path)


def _invoke(*args) -> object:
    return CliRunner().invoke(main, ["evaluate", *map(str, args)])


@pytest.fixture(scope="module")
def cli_report(model_path, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "report"
    res = _invoke(
        "--suite",
        "v1",
        "--model",
        model_path,
        "--n",
        2,
        "--n-tune",
        1,
        "--size",
        32,
        "--seed",
        7,
        "-o",
        folder,
        "-q",
    )
    assert res.exit_code == 0, res.output
    return folder


def test_evaluate_writes_report_and_is_deterministic(cli_report, model_path) -> None:
    names = ("report.md", "metrics.json", "examples.png", "rmse_vs_amplitude.png")
    for name in (*names, "corr_vs_amplitude.png"):
        assert (cli_report / name).stat().st_size > 0, name
    written = json.loads((cli_report / "metrics.json").read_text())
    assert written["seed"] == 7 and written["n_per_amplitude"] == 2 and written["size_px"] == 32
    # a second run with the same seed, in process, gives the same numbers
    again = run_benchmark(load_model(model_path), n_per_amplitude=2, seed=7, size=32, n_tune=1)
    again = json_ready(again.metrics)
    for key in ("groups", "detection_threshold_mm", "false_positive_p99_mm", "sigma_tuning"):
        assert written[key] == again[key], key
    other = run_benchmark(None, n_per_amplitude=2, seed=8, size=32, window=5, n_tune=1)
    assert json_ready(other.metrics)["groups"]["all"] != again["groups"]["all"]


def test_evaluate_refuses_existing_report_without_overwrite(cli_report, model_path) -> None:
    a = cli_report
    res = _invoke("--suite", "v1", "--model", model_path, "--n", 1, "--size", 32, "-o", a)
    assert res.exit_code == 2
    assert "--overwrite" in res.output


def _script():
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_table_script(cli_report, tmp_path, capsys) -> None:
    script = _script()
    metrics = cli_report / "metrics.json"
    assert script.main([str(metrics)]) == 0
    table = capsys.readouterr().out
    for method in scn.METHODS:
        assert f"| {method} |" in table
    readme = tmp_path / "README.md"
    readme.write_text(
        "# T\n\nbefore\n<!-- results-table:start -->\nSTALE\n<!-- results-table:end -->\nafter\n"
    )
    assert script.main([str(metrics), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert "STALE" not in text and text.startswith("# T\n\nbefore\n") and text.endswith("after\n")
    assert "<!-- results-table:start -->\n" + table.strip() + "\n<!-- results-table:end -->" in text
    # idempotent: a second update leaves the README unchanged
    assert script.main([str(metrics), "--readme", str(readme)]) == 0
    assert readme.read_text() == text
    no_markers = tmp_path / "plain.md"
    no_markers.write_text("# nothing\n")
    assert script.main([str(metrics), "--readme", str(no_markers)]) == 2
    assert "results-table:start" in capsys.readouterr().err
    assert no_markers.read_text() == "# nothing\n"


def _write_stack(folder: Path, amplitude_mm: float = 20.0) -> tuple[Path, Path, Path]:
    """One simulated scene written as a multi-band GeoTIFF, its DEM and its truth map."""
    cfg = SimConfig(
        size=48,
        n_dates=7,
        amplitude_mm=(amplitude_mm, amplitude_mm),
        mogi_depth_km=(1.0, 1.0),
        turbulence_std_mm=(0.5, 0.5),
        stratified=False,
        holes_prob=0.0,
        unwrap_prob=0.0,
    )
    batch = simulate_batch(cfg.with_source("mogi"), 1, generator=torch.Generator().manual_seed(5))
    y = 4_000_000.0 - 90.0 * (np.arange(48) + 0.5)
    x = 500_000.0 + 90.0 * (np.arange(48) + 0.5)
    times = pd.date_range("2021-01-01", periods=7, freq="12D")
    coords = {"y": y, "x": x}
    disp = xr.DataArray(
        batch.displacement[0].numpy(),
        dims=("time", "y", "x"),
        coords={"time": times, **coords},
        attrs={"units": "mm"},
    )
    dem = xr.DataArray(batch.dem[0].numpy(), dims=("y", "x"), coords=coords, attrs={"units": "m"})
    truth = xr.DataArray(
        batch.cumulative[0].numpy(), dims=("y", "x"), coords=coords, attrs={"units": "mm"}
    )
    paths = []
    for name, da in (("disp.tif", disp), ("dem.tif", dem), ("truth_cumulative.tif", truth)):
        paths.append(write_geotiff(da.rio.write_crs("EPSG:32616"), folder / name))
    return paths[0], paths[1], paths[2]


def test_evaluate_with_truth_on_a_simulated_stack(tmp_path, model_path) -> None:
    disp, dem, truth = _write_stack(tmp_path)
    out = tmp_path / "rep"
    res = _invoke(
        "--stack",
        disp,
        "--dem",
        dem,
        "--truth",
        truth,
        "--model",
        model_path,
        "--sigma",
        3,
        "-o",
        out,
        "-q",
    )
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["kind"] == "stack" and m["n_dates"] == 7 and m["shape"] == [48, 48]
    assert m["methods"] == ["model", "zero", "raw", "elevation", "filter", "stack", "best"]
    assert m["model"]["id"].startswith("insar-denoise-") and m["sigma_px"] == 3.0
    assert all(np.isfinite(m["rmse_mm"][k]) for k in m["methods"])
    # a shallow 20 mm Mogi source under 0.5 mm turbulence: the raw map already matches the
    # truth map (a flipped or shifted truth grid would not)
    assert m["corr"]["raw"] > 0.8
    assert m["snr_gain_db"]["raw"] == 0.0
    # independent reference: the all-zero map's RMSE is the RMS of the de-planed truth
    with rasterio.open(truth) as src:
        cum = torch.from_numpy(src.read(1).astype("float32"))
    target = deplane(cum[None], torch.ones((1, *cum.shape), dtype=torch.bool))[0].double()
    assert m["rmse_mm"]["zero"] == pytest.approx(float(target.pow(2).mean().sqrt()), rel=1e-4)
    assert "| model |" in (out / "report.md").read_text()
    assert (out / "examples.png").stat().st_size > 0


def test_stack_and_truth_go_together(tmp_path) -> None:
    res = _invoke("--stack", "x.tif", "--model", "none", "-o", tmp_path / "r")
    assert res.exit_code == 2 and "--truth" in res.output
