"""A float32 array on disk for results larger than memory (whole-stack models).

Every access maps only the rows it reads or writes, one map of the array at a time, and
drops the mapping afterwards, so the pages read or written leave the process' resident
memory (the kernel writes them back and may evict them): memory stays at the slice
accessed, whatever the array's size. A mapping of the whole file would not do: a page
fault may map the whole (large) page-cache folio around the page touched (Linux 6.x), so
a block's core of every date, written through it, kept whole rows of the scene resident
(``T x rows x W x 4`` bytes, ~0.5 GB for a block row of a 3072 px scene of 100 dates). The
file lives in a temporary folder (dask's ``temporary-directory`` if set) removed when the
object is garbage collected.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
import weakref
from pathlib import Path

import dask
import dask.array as da
import numpy as np


class DiskStack:
    """``(C, H, W)`` float32 array in a ``.npy`` file; numpy-style ``[]`` reads and writes."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        folder = dask.config.get("temporary-directory", None) or None
        self.folder = Path(tempfile.mkdtemp(prefix="insar_denoise_", dir=folder))
        self.path = self.folder / "stack.npy"
        self.shape, self.dtype, self.ndim = tuple(int(s) for s in shape), np.dtype("f4"), 3
        mm = np.lib.format.open_memmap(self.path, mode="w+", dtype=self.dtype, shape=self.shape)
        self._offset = int(mm.offset)
        del mm
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.folder), True)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        plan = self._plan(key)
        if plan is None:
            mm = np.load(self.path, mmap_mode="r")
            out = np.array(mm[key])
            del mm
            return out
        maps, squeeze, rows, sub, shape = plan
        out = np.empty((len(maps), *shape), self.dtype)
        for i, c in enumerate(maps):
            mm = self._rows(c, rows, "r")
            out[i] = mm[sub]
            del mm
        return out[0] if squeeze else out

    def __setitem__(self, key, value) -> None:
        plan = self._plan(key)
        if plan is None:
            mm = np.load(self.path, mmap_mode="r+")
            mm[key] = value
            mm.flush()
            del mm
            return
        maps, squeeze, rows, sub, shape = plan
        full = (len(maps), *shape)
        value = np.broadcast_to(np.asarray(value), shape if squeeze else full)
        for i, c in enumerate(maps):
            mm = self._rows(c, rows, "r+")
            mm[sub] = value if squeeze else value[i]
            mm.flush()
            del mm

    def _rows(self, c: int, rows: tuple[int, int], mode: str) -> np.memmap:
        """Rows ``[lo, hi)`` of map ``c``, mapped alone."""
        _, h, w = self.shape
        lo, hi = rows
        offset = self._offset + (c * h + lo) * w * self.dtype.itemsize
        return np.memmap(self.path, self.dtype, mode, offset=offset, shape=(hi - lo, w))

    def _plan(self, key) -> tuple | None:
        """``key`` as (maps, whether the map axis is dropped, rows ``(lo, hi)``, the key
        within the mapped rows, the shape of one map's part); ``None`` for keys read or
        written through a mapping of the whole file (empty parts, steps along rows, ...)."""
        key = key if isinstance(key, tuple) else (key,)
        if len(key) > 3 or any(k is Ellipsis or k is None for k in key):
            return None
        first, rows, cols = key + (slice(None),) * (3 - len(key))
        n, h, w = self.shape
        if isinstance(first, int | np.integer):
            maps, squeeze = [range(n)[first]], True
        elif isinstance(first, slice):
            maps, squeeze = list(range(n)[first]), False
        elif isinstance(first, list) and all(isinstance(i, int | np.integer) for i in first):
            maps, squeeze = [range(n)[i] for i in first], False
        else:
            return None
        if isinstance(rows, int | np.integer):
            lo = range(h)[rows]
            hi, row_key = lo + 1, 0
        elif isinstance(rows, slice) and rows.step in (None, 1):
            lo, hi, _ = rows.indices(h)
            row_key = slice(None)
        else:
            return None
        if isinstance(cols, int | np.integer):
            range(w)[cols]  # IndexError as numpy's
            shape: tuple[int, ...] = ()
        elif isinstance(cols, slice):
            shape = (len(range(w)[cols]),)
        else:
            return None
        if not maps or hi <= lo:
            return None
        if isinstance(row_key, slice):
            shape = (hi - lo, *shape)
        return maps, squeeze, (lo, hi), (row_key, cols), shape

    def to_dask(self, chunks: tuple[int, int, int]) -> da.Array:
        """A dask array reading this file chunk by chunk (the object is kept alive by it)."""
        name = f"insar-denoise-disk-{uuid.uuid4().hex}"
        meta = np.empty((0, 0, 0), self.dtype)
        return da.from_array(self, chunks=chunks, name=name, lock=False, meta=meta)
