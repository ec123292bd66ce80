"""Stratified (elevation-dependent) tropospheric delay.

Delay per date ``a_t z + b_t z^2`` with ``z`` the elevation above the tile minimum (km),
``a_t`` up to about +/-15 mm/km (Doin et al. 2009, J. Appl. Geophys. 69) and a mild
quadratic term ``b_t`` (mm/km^2), both drawn independently per date.
"""

from __future__ import annotations

import torch

from insar_denoise.synth import sampling


def stratified_delay(
    gen: torch.Generator,
    dem_m: torch.Tensor,
    n_dates: int,
    *,
    coef_mm_per_km: tuple[float, float],
    quad_mm_per_km2: tuple[float, float],
) -> torch.Tensor:
    """Delay ``(B, n_dates, H, W)`` mm for DEMs ``(B, H, W)`` m."""
    b = dem_m.shape[0]
    dev = dem_m.device
    z = (dem_m - dem_m.amin(dim=(-2, -1), keepdim=True)) / 1000.0
    a = sampling.uniform(gen, coef_mm_per_km, (b, n_dates, 1, 1), dev)
    q = sampling.uniform(gen, quad_mm_per_km2, (b, n_dates, 1, 1), dev)
    z = z[:, None]
    return a * z + q * z * z
