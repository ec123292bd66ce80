"""``insar-denoise simulate`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from insar_denoise.cli.main import main
from insar_denoise.io import open_stack
from insar_denoise.synth import SimConfig


def _run(out: Path, *extra: str):
    args = ["simulate", "-o", str(out), "--size", "48", "--dates", "5", "--seed", "3", *extra]
    return CliRunner().invoke(main, args)


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "stack"
    result = _run(out, "--source", "okada", "--amplitude", "12")
    assert result.exit_code == 0, result.output
    return out


def test_files_and_georeference(written: Path) -> None:
    disp = sorted(written.glob("disp_*.tif"))
    assert [p.name for p in disp] == [
        "disp_20200101.tif",
        "disp_20200113.tif",
        "disp_20200125.tif",
        "disp_20200206.tif",
        "disp_20200218.tif",
    ]
    for name in ["dem.tif", "truth_cumulative.tif", *[p.name for p in disp]]:
        with rasterio.open(written / name) as src:
            assert src.crs.to_epsg() == 32616
            assert src.transform == rasterio.Affine(90.0, 0.0, 745000.0, 0.0, -90.0, 4055000.0)
            assert (src.count, src.height, src.width) == (1, 48, 48)
    with rasterio.open(written / "truth_series.tif") as src:
        assert src.count == 5
        assert src.descriptions[0] == "2020-01-01" and src.descriptions[-1] == "2020-02-18"
        series = src.read()
        tags = src.tags()
    with rasterio.open(written / "truth_cumulative.tif") as src:
        cumulative = src.read(1)
    np.testing.assert_allclose(cumulative, series[-1] - series[0], atol=1e-5)
    assert np.abs(cumulative).max() == pytest.approx(12.0, rel=1e-5)
    assert tags["SIM_SOURCE"].startswith("okada") and tags["SIM_SEED"] == "3"
    assert SimConfig.from_dict(json.loads(tags["SIM_CONFIG"])).size == 48
    with rasterio.open(disp[1]) as src:
        assert src.tags()["TIFFTAG_DATETIME"] == "2020:01:13 00:00:00"


def test_round_trip_through_open_stack(written: Path) -> None:
    ds = open_stack(sorted(written.glob("disp_*.tif")), dem=written / "dem.tif").load()
    assert ds["displacement"].shape == (5, 48, 48)
    assert str(ds.rio.crs) == "EPSG:32616"
    first = ds["displacement"].isel(time=0).values
    assert np.all((first == 0) | np.isnan(first))
    with rasterio.open(written / "dem.tif") as src:
        np.testing.assert_allclose(ds["dem"].values, src.read(1), rtol=1e-5, atol=1e-3)
    series = open_stack(written / "truth_series.tif").load()
    np.testing.assert_array_equal(series["time"].values, ds["time"].values)


def test_same_seed_same_files_and_overwrite(written: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert _run(again, "--source", "okada", "--amplitude", "12").exit_code == 0
    for name in ("disp_20200218.tif", "dem.tif"):
        with rasterio.open(written / name) as a, rasterio.open(again / name) as b:
            np.testing.assert_array_equal(a.read(), b.read())
    refused = _run(again)
    assert refused.exit_code == 2
    assert "already exists" in refused.output
    assert _run(again, "--overwrite", "--source", "none").exit_code == 0
    with rasterio.open(again / "truth_cumulative.tif") as src:
        assert np.all(src.read(1) == 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "4"], "size"),
        (["--amplitude", "-1"], "amplitude"),
        (["--start-date", "yesterday"], "start-date"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["simulate", "-o", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output
