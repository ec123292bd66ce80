"""Batch processing of many frames from a manifest, resumable and parallel with dask.

>>> from insar_denoise.batch import run_batch
>>> results = run_batch("frames.yaml")                     # doctest: +SKIP
>>> [(r.frame, r.status) for r in results]                 # doctest: +SKIP

See :mod:`insar_denoise.batch.manifest` for the manifest format and
:mod:`insar_denoise.batch.records` for what makes a frame finished.
"""

from __future__ import annotations

from insar_denoise.batch.manifest import FrameSpec, Manifest, load_manifest, read_manifest
from insar_denoise.batch.runner import FrameResult, open_client, process_frame, run_batch

__all__ = [
    "FrameResult",
    "FrameSpec",
    "Manifest",
    "load_manifest",
    "open_client",
    "process_frame",
    "read_manifest",
    "run_batch",
]
