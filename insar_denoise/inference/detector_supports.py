"""What the second detector (:mod:`.bilaplacian_support`) and its step scan
(:mod:`.step_scan`) share: the scales, the interior a scale is tested on, and how a
detection grows into a support."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from insar_denoise.inference.scene_edges import inner_bounds

#: scales (px) of the detectors' filters
SCALES: tuple[float, ...] = (8.0, 16.0, 32.0)
#: a detection's support: the connected area above this z
GROW = 3.0
#: a filter is used where at least 100 pixels lie two scales or more from the edge
MIN_INTERIOR = 100
#: gate values above this count as the gate's support
GATE_ON = 0.5
#: supports (the gate's and the new) covering more than this share of the valid pixels are
#: not filled: the harmonic estimate needs surroundings to predict the noise from (session
#: 18 replay, 0.5 -> 0.75: `shifted` detected at SNR >= 10 0.60 -> 0.64, no bin's RMSE up);
#: the step scan's detections over it are broad (session 25)
MAX_SHARE = 0.75


def interior(ok: np.ndarray, scale: float) -> np.ndarray | None:
    """The ``ok`` pixels two scales or more from the array's edges and from a padded small
    scene's own (:func:`.scene_edges.inner_bounds`), None when under :data:`MIN_INTERIOR`
    (the filtered noise is inflated near an edge)."""
    r0, r1, c0, c1 = inner_bounds(ok.shape, scale)
    inner = np.zeros_like(ok)
    inner[r0:r1, c0:c1] = True
    inner &= ok
    return inner if inner.sum() >= MIN_INTERIOR else None


def grown_area(z: np.ndarray, threshold: float, scale: float) -> np.ndarray:
    """The areas above :data:`GROW` holding a ``z`` above ``threshold``, widened by a
    Gaussian of ``scale`` (cut at 2 %); empty when nothing is above."""
    seeds = z > threshold
    if not seeds.any():
        return np.zeros(z.shape, bool)
    labels, _ = ndimage.label(z > GROW)
    keep = np.unique(labels[seeds])
    area = np.isin(labels, keep[keep > 0])
    return ndimage.gaussian_filter(area.astype(np.float32), scale) > 0.02
