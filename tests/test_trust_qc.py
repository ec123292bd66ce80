"""QC report and out-of-distribution checks (insar_denoise.trust.qc), library, pipeline and CLI."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from insar_denoise.cli.main import main
from insar_denoise.inference import denoise_dataset
from insar_denoise.io.scene import scene_dataset, write_scene
from insar_denoise.pipeline import run_pipeline
from insar_denoise.synth import SimConfig, simulate_scene
from insar_denoise.trust.qc import (
    OutOfDistributionWarning,
    emit_warnings,
    qc_checks,
    spectral_beta,
    write_qc_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
METADATA = {"window": 9, "sim_config": SimConfig().to_dict()}


@pytest.fixture(scope="module")
def scene() -> dict:
    """In distribution: SimConfig defaults at moderate turbulence (5 mm), 12 dates, 64 px."""
    cfg = SimConfig(size=64, n_dates=12, turbulence_std_mm=(5.0, 5.0), unwrap_prob=0.0)
    return simulate_scene(cfg, 1, source="okada", amplitude_mm=5.0)


@pytest.fixture()
def ds(scene):
    return scene_dataset(scene)[["displacement", "dem"]]


def _spacing_times(ds, factor: float):
    x, y = ds["x"].values, ds["y"].values
    out = ds.assign_coords(x=x[0] + (x - x[0]) * factor, y=y[0] + (y - y[0]) * factor)
    return out.rio.write_crs(ds.rio.crs)


def _unwrap_jump(ds):
    disp = ds["displacement"].values.copy()
    yy, xx = np.mgrid[0:64, 0:64]
    disc = (yy - 30) ** 2 + (xx - 34) ** 2 <= 12**2
    disp[6][disc] += 27.7
    return ds.copy(data={"displacement": disp, "dem": ds["dem"].values})


TRIPS = {
    "noise_high": lambda ds: ds.copy(
        data={"displacement": ds["displacement"].values * 30.0, "dem": ds["dem"].values}
    ),
    "pixel_spacing": lambda ds: _spacing_times(ds, 3.0),
    "interval": lambda ds: ds.assign_coords(
        time=ds["time"].values[0] + (ds["time"].values - ds["time"].values[0]) * 3
    ),
    "unwrapping": _unwrap_jump,
    "few_dates": lambda ds: ds.isel(time=slice(0, 9)),
}


def test_in_distribution_input_is_silent(ds):
    assert qc_checks(ds, METADATA) == []
    assert qc_checks(ds, None) == []


@pytest.mark.parametrize("code", sorted(TRIPS))
def test_each_check_is_tripped_by_its_input_only(ds, code):
    found = qc_checks(TRIPS[code](ds), METADATA)
    assert {w.code for w in found} == {code}
    assert all(w.message for w in found)


def test_the_unwrapping_warning_says_whether_the_model_path_removes_them(ds):
    from insar_denoise.inference.unwrapping import MIN_DATES

    jumped = _unwrap_jump(ds)
    assert jumped.sizes["time"] >= MIN_DATES
    (long,) = qc_checks(jumped, METADATA)
    assert "the model path removes those of single dates" in long.message
    assert MIN_DATES == 3  # the spike test needs a date after the error or two before it
    short = jumped.isel(time=[0, 6])
    (found,) = [w for w in qc_checks(short) if w.code == "unwrapping"]
    assert f"with 2 dates (the model path removes them from {MIN_DATES} on)" in found.message


def test_ranges_come_from_the_model_metadata(ds):
    """The same 270 m stack is fine for a model trained at 270 m."""
    wide = _spacing_times(ds, 3.0)
    meta = {"window": 9, "sim_config": SimConfig(pixel_spacing_m=270.0).to_dict()}
    assert qc_checks(wide, meta) == []


def test_too_few_dates_for_the_window(ds):
    (w,) = qc_checks(ds.isel(time=slice(0, 5)), METADATA)
    assert w.code == "few_dates" and "cannot run" in w.message


@pytest.mark.parametrize(
    ("n_dates", "expected"),
    [(5, "cannot run"), (8, "fewer than the shortest stacks"), (9, None), (12, None)],
)
def test_date_count_of_a_whole_stack_model(ds, n_dates, expected):
    """A stack model (no window) runs from ``min_valid_dates`` and was trained on >= 9."""
    meta = {
        "kind": "stack",
        "window": 6,  # a stack model's metadata keeps a window key; it must not be read
        "min_valid_dates": 6,
        "train_config": {"dates": [9, 72]},
        "sim_config": SimConfig().to_dict(),
    }
    found = qc_checks(ds.isel(time=slice(0, n_dates)), meta)
    if expected is None:
        assert found == []
    else:
        (w,) = found
        assert w.code == "few_dates" and expected in w.message and w.value == n_dates


def test_emitted_as_warnings(ds):
    with pytest.warns(OutOfDistributionWarning, match=r"\[noise_high\]"):
        emit_warnings(qc_checks(TRIPS["noise_high"](ds), METADATA))


@pytest.mark.parametrize("beta", [5.0 / 3.0, 8.0 / 3.0, 11.0 / 3.0])
def test_spectral_beta_of_a_power_law_field(beta):
    rng = np.random.default_rng(0)
    n = 256
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
    amp = np.where(k > 0, k, np.inf) ** (-beta / 2)
    field = np.fft.ifft2(amp * np.fft.fft2(rng.normal(size=(n, n)))).real
    assert spectral_beta(field) == pytest.approx(beta, abs=0.35)
    assert abs(spectral_beta(rng.normal(size=(n, n)))) < 0.3


def test_report_files(ds, scene, tmp_path: Path):
    result = denoise_dataset(ds, method="elevation", progress=False)
    paths = write_qc_report(ds, result, tmp_path / "qc", METADATA)
    for name in ("report.md", "qc.json", "maps.png", "noise_per_date.png"):
        assert (tmp_path / "qc" / name).is_file()
    assert paths["maps"].read_bytes()[:8] == PNG_MAGIC
    qc = json.loads(paths["qc"].read_text())
    assert qc["warnings"] == []
    assert qc["training_ranges"]["source"] == "model metadata sim_config"
    rows = qc["per_date"]
    assert len(rows) == 12 and rows[0]["std_mm"] is None
    removed = ds["displacement"].values[1:] - result["deformation"].values[1:]
    stds = [r["std_mm"] for r in rows[1:]]
    assert stds == pytest.approx([float(np.nanstd(r)) for r in removed], rel=1e-4)
    assert all(
        r["nan_share"] == pytest.approx(float(np.isnan(d).mean()))
        for r, d in zip(rows, ds["displacement"].values, strict=True)
    )
    assert all(math.isfinite(r["spectral_beta"]) for r in rows[1:])
    assert "None." in paths["report"].read_text()
    with pytest.raises(Exception, match="already exists"):
        write_qc_report(ds, result, tmp_path / "qc", METADATA)


def test_run_pipeline_and_cli_show_warnings(scene, tmp_path: Path):
    stack = tmp_path / "stack"
    write_scene(scene, stack)
    files = sorted(str(p) for p in stack.glob("disp_*.tif"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run_pipeline(
            files,
            tmp_path / "a.tif",
            dem=stack / "dem.tif",
            method="filter",
            units="m",
            report=tmp_path / "rep",
            progress=False,
        )
    assert [w.code for w in res.warnings] == ["noise_high"]
    assert any(issubclass(w.category, OutOfDistributionWarning) for w in caught)
    assert (tmp_path / "rep" / "report.md").is_file()
    assert "noise_high" in (tmp_path / "rep" / "report.md").read_text()
    result = CliRunner().invoke(
        main,
        [
            "run",
            *files,
            "--dem",
            str(stack / "dem.tif"),
            "-o",
            str(tmp_path / "b.tif"),
            "--method",
            "filter",
            "--units",
            "m",
            "--report",
            str(tmp_path / "rep2"),
            "-q",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0
    assert "insar-denoise: warning: " in result.stderr and ": [noise_high]" in result.stderr
    assert json.loads((tmp_path / "rep2" / "qc.json").read_text())["warnings"][0]["code"] == (
        "noise_high"
    )


def test_report_counts_pixels_below_min_valid_dates(ds, tmp_path: Path):
    disp = ds["displacement"].values.copy()
    disp[3:5, 10, 10] = np.nan  # 2 of 12 dates missing: kept
    disp[2:, 20, 20] = np.nan  # 10 of 12 dates missing: dropped
    gappy = ds.assign(displacement=(("time", "y", "x"), disp))
    result = denoise_dataset(gappy, method="elevation", progress=False)
    paths = write_qc_report(gappy, result, tmp_path / "qc", METADATA)
    qc = json.loads(paths["qc"].read_text())
    n_data = int(np.isfinite(disp).any(0).sum())
    assert qc["pixels"] == {
        "with_data": n_data,
        "kept": n_data - 1,
        "below_min_valid_dates": 1,
        "min_valid_dates": 6,
    }
    text = paths["report"].read_text()
    assert "pixels valid on < 6 dates: 1 (NaN in every output)" in text
    assert "| input NaN share |" in text
