"""Done and failure records: what makes a batch frame finished, and resumable.

Next to each frame's main output ``<output>`` the batch keeps

- ``<output>.insar-denoise.json``: the *done* record, written atomically only after every
  output of the frame is complete. It holds the frame's fingerprint (input and DEM paths,
  sizes and mtimes, the model file's SHA-256 when the model is used, the run options and
  the output paths) and the size and mtime of each output written.
- ``<output>.insar-denoise.failed.json``: the *failure* record (fingerprint, reason,
  traceback) of the last failed attempt.

A frame is finished when its done record exists, its fingerprint equals the frame's
current one, and every output still has the recorded size and mtime. Anything else (no
record, a changed input, option or model, an output replaced or deleted) means redo.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

from insar_denoise._version import __version__
from insar_denoise.batch.manifest import FrameSpec

RECORD_SUFFIX = ".insar-denoise.json"
FAILED_SUFFIX = ".insar-denoise.failed.json"
RECORD_FORMAT = 1

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def record_path(frame: FrameSpec) -> Path:
    """The done record of ``frame``: ``<output>.insar-denoise.json``."""
    return Path(frame.outputs["output"] + RECORD_SUFFIX)


def failure_path(frame: FrameSpec) -> Path:
    """The failure record of ``frame``: ``<output>.insar-denoise.failed.json``."""
    return Path(frame.outputs["output"] + FAILED_SUFFIX)


def path_fingerprint(path: str | Path) -> dict[str, Any]:
    """Path, size (bytes) and mtime (ns) of a file; for a folder (Zarr), totals over its files.

    Raises
    ------
    OSError
        ``path`` does not exist.
    """
    path = Path(path)
    stat = path.stat()
    if not path.is_dir():
        return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    files = [p.stat() for p in path.rglob("*") if p.is_file()]
    return {
        "path": str(path),
        "size": sum(s.st_size for s in files),
        "mtime_ns": max([stat.st_mtime_ns, *(s.st_mtime_ns for s in files)]),
        "files": len(files),
    }


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, cached per (path, size, mtime) within the process."""
    fp = path_fingerprint(path)
    key = (fp["path"], fp["size"], fp["mtime_ns"])
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def _model_fingerprint(model: str) -> dict[str, Any]:
    if model == "default":
        from insar_denoise.models.registry import default_model_path

        path = default_model_path()
        return {"name": "default", "sha256": file_sha256(path) if path.is_file() else None}
    return {"path": model, "sha256": file_sha256(model)}


def frame_fingerprint(frame: FrameSpec) -> dict[str, Any]:
    """Everything a frame's result depends on, as a JSON-normalised dict.

    The model (its file hash) counts only when the method is ``"model"``: a classical run is
    not redone because the model changed.

    Raises
    ------
    OSError
        An input, the DEM or the model file has vanished since the manifest was validated.
    """
    options = dict(sorted(frame.options.items()))
    method = options.get("method", "model")
    fingerprint = {
        "inputs": [path_fingerprint(p) for p in frame.inputs],
        "dem": path_fingerprint(frame.dem),
        "options": options,
        "model": _model_fingerprint(options.get("model", "default")) if method == "model" else None,
        "outputs": dict(sorted(frame.outputs.items())),
    }
    return json.loads(json.dumps(fingerprint))


def outputs_fingerprint(outputs: dict[str, str | Path]) -> dict[str, Any]:
    """Size and mtime of each written output (see :func:`path_fingerprint`)."""
    return {kind: path_fingerprint(path) for kind, path in sorted(outputs.items())}


def write_json_atomic(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as JSON under a temporary name in the same folder, then rename."""
    return write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=False) + "\n")


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to a temporary file next to ``path`` and rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_record(path: str | Path) -> dict[str, Any] | None:
    """A record as a dict, or None when missing, unreadable or not one of ours."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        return None
    return data


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def write_done(
    frame: FrameSpec,
    fingerprint: dict[str, Any],
    outputs: dict[str, str | Path],
    result: dict[str, Any],
) -> Path:
    """Record ``frame`` as finished; call only once all its outputs are complete."""
    payload = {
        "format": RECORD_FORMAT,
        "frame": frame.name,
        "status": "done",
        "finished": _now(),
        "version": __version__,
        "result": result,
        "written": outputs_fingerprint(outputs),
        "fingerprint": fingerprint,
    }
    return write_json_atomic(record_path(frame), payload)


def write_failure(
    frame: FrameSpec, fingerprint: dict[str, Any] | None, reason: str, traceback: str = ""
) -> Path:
    """Record the failed attempt of ``frame`` (its fingerprint may be None if unknown)."""
    payload = {
        "format": RECORD_FORMAT,
        "frame": frame.name,
        "status": "failed",
        "failed": _now(),
        "version": __version__,
        "reason": reason,
        "traceback": traceback,
        "fingerprint": fingerprint,
    }
    return write_json_atomic(failure_path(frame), payload)


def finished_record(frame: FrameSpec, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The done record of ``frame`` if it is still valid, else None.

    Valid: same fingerprint, and every output recorded still exists with its size and mtime.
    """
    record = read_record(record_path(frame))
    if record is None or record.get("fingerprint") != fingerprint:
        return None
    written = record.get("written") or {}
    if set(written) != set(frame.outputs):
        return None
    try:
        current = outputs_fingerprint({k: v["path"] for k, v in written.items()})
    except (OSError, KeyError, TypeError):
        return None
    return record if current == written else None


def failed_record(frame: FrameSpec, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """The failure record of ``frame`` if it was made with the same fingerprint, else None."""
    record = read_record(failure_path(frame))
    if record is None or record.get("fingerprint") != fingerprint:
        return None
    return record
