"""Detection probability maps: the NumPy face of the whole-stack model's exceedance.

Below the inference layer so that :mod:`insar_denoise.reference` can recompute the
detection map after moving a result's reference (torch + numpy only).
"""

from __future__ import annotations

import numpy as np


def exceedance_np(estimate: np.ndarray, sigma: np.ndarray, threshold: float) -> np.ndarray:
    """NumPy face of :func:`insar_denoise.models.stack_denoiser.exceedance` (the model's own
    detection probability)."""
    import torch

    from insar_denoise.models.stack_denoiser import exceedance

    est = torch.from_numpy(np.asarray(estimate, dtype=np.float64))
    sig = torch.from_numpy(np.asarray(sigma, dtype=np.float64))
    return exceedance(est, sig, float(threshold)).numpy()


def detection_map(
    cumulative: np.ndarray, sigma_68: np.ndarray, threshold_mm: float, relative: bool = True
) -> np.ndarray:
    """Detection probability ``P(|deformation| > threshold_mm)`` from the cumulative map and
    its calibrated 1-sigma band; ``relative``: deformation relative to the median of the
    valid area (the output's level is otherwise arbitrary), else to the map's own zero (the
    reference already applied)."""
    ok = np.isfinite(cumulative) & np.isfinite(sigma_68)
    if not ok.any():
        return np.full(cumulative.shape, np.nan, np.float32)
    base = float(np.median(cumulative[ok])) if relative else 0.0
    return detection_from_base(cumulative, sigma_68, threshold_mm, base)


def detection_from_base(
    cumulative: np.ndarray, sigma_68: np.ndarray, threshold_mm: float, base: float
) -> np.ndarray:
    """:func:`detection_map` relative to a given level ``base`` (mm): pixel by pixel, so a
    scene can be done block by block once its ``base`` is known."""
    ok = np.isfinite(cumulative) & np.isfinite(sigma_68)
    p = exceedance_np(
        np.where(ok, cumulative - base, 0.0), np.where(ok, sigma_68, 1.0), threshold_mm
    )
    return np.where(ok, p, np.nan).astype(np.float32)
