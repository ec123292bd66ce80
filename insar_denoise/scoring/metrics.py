"""Metrics of cumulative-deformation maps against a known truth (numpy, per scene and pooled).

Every estimate and the truth are compared on the same pixels after the same plane removal
(:func:`insar_denoise.models.normalization.deplane`, the target the model is trained on, see
:mod:`insar_denoise.training.validation`). Definitions:

- ``rmse_mm``: root mean square of ``estimate - truth`` over all compared pixels of a group
  of scenes (pooled over pixels, not averaged over scenes);
- ``corr``: mean over the scenes of the per-scene Pearson correlation with the truth (scenes
  where either map is constant are left out; NaN if none is left);
- ``snr_gain_db``: ``20 log10(RMSE_raw / RMSE_method)`` on the same group: how much the
  method reduces the error of the uncorrected last-minus-first map (0 dB = no gain);
- ``detected_frac``: share of scenes with correlation >= ``R_MIN`` (0.7);
- detection threshold: the smallest amplitude from which on (that and every larger tested
  amplitude) at least ``DETECTED_FRAC`` (80 %) of the scenes are detected;
- false-positive level: the 99th percentile of ``|estimate|`` over the pixels of the scenes
  without deformation (mm).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: correlation needed to count a scene as detected
R_MIN = 0.7
#: share of detected scenes needed at an amplitude
DETECTED_FRAC = 0.8


def rmse(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Root mean square of ``estimate - truth`` over ``mask`` (all finite pixels if None), mm."""
    mask = _mask(estimate, truth, mask)
    if not mask.any():
        return math.nan
    diff = np.asarray(estimate, np.float64)[mask] - np.asarray(truth, np.float64)[mask]
    return float(np.sqrt(np.mean(diff * diff)))


def pearson(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of two maps over ``mask``; NaN if either is constant there."""
    mask = _mask(a, b, mask)
    if mask.sum() < 2:
        return math.nan
    x = np.asarray(a, np.float64)[mask]
    y = np.asarray(b, np.float64)[mask]
    x = x - x.mean()
    y = y - y.mean()
    den = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    # relative floor: a map that is constant up to rounding counts as constant
    scale = max(float(np.abs(x).max()), float(np.abs(y).max()), 1e-300)
    if den <= 1e-12 * scale * scale * x.size:
        return math.nan
    return float(np.dot(x, y) / den)


def snr_gain_db(rmse_raw: float, rmse_method: float) -> float:
    """``20 log10(rmse_raw / rmse_method)`` in dB; NaN if either is not a positive number."""
    if not (rmse_raw > 0 and rmse_method > 0):
        return math.nan
    return 20.0 * math.log10(rmse_raw / rmse_method)


def false_positive_level(values: np.ndarray, percentile: float = 99.0) -> float:
    """The ``percentile`` of ``|values|`` over the finite values (mm); NaN if there are none."""
    v = np.abs(np.asarray(values, np.float64).ravel())
    v = v[np.isfinite(v)]
    return float(np.percentile(v, percentile)) if v.size else math.nan


def detected_fraction(corr: np.ndarray, r_min: float = R_MIN) -> float:
    """Share of scenes with correlation >= ``r_min`` (NaN counts as not detected)."""
    c = np.asarray(corr, np.float64)
    if c.size == 0:
        return math.nan
    return float(np.mean(np.nan_to_num(c, nan=-np.inf) >= r_min))


def detection_threshold(
    amplitudes_mm: np.ndarray,
    corr: np.ndarray,
    *,
    r_min: float = R_MIN,
    frac: float = DETECTED_FRAC,
) -> float | None:
    """Smallest amplitude from which on every tested amplitude is detected.

    Parameters
    ----------
    amplitudes_mm : (S,) amplitude of each scene (mm); scenes at 0 mm are ignored.
    corr : (S,) correlation of each scene's estimate with its truth (NaN = not detected).
    r_min : correlation needed per scene.
    frac : share of the scenes of one amplitude that must reach ``r_min``.

    Returns
    -------
    The threshold in mm, or None when even the largest amplitude is not detected.
    """
    amp = np.asarray(amplitudes_mm, np.float64)
    c = np.asarray(corr, np.float64)
    levels = sorted(float(a) for a in np.unique(amp[amp > 0]))
    threshold: float | None = None
    for level in reversed(levels):
        if detected_fraction(c[amp == level], r_min) >= frac:
            threshold = level
        else:
            break
    return threshold


@dataclass
class SceneStats:
    """Per-scene error statistics of one method (arrays of shape ``(S,)``)."""

    sse: np.ndarray  # sum of squared errors (mm^2)
    npix: np.ndarray  # compared pixels
    corr: np.ndarray  # Pearson r (NaN when undefined)


def scene_stats(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> SceneStats:
    """Statistics of ``(S, H, W)`` estimates against ``(S, H, W)`` truths on ``mask``."""
    est = np.asarray(estimate, np.float64)
    tru = np.asarray(truth, np.float64)
    diff = np.where(mask, est - tru, 0.0)
    sse = (diff * diff).sum(axis=(1, 2))
    npix = mask.sum(axis=(1, 2)).astype(np.int64)
    corr = np.array([pearson(est[i], tru[i], mask[i]) for i in range(est.shape[0])])
    return SceneStats(sse=sse, npix=npix, corr=corr)


def summarize(
    stats: Mapping[str, SceneStats], select: np.ndarray, reference: str = "raw"
) -> dict[str, object]:
    """Pooled RMSE, mean correlation, SNR gain and detected share of the selected scenes.

    Parameters
    ----------
    stats : method name -> per-scene statistics (same scenes for every method).
    select : (S,) bool, the scenes of the group.
    reference : the method whose RMSE is the reference of the SNR gain.

    Returns
    -------
    ``{"n": int, "rmse_mm": {m: v}, "corr": {m: v}, "snr_gain_db": {m: v},
    "detected_frac": {m: v}}`` (NaN where undefined).
    """
    out: dict[str, object] = {"n": int(np.sum(select))}
    rm: dict[str, float] = {}
    co: dict[str, float] = {}
    det: dict[str, float] = {}
    for name, s in stats.items():
        npix = float(s.npix[select].sum())
        rm[name] = math.sqrt(float(s.sse[select].sum()) / npix) if npix > 0 else math.nan
        c = s.corr[select]
        c = c[np.isfinite(c)]
        co[name] = float(c.mean()) if c.size else math.nan
        det[name] = detected_fraction(s.corr[select])
    ref = rm.get(reference, math.nan)
    out["rmse_mm"] = rm
    out["corr"] = co
    out["snr_gain_db"] = {k: snr_gain_db(ref, v) for k, v in rm.items()}
    out["detected_frac"] = det
    return out


def _mask(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    ok = np.isfinite(np.asarray(a, np.float64)) & np.isfinite(np.asarray(b, np.float64))
    return ok if mask is None else ok & np.asarray(mask, bool)
