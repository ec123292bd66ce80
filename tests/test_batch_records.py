"""Done/failure records: fingerprints of files and folders, atomic writes, validity rules."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from insar_denoise.batch.manifest import FrameSpec
from insar_denoise.batch.records import (
    failed_record,
    file_sha256,
    finished_record,
    frame_fingerprint,
    path_fingerprint,
    read_record,
    record_path,
    write_done,
    write_failure,
    write_json_atomic,
)


@pytest.fixture
def frame(tmp_path: Path) -> FrameSpec:
    inputs = []
    for i in range(3):
        path = tmp_path / f"in_{i}.tif"
        path.write_bytes(bytes([i]) * (10 + i))
        inputs.append(str(path))
    (tmp_path / "dem.tif").write_bytes(b"dem")
    (tmp_path / "model.pt").write_bytes(b"weights")
    outputs = {"output": str(tmp_path / "out.tif"), "series": str(tmp_path / "series.zarr")}
    options = {"method": "model", "model": str(tmp_path / "model.pt"), "tile": 64}
    return FrameSpec("f", tuple(inputs), str(tmp_path / "dem.tif"), outputs, options)


def write_outputs(frame: FrameSpec) -> None:
    Path(frame.outputs["output"]).write_bytes(b"cumulative")
    store = Path(frame.outputs["series"])
    (store / "deformation").mkdir(parents=True, exist_ok=True)
    (store / "deformation" / "0.0.0").write_bytes(b"chunk")


def test_file_fingerprint_and_hash(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc" * 1000)
    fp = path_fingerprint(path)
    assert fp == {"path": str(path), "size": 3000, "mtime_ns": path.stat().st_mtime_ns}
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()
    path.write_bytes(b"abd" * 1000)  # same size, new content and mtime: new hash
    os.utime(path, ns=(fp["mtime_ns"] + 10**9, fp["mtime_ns"] + 10**9))
    assert file_sha256(path) == hashlib.sha256(b"abd" * 1000).hexdigest()


def test_folder_fingerprint_follows_its_files(tmp_path):
    store = tmp_path / "x.zarr"
    (store / "v").mkdir(parents=True)
    (store / "v" / "0").write_bytes(b"12345")
    (store / ".zattrs").write_bytes(b"{}")
    fp = path_fingerprint(store)
    assert fp["size"] == 7 and fp["files"] == 2
    (store / "v" / "1").write_bytes(b"67")
    assert path_fingerprint(store)["files"] == 3


def test_done_record_is_valid_until_something_changes(frame):
    write_outputs(frame)
    fingerprint = frame_fingerprint(frame)
    assert fingerprint["model"]["sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert finished_record(frame, fingerprint) is None  # outputs but no record: not finished
    write_done(frame, fingerprint, frame.outputs, {"pixels": 4, "dates": 3})
    assert finished_record(frame, fingerprint)["result"] == {"pixels": 4, "dates": 3}
    assert finished_record(frame, frame_fingerprint(frame)) is not None
    other = FrameSpec(
        frame.name, frame.inputs, frame.dem, frame.outputs, {**frame.options, "tile": 32}
    )
    assert finished_record(other, frame_fingerprint(other)) is None  # changed option
    (Path(frame.outputs["series"]) / "deformation" / "0.0.0").write_bytes(b"partial")
    assert finished_record(frame, fingerprint) is None  # an output changed after the record


def test_classical_methods_ignore_the_model(frame):
    classical = FrameSpec(
        frame.name, frame.inputs, frame.dem, frame.outputs, {**frame.options, "method": "elevation"}
    )
    before = frame_fingerprint(classical)
    Path(frame.options["model"]).write_bytes(b"other weights")
    assert before["model"] is None and frame_fingerprint(classical) == before


def test_failure_record_matches_only_its_fingerprint(frame):
    fingerprint = frame_fingerprint(frame)
    write_failure(frame, fingerprint, "bad file", "Traceback ...")
    assert failed_record(frame, fingerprint)["reason"] == "bad file"
    Path(frame.inputs[0]).write_bytes(b"fixed, and longer than before")
    assert failed_record(frame, frame_fingerprint(frame)) is None


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    path = write_json_atomic(tmp_path / "r.json", {"format": 1, "x": [1, 2]})
    assert read_record(path) == {"format": 1, "x": [1, 2]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
    path.write_text("{truncated")
    assert read_record(path) is None


def test_record_sits_next_to_the_output(frame):
    assert record_path(frame) == Path(frame.outputs["output"] + ".insar-denoise.json")
