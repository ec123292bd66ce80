"""Relief check: does the cumulative follow the elevation more than the stack's noise says?

Stratified tropospheric delay grows with elevation (``k z + q z²`` per date; Doin et al. 2009,
J. Appl. Geophys. 69, 35-50). The significance gate's noise maps (:mod:`.significance`) come
from each pixel's fit residuals; when a few dates carry strong stratification confined to
high relief, the fit absorbs it there (those dates have high leverage) and the noise maps
miss it, so the gate passes patches that follow the relief (Benchmark v2's shifted split:
100-190 mm on no-deformation scenes with 6 km of relief). This check fits ``c + k z + q z²``
(z the elevation in km) to the least-squares cumulative and to each noise map, and compares
the spread of the elevation part: ``ratio`` = that of the cumulative / the RMS of that of the
noise maps. A large ratio means either stratified delay that the noise model does not
describe, or deformation that follows the relief (a volcano's edifice). The engine records
both numbers in the result's attributes; the trust stage turns them into the ``relief``
finding (:func:`insar_denoise.trust.qc.relief_findings`), and the gate of a flagged scene adds
the stack's own stratification to its noise maps (:mod:`.relief_noise`).
Measured on Benchmark v2 (84 scenes per split): every no-deformation scene with a false
patch had a ratio of 3.0-7.0, every other no-deformation scene at most 2.3.
"""

from __future__ import annotations

import math

import numpy as np

from insar_denoise.inference import strips

#: warn when the cumulative's elevation part is this many times the noise maps' ...
RELIEF_RATIO = 2.5
#: ... and at least this large (mm, std over the scene)
RELIEF_MIN_MM = 2.0
#: result attributes holding the check's ``ratio`` and ``mm``
RELIEF_RATIO_ATTR = "insar_denoise_relief_ratio"
RELIEF_MM_ATTR = "insar_denoise_relief_mm"
#: the fits use about this many pixels (a regular subsample of large scenes)
SAMPLE_PX = 1_000_000


def sample_step(shape: tuple[int, int]) -> int:
    """Row and column step of the regular subsample (1 up to :data:`SAMPLE_PX` pixels)."""
    return max(1, math.ceil(math.sqrt(shape[0] * shape[1] / SAMPLE_PX)))


def sampled(src, shape: tuple[int, int], step: int) -> np.ndarray:
    """Every ``step``-th row and column of a map indexable by rows (array, dask array,
    :class:`.strips.MapView`), read in row strips, as float64."""
    h, w = shape
    parts = []
    for a, b in strips.row_strips(h, w):
        first = (-a) % step
        if first < b - a:
            parts.append(np.asarray(src[a:b], dtype=np.float64)[first::step, ::step])
    return np.concatenate(parts) if parts else np.empty((0, 0))


def elevation_coefficients(values: np.ndarray, z_km: np.ndarray) -> np.ndarray | None:
    """``(c, k, q)`` of the least-squares fit of ``c + k z + q z²`` to ``values`` over the
    pixels where both are finite; None with fewer than 10 such pixels."""
    ok = np.isfinite(values) & np.isfinite(z_km)
    if ok.sum() < 10:
        return None
    z = z_km[ok]
    design = np.stack([np.ones_like(z), z, z * z], axis=1)
    return np.linalg.lstsq(design, values[ok], rcond=None)[0]


def elevation_part_std(values: np.ndarray, z_km: np.ndarray) -> float:
    """Std (over the finite pixels) of the ``k z + q z²`` part of a least-squares fit of
    ``c + k z + q z²`` to ``values``; NaN with fewer than 10 pixels."""
    coef = elevation_coefficients(values, z_km)
    if coef is None:
        return float("nan")
    z = z_km[np.isfinite(values) & np.isfinite(z_km)]
    return float(np.std(coef[1] * z + coef[2] * z * z))


def relief_ratio(projection, noise, dem) -> tuple[float, float]:
    """``(ratio, mm)``: the std of the elevation part of the least-squares cumulative
    ``projection (H, W)`` mm (``mm``), over the RMS of that of the ``noise`` maps (``n`` maps
    ``(H, W)``: any ``(n, H, W)`` store indexable as ``[j, lo:hi]``); ``dem (H, W)`` m.
    NaN when the scene has no relief to fit."""
    shape = tuple(projection.shape)
    step = sample_step(shape)
    elevation = sampled(dem, shape, step)
    finite = elevation[np.isfinite(elevation)]
    if finite.size < 10 or np.ptp(finite) <= 0:
        return float("nan"), float("nan")
    z_km = (elevation - finite.min()) / 1000.0
    mm = elevation_part_std(sampled(projection, shape, step), z_km)
    noise_parts = [
        elevation_part_std(sampled(strips.MapView(noise, j), shape, step), z_km)
        for j in range(len(noise))
    ]
    noise_rms = float(np.sqrt(np.nanmean(np.square(noise_parts))))
    if not noise_rms > 0:
        return float("nan"), mm
    return mm / noise_rms, mm


def relief_warning(ratio: float, mm: float) -> str | None:
    """The run's warning (code ``relief``) when the ratio and the elevation part are both
    large, else None."""
    if not (np.isfinite(ratio) and ratio > RELIEF_RATIO and mm > RELIEF_MIN_MM):
        return None
    return (
        f"the cumulative follows the elevation (std {mm:.1f} mm) {ratio:.1f}x more "
        "than the stack's own noise predicts: stratified delay that the model does not "
        "remove, or deformation that follows the relief. Detections over relief may be "
        "atmosphere: compare with a tropospheric correction (GACOS, ERA5) first"
    )
