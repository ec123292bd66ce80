"""Atomic file writes (stdlib only, so the torch-only layers can use it): write a temporary
file beside the target, then rename it over the target."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp)`` on a temporary file in ``path``'s folder (created if missing), then
    rename it over ``path`` (``os.replace``: atomic on one file system); the temporary file is
    removed if ``write`` fails. Returns ``path``. User outputs (folders such as ``.zarr``,
    refusal to overwrite, GDAL sidecars, leftovers of killed runs) go through
    :func:`insar_denoise.io.targets.atomic_output` instead, which the torch-only layers below
    ``io`` cannot import."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
