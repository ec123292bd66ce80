"""A float32 array on disk for results larger than memory (whole-stack models).

Every access opens a fresh memory map and drops it afterwards, so the pages read or written
leave the process' resident memory (the kernel writes them back and may evict them): memory
stays at the slice accessed, whatever the array's size. The file lives in a temporary folder
(dask's ``temporary-directory`` if set) removed when the object is garbage collected.
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
        del mm
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self.folder), True)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        mm = np.load(self.path, mmap_mode="r")
        out = np.array(mm[key])
        del mm
        return out

    def __setitem__(self, key, value) -> None:
        mm = np.load(self.path, mmap_mode="r+")
        mm[key] = value
        mm.flush()
        del mm

    def to_dask(self, chunks: tuple[int, int, int]) -> da.Array:
        """A dask array reading this file chunk by chunk (the object is kept alive by it)."""
        name = f"insar-denoise-disk-{uuid.uuid4().hex}"
        meta = np.empty((0, 0, 0), self.dtype)
        return da.from_array(self, chunks=chunks, name=name, lock=False, meta=meta)
