"""Output paths: checks before any work, atomic writes, leftovers of killed writes."""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from insar_denoise.errors import OutputError

log = logging.getLogger(__name__)


def _remove(path: Path) -> None:
    """Remove a file or a folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_folder(folder: str | Path, label: str | Path | None = None) -> Path:
    """Fail fast when files cannot be created in ``folder`` (or, while it does not exist
    yet, in its nearest existing ancestor, where it would be created); return it.

    Creates and removes a hidden probe file, so the answer holds for root and read-only
    mounts alike. ``label`` (default ``folder``) starts the error message.

    Raises
    ------
    OutputError
        A path component is a file, or the folder is not writable.
    """
    folder = Path(folder)
    label = folder if label is None else label
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{label}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".insar-denoise-probe-", dir=existing)
    except OSError as exc:
        raise OutputError(
            f"{label}: cannot write in folder {existing} ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return folder


def check_target(path: str | Path, overwrite: bool = False, *, create_parent: bool = False) -> Path:
    """Fail fast when ``path`` cannot be written; return it as a Path.

    ``create_parent``: a missing folder is fine when its own parent exists (the caller
    creates it before writing, e.g. with :func:`make_parent`).

    Raises
    ------
    OutputError
        The output exists and ``overwrite`` is False, its folder does not exist (or is a
        file), or files cannot be created there.
    """
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputError(f"{path}: already exists (pass overwrite=True)")
    folder = path.parent
    if not folder.is_dir():
        if folder.exists():
            raise OutputError(f"{path}: {folder} is a file, not a folder")
        if not (create_parent and folder.parent.is_dir()):
            raise OutputError(f"{path}: folder {folder} does not exist")
    check_folder(folder, path)
    return path


def check_report_files(out_dir: str | Path, names: Iterable[str], overwrite: bool) -> list[Path]:
    """The paths of ``names`` in the folder ``out_dir``, checked before any work.

    Raises
    ------
    OutputError
        ``out_dir`` is a file, or one of the files exists and ``overwrite`` is False.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: exists and is not a folder")
    paths = [out / n for n in names]
    existing = [p.name for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{out}: {existing[0]} already exists (pass --overwrite)")
    return paths


def stale_partials(path: str | Path) -> list[Path]:
    """Hidden files or folders that an interrupted write of ``path`` left beside it.

    :func:`atomic_output` writes ``.<stem>.partial-<8 hex><suffix>`` (plus GDAL's
    ``.aux.xml`` and the COG writer's ``-plain`` copy) and, replacing a folder such as
    ``.zarr``, moves the old one to ``.<stem>.old-<8 hex><suffix>``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(
        rf"\.{re.escape(path.stem)}\.(?:partial|old)-[0-9a-f]{{8}}(?:-plain)?"
        rf"{re.escape(path.suffix)}(?:\.aux\.xml)?"
    )
    candidates = path.parent.glob(f".{glob.escape(path.stem)}.*")
    return sorted(p for p in candidates if pattern.fullmatch(p.name))


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Remove the :func:`stale_partials` of ``path``; log one warning line naming them."""
    found = stale_partials(path)
    for stale in found:
        _remove(stale)
    if found:
        names = ", ".join(p.name for p in found)
        log.warning("%s: removed stale partial output(s) of an interrupted run: %s", path, names)
    return found


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    The temporary name keeps the suffix (drivers that go by extension work) and lives in
    the target folder, so the final ``os.replace`` is atomic for files. On any exception
    the temporary file or folder is removed and the exception propagates; partial files
    that a killed earlier write left are removed first (:func:`remove_stale_partials`).
    Model files and training states (one plain file, torch-only layers) use
    :func:`insar_denoise.atomic.write_atomic`.

    Parameters
    ----------
    path : str or Path
        The final output (file or folder such as ``.zarr``).
    overwrite : bool
        Replace an existing output.

    Raises
    ------
    OutputError
        ``path`` exists and ``overwrite`` is False, its folder is missing, or the body
        wrote nothing.
    """
    path = check_target(path, overwrite)
    remove_stale_partials(path)
    tmp = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    aux = Path(f"{tmp}.aux.xml")
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{path}: nothing was written")
        check_target(path, overwrite)
    except BaseException:
        _remove(tmp)
        _remove(aux)
        raise
    if path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.stem}.old-{uuid.uuid4().hex[:8]}{path.suffix}")
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)
    if aux.exists():
        os.replace(aux, f"{path}.aux.xml")
    log.info("wrote %s", path)
