"""Batch runs: failures isolated, resumable, recomputed on change, on a loopback dask cluster."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from click.testing import CliRunner
from rasterio.transform import from_origin

from insar_denoise.batch import run_batch
from insar_denoise.batch.records import FAILED_SUFFIX, RECORD_SUFFIX
from insar_denoise.cli.main import main
from insar_denoise.models import build_untrained, export_model
from insar_denoise.pipeline import run_pipeline

SHAPE = (32, 32)
N_DATES = 10
TRANSFORM = from_origin(745000.0, 4055000.0, 90.0, 90.0)


def write_tif(path: Path, data: np.ndarray) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=1,
        height=data.shape[0],
        width=data.shape[1],
        dtype="float32",
        crs="EPSG:32616",
        transform=TRANSFORM,
        nodata=np.nan,
    ) as dst:
        dst.write(data.astype("float32"), 1)
        dst.set_band_unit(1, "mm")
    return path


def write_frame(root: Path, name: str, seed: int) -> Path:
    """A frame: 10 dates of 32 x 32 px (mm, deformation + topography-correlated delay) + DEM."""
    rng = np.random.default_rng(seed)
    folder = root / name
    folder.mkdir(parents=True)
    dem = 400.0 + 300.0 * rng.random(SHAPE)
    write_tif(folder / "dem.tif", dem)
    for i in range(N_DATES):
        delay = 0.01 * rng.normal() * (dem - dem.mean())
        disp = 0.5 * i + delay + rng.normal(0.0, 1.0, SHAPE)
        write_tif(folder / f"S1_{20210305 + i:08d}.tif", disp)
    return folder


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Three frames (a, b, c), a small untrained model and a manifest dict in frames.yaml."""
    for seed, name in enumerate("abc"):
        write_frame(tmp_path, name, seed)
    module = build_untrained(window=5, channels=(4, 8, 8, 8), seed=1)
    export_model(module, module.insar_metadata, tmp_path / "model.pt")
    manifest = {
        "defaults": {
            "method": "elevation",
            "model": "model.pt",
            "device": "cpu",
            "tile": 32,
            "overlap": 8,
        },
        "frames": [
            {"name": n, "stack": f"{n}/S1_*.tif", "dem": f"{n}/dem.tif", "output": f"out/{n}.tif"}
            for n in "abc"
        ],
    }
    manifest["frames"][0]["series"] = "out/a_series.tif"
    (tmp_path / "frames.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return tmp_path


def manifest_of(project: Path) -> dict:
    return yaml.safe_load((project / "frames.yaml").read_text())


def save(project: Path, manifest: dict) -> Path:
    path = project / "frames.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def stamps(project: Path) -> dict[str, int]:
    """mtime (ns) of every output and record."""
    return {p.name: p.stat().st_mtime_ns for p in sorted((project / "out").iterdir())}


def statuses(results) -> dict[str, str]:
    return {r.frame: r.status for r in results}


def read_band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_cluster_batch_isolates_a_corrupt_frame(project):
    """2 worker processes on 127.0.0.1; frame a uses the model, c has a garbage file."""
    manifest = manifest_of(project)
    manifest["frames"][0]["method"] = "model"
    save(project, manifest)
    (project / "c" / "S1_20210308.tif").write_bytes(b"this is not a GeoTIFF")
    result = CliRunner().invoke(
        main, ["batch", str(project / "frames.yaml"), "--workers", "2", "-q"]
    )
    assert result.exit_code == 1, result.output
    assert "S1_20210308.tif" in result.output  # the reason, on stderr
    summary = json.loads((project / "summary.json").read_text())
    rows = {row["frame"]: row for row in summary["frames"]}
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    assert rows["a"]["status"] == rows["b"]["status"] == "done"
    assert rows["c"]["status"] == "failed" and "S1_20210308.tif" in rows["c"]["reason"]
    assert rows["a"]["dates"] == N_DATES and rows["a"]["pixels"] == SHAPE[0] * SHAPE[1]
    csv_lines = (project / "summary.csv").read_text().splitlines()
    assert csv_lines[0] == "frame,status,reason,wall_s,pixels,dates,outputs"
    assert [line.split(",")[:2] for line in csv_lines[1:]] == [
        ["a", "done"],
        ["b", "done"],
        ["c", "failed"],
    ]
    cumulative = read_band(project / "out/a.tif")
    assert cumulative.shape == SHAPE and np.isfinite(cumulative).all()
    record = json.loads((project / ("out/a.tif" + RECORD_SUFFIX)).read_text())
    assert record["fingerprint"]["model"]["sha256"]  # the model file is part of it
    assert (project / ("out/c.tif" + FAILED_SUFFIX)).is_file()
    assert not (project / "out/c.tif").exists()
    assert not (project / ("out/c.tif" + RECORD_SUFFIX)).exists()


def test_restart_skips_finished_frames_and_redoes_unrecorded_ones(project):
    results = run_batch(project / "frames.yaml", progress=False)
    assert statuses(results) == {"a": "done", "b": "done", "c": "done"}
    assert results[0].outputs["series"] == str(project / "out/a_series.tif")
    # the batch writes exactly what a single run of the same frame writes
    inputs = sorted(str(p) for p in (project / "b").glob("S1_*.tif"))
    direct = run_pipeline(
        inputs,
        project / "direct_b.tif",
        dem=project / "b/dem.tif",
        method="elevation",
        progress=False,
    )
    np.testing.assert_array_equal(
        read_band(project / "out/b.tif"), read_band(direct.outputs["output"])
    )
    before = stamps(project)
    # a batch killed after b's outputs were renamed but before its record was written
    (project / ("out/b.tif" + RECORD_SUFFIX)).unlink()
    results = run_batch(project / "frames.yaml", progress=False)
    assert statuses(results) == {"a": "skipped", "b": "done", "c": "skipped"}
    after = stamps(project)
    for name in ("a.tif", "a_series.tif", "c.tif", "a.tif" + RECORD_SUFFIX):
        assert after[name] == before[name]
    assert after["b.tif"] != before["b.tif"]
    assert (project / ("out/b.tif" + RECORD_SUFFIX)).is_file()
    assert results[0].dates == N_DATES  # skipped frames still report their size


def test_changed_input_output_or_parameter_is_redone(project):
    path = project / "frames.yaml"
    run_batch(path, progress=False)
    first = stamps(project)
    later = first["a.tif"] + 10**9
    os.utime(project / "a" / "S1_20210310.tif", ns=(later, later))  # touch an input of a
    (project / "out/c.tif").write_bytes(b"replaced by someone")  # c's output replaced
    results = run_batch(path, progress=False)
    assert statuses(results) == {"a": "done", "b": "skipped", "c": "done"}
    assert read_band(project / "out/c.tif").shape == SHAPE
    manifest = manifest_of(project)
    manifest["frames"][1]["overlap"] = 4  # a changed parameter of b
    save(project, manifest)
    results = run_batch(path, progress=False)
    assert statuses(results) == {"a": "skipped", "b": "done", "c": "skipped"}
    record = json.loads((project / ("out/b.tif" + RECORD_SUFFIX)).read_text())
    assert record["fingerprint"]["options"]["overlap"] == 4


def test_changed_model_redoes_only_model_frames(project):
    manifest = manifest_of(project)
    manifest["frames"][0]["method"] = "model"
    del manifest["frames"][2]
    path = save(project, manifest)
    results = run_batch(path, progress=False)
    assert statuses(results) == {"a": "done", "b": "done"}
    record = json.loads((project / ("out/a.tif" + RECORD_SUFFIX)).read_text())
    assert record["fingerprint"]["model"]["path"] == str(project / "model.pt")
    assert record["fingerprint"]["model"]["sha256"]
    assert (
        json.loads((project / ("out/b.tif" + RECORD_SUFFIX)).read_text())["fingerprint"]["model"]
        is None
    )  # a classical run does not depend on the model
    module = build_untrained(window=5, channels=(4, 8, 8, 8), seed=2)
    export_model(module, module.insar_metadata, project / "model.pt")
    results = run_batch(path, progress=False)
    assert statuses(results) == {"a": "done", "b": "skipped"}


def test_failed_frames_are_skipped_until_retried_or_changed(project):
    path = project / "frames.yaml"
    bad = project / "c" / "S1_20210308.tif"
    good = bad.read_bytes()
    bad.write_bytes(b"garbage")
    failure = project / ("out/c.tif" + FAILED_SUFFIX)
    results = run_batch(path, progress=False)
    assert statuses(results)["c"] == "failed"
    stamp = failure.stat().st_mtime_ns
    results = run_batch(path, progress=False)
    assert statuses(results) == {"a": "skipped", "b": "skipped", "c": "failed"}
    assert "earlier run" in results[2].reason and "S1_20210308.tif" in results[2].reason
    assert failure.stat().st_mtime_ns == stamp  # not re-run
    results = run_batch(path, progress=False, retry_failed=True)
    assert statuses(results)["c"] == "failed" and "earlier run" not in results[2].reason
    assert failure.stat().st_mtime_ns != stamp  # re-run
    bad.write_bytes(good)  # fixed input: changed fingerprint, run without --retry-failed
    results = run_batch(path, progress=False)
    assert statuses(results) == {"a": "skipped", "b": "skipped", "c": "done"}
    assert not failure.exists()


def test_cli_exit_codes(project):
    runner = CliRunner()
    path = str(project / "frames.yaml")
    ok = runner.invoke(main, ["batch", path, "-q", "--summary-dir", str(project / "sums")])
    assert ok.exit_code == 0, ok.output
    assert (project / "sums" / "summary.json").is_file()
    again = runner.invoke(main, ["batch", path])
    assert again.exit_code == 0 and "0 done, 3 skipped, 0 failed" in again.output
    manifest = manifest_of(project)
    manifest["frames"][1]["colour"] = "red"
    manifest["frames"][2]["output"] = "out/a.tif"
    manifest["frames"].append(
        {"name": "d", "stack": "d/*.tif", "dem": "d/dem.tif", "output": "out/d.tif"}
    )
    save(project, manifest)
    before = stamps(project)
    bad = runner.invoke(main, ["batch", path])
    assert bad.exit_code == 2
    for text in (
        "unknown key 'colour'",
        "is also written by",
        "'d/*.tif' matches no file",
        "DEM 'd/dem.tif' not found",
        "4 problem(s)",
    ):
        assert text in bad.output
    assert stamps(project) == before  # nothing ran
    assert runner.invoke(main, ["batch", path, "--check"]).exit_code == 2


def test_batch_killed_after_outputs_before_record_redoes_the_frame(project, monkeypatch):
    import insar_denoise.pipeline as pipeline

    manifest = manifest_of(project)
    manifest["frames"] = manifest["frames"][1:2]  # frame b only
    path = save(project, manifest)
    real = pipeline.run_pipeline

    def killed_after_writing(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt  # the user kills the batch right after the outputs are renamed

    monkeypatch.setattr(pipeline, "run_pipeline", killed_after_writing)
    with pytest.raises(KeyboardInterrupt):
        run_batch(path, progress=False)
    assert (project / "out/b.tif").is_file()
    assert not (project / ("out/b.tif" + RECORD_SUFFIX)).exists()  # does not look finished
    assert not (project / "summary.json").exists()
    monkeypatch.setattr(pipeline, "run_pipeline", real)
    assert statuses(run_batch(path, progress=False)) == {"b": "done"}
    assert statuses(run_batch(path, progress=False)) == {"b": "skipped"}


def test_manifest_honours_every_run_option(project):
    """Options the manifest lacked before RunOptions (stride, ref_yx, min_valid_dates,
    uncertainty, report) reach the run: the batch output equals a direct run with them."""
    manifest = manifest_of(project)
    manifest["defaults"]["method"] = "model"
    frame = manifest["frames"][1]
    frame.update(
        stride=2,
        ref_yx=[3, 4],
        min_valid_dates=6,
        uncertainty="out/b_sigma.tif",
        report="out/b_report",
    )
    manifest["frames"] = [frame]
    results = run_batch(save(project, manifest), progress=False)
    assert statuses(results) == {"b": "done"}, results[0].reason
    inputs = sorted(str(p) for p in (project / "b").glob("S1_*.tif"))
    direct = run_pipeline(
        inputs,
        project / "direct_b.tif",
        dem=project / "b/dem.tif",
        uncertainty=project / "direct_sigma.tif",
        model=project / "model.pt",
        device="cpu",
        tile=32,
        overlap=8,
        stride=2,
        ref_yx=(3, 4),
        min_valid_dates=6,
        progress=False,
    )
    out = read_band(project / "out/b.tif")
    np.testing.assert_array_equal(out, read_band(direct.outputs["output"]))
    assert out[3, 4] == 0.0  # referred to the pixel
    assert direct.attrs["insar_denoise_stride"] == 2
    assert direct.attrs["insar_denoise_min_valid_dates"] == 6
    with rasterio.open(project / "out/b.tif") as src:
        assert src.tags()["STRIDE"] == "2" and src.tags()["REFERENCE"].startswith("yx=3,4")
    with rasterio.open(project / "out/b_sigma.tif") as src:
        assert src.count == 2
        np.testing.assert_array_equal(src.read(1), read_band(project / "direct_sigma.tif"))
    assert (project / "out/b_report/report.md").is_file()
