"""Whole-scene inference: tiling on dask, blending, time windows, devices, baselines.

``denoise_dataset(ds, model)`` takes the canonical Dataset (see ``insar_denoise.io``) and
returns ``cumulative_deformation(y, x)``, ``deformation(time, y, x)`` and
``noise(time, y, x)`` in mm.
Submodules, one job each: :mod:`.tiling` (blocks and tiles), :mod:`.blending` (tile
weights), :mod:`.windows` (time windows and their least-squares combination),
:mod:`.devices` (device, threads, batch size), :mod:`.runner` (model wrapper, block
denoiser) and :mod:`.engine` (the public entry point).
"""

from __future__ import annotations

from insar_denoise.inference.engine import METHODS, denoise_dataset, times_in_days
from insar_denoise.inference.runner import prepare_model
from insar_denoise.inference.windows import combination_matrix, window_starts

__all__ = [
    "METHODS",
    "combination_matrix",
    "denoise_dataset",
    "prepare_model",
    "times_in_days",
    "window_starts",
]
