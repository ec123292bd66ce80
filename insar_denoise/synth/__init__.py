"""Synthetic InSAR time series for training and evaluation (torch and numpy only).

Deformation: Okada (1985) rectangular dislocations and Mogi (1958) point sources in an
elastic half-space, or Gaussian subsidence bowls, projected on the line of sight, with
step / linear / transient histories.
Noise: turbulent (power-law / von Karman) and stratified tropospheric delay over fractal or
real DEMs, orbital ramps, offsets, unwrapping errors and decorrelation holes.
"""

from __future__ import annotations

from insar_denoise.synth.config import HISTORY_NAMES, SOURCE_NAMES, SimConfig
from insar_denoise.synth.generator import SimBatch, simulate_batch
from insar_denoise.synth.noise_params import NoiseParams
from insar_denoise.synth.scene import simulate_scene

__all__ = [
    "HISTORY_NAMES",
    "NoiseParams",
    "SOURCE_NAMES",
    "SimBatch",
    "SimConfig",
    "simulate_batch",
    "simulate_scene",
]
