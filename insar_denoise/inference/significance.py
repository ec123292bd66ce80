"""Significance gate: keep what the stack detects, at full amplitude; return zero elsewhere.

A least-squares (or learned) estimate of the cumulative deformation is unbiased but noisy:
on a scene without deformation it shows the stack's leftover atmosphere (several mm on short
stacks). Shrinking every scale towards zero (a Wiener gain) lowers that noise but also
lowers the amplitude of real signals. This step decides instead, as a matched-filter
detector would (Kay 1998, Fundamentals of Statistical Signal Processing vol. II, sec. 4.3):

1. noise maps with the cumulative's own temporal weighting: each pixel's residuals from a
   weighted least-squares fit of a piecewise-linear history (``T // 3`` segments, 4 to 24,
   so that real histories leave little in them), divided by ``sqrt(1 - h_tt)`` (leverage:
   a residual's variance is ``sigma_t^2 (1 - h_tt)``; Cook & Weisberg 1982, Residuals and
   Influence in Regression, sec. 2.2), combined with the weights ``a_t`` of the cumulative
   and random signs ``s_t`` (dates' noises are independent): ``sum_t s_t a_t r_t``;
2. for every filter of :data:`FILTERS` (Gaussians of 1-16 px: blobs and broad signals;
   band-passes, a Gaussian minus one twice as wide: compact signals over long-wavelength
   atmosphere; Gaussian derivatives along x and y: steps such as creeping faults, where the
   spatially correlated atmosphere cancels across the step; Lindeberg 1998, Int. J. Comput.
   Vision 30(2), eqs. 7 and 21) the model's cumulative map and the noise maps are filtered;
   ``z = |filtered map| / robust std(filtered noise)`` (median absolute deviation:
   deformation left in the residuals does not inflate it), the std raised where the noise
   maps are locally stronger (gaps); a border of twice the filter's extent is left to the
   smaller filters (the filter's reflected copies inflate the noise there);
3. pixels with ``z >`` :data:`THRESHOLD` for any filter, widened by a Gaussian of twice the
   filter's extent cut at 2 % (the support of what was detected), form the gate; its
   edges are softened over 2 px.

Inside the gate the output keeps its full amplitude; outside it is the scene's level (zero
deformation). Without deformation, nothing passes a 5.5-sigma test of ten filters on a
scene (measured: false-positive p99 0.0 mm on the 12 no-deformation scenes of Benchmark v2's
split ``in``). The least-squares cumulative is tested with the Gaussians only: it keeps
pixel-scale terms that the residuals do not show, so through the band-passes and
derivatives it raised false alarms on those scenes.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from insar_denoise.inference.broad_scales import cumulative_weights, history_basis

#: detector filters ``(kind, scale px)``: ``smooth`` a Gaussian, ``bandpass`` a Gaussian minus
#: one of twice the scale, ``slope_x`` / ``slope_y`` Gaussian derivatives
FILTERS: tuple[tuple[str, float], ...] = (
    *(("smooth", s) for s in (1.0, 2.0, 4.0, 8.0, 16.0)),
    *(("bandpass", s) for s in (2.0, 4.0, 8.0)),
    *((kind, s) for s in (4.0, 8.0) for kind in ("slope_x", "slope_y")),
)
#: detection threshold (noise standard deviations at the scale)
THRESHOLD = 5.5
#: random-sign noise realisations
N_REALISATIONS = 16
#: uncertainty bands where the gate is off: at least these multiples of the missed-signal
#: scale (1-sigma: that noise std; 95 %: where coverage of deforming pixels levels off,
#: ``benchmarks/gate_bands.py``)
BAND_68 = 1.0
BAND_95 = 4.0
#: a filter is used only on scenes at least this many times its extent
MIN_CELLS = 10
#: the gate's edges are softened by a Gaussian of this width (px)
EDGE_PX = 2.0
#: a detection is widened by this many extents of its filter (its support)
WIDEN = 2.0


def fit_segments(n_dates: int) -> int:
    """Segments of the piecewise-linear history fitted before taking residuals."""
    return int(np.clip(n_dates // 3, 4, 24))


def hat_matrix(times_days: np.ndarray, date_var: np.ndarray, segments: int) -> np.ndarray:
    """``(T, T)`` weighted least-squares hat matrix ``B (Bᵀ W B)⁻¹ Bᵀ W`` of a constant and
    ``segments`` piecewise-linear ramps in normalised time, ``W = 1 / date_var``."""
    basis = history_basis(times_days, segments)
    w = 1.0 / np.asarray(date_var, dtype=np.float64)
    return basis @ np.linalg.solve(basis.T @ (w[:, None] * basis), basis.T * w[None, :])


def noise_combinations(
    weights: np.ndarray,
    times_days: np.ndarray,
    date_var: np.ndarray,
    n: int = N_REALISATIONS,
    seed: int = 0,
) -> np.ndarray:
    """``(n, T)``: noise map ``j`` of a pixel is ``combos[j] @ d`` (``d`` its series).

    Each row is ``(s ⊙ a)ᵀ (I - H) / sqrt(1 - h_tt)``: leverage-corrected residuals of the
    piecewise-linear fit, combined with the cumulative's weights ``a`` and random signs.
    """
    t = len(weights)
    hat = hat_matrix(times_days, date_var, fit_segments(t))
    resid = np.eye(t) - hat
    resid /= np.sqrt(np.clip(1.0 - np.diag(hat), 0.05, 1.0))[:, None]
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        signs = rng.choice([-1.0, 1.0], size=t)
        rows.append(((signs * np.asarray(weights, np.float64)) @ resid).astype(np.float32))
    return np.stack(rows)


def with_projection(combos: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``combos`` with the cumulative's own weights as a last row: :func:`noise_maps` then
    also returns the least-squares cumulative (NaN where a date is missing)."""
    return np.vstack([combos, np.asarray(weights, np.float32)[None]])


def noise_maps(displacement: np.ndarray, combos: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` noise realisations of the cumulative map (mm; NaN where a date is
    missing) of ``displacement (T, H, W)`` mm, with ``combos`` from
    :func:`noise_combinations`."""
    d = np.asarray(displacement, dtype=np.float32)
    t = d.shape[0]
    ok = np.isfinite(d).all(axis=0)
    filled = np.where(np.isfinite(d), d, 0.0).reshape(t, -1)
    out = np.empty((len(combos),) + d.shape[1:], np.float32)
    for i, comb in enumerate(combos):
        out[i] = (comb @ filled).reshape(d.shape[1:])
    out[:, ~ok] = np.nan
    return out


def _robust_std(x: np.ndarray) -> float:
    """1.4826 x median absolute deviation of the finite values."""
    v = x[np.isfinite(x)]
    if v.size == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def extent(kind: str, scale: float) -> float:
    """Width (px) of what a filter responds to: twice the scale for a band-pass."""
    return 2.0 * scale if kind == "bandpass" else scale


def _filtered(image: np.ndarray, kind: str, scale: float) -> np.ndarray:
    """A map with NaN (filled with its median, NaN kept) through one filter of :data:`FILTERS`."""
    ok = np.isfinite(image)
    base = float(np.median(image[ok])) if ok.any() else 0.0
    x = np.where(ok, image - base, 0.0)
    if kind == "smooth":
        out = gaussian_filter(x, scale, mode="reflect")
    elif kind == "bandpass":
        out = gaussian_filter(x, scale, mode="reflect") - gaussian_filter(
            x, 2 * scale, mode="reflect"
        )
    else:
        order = (0, 1) if kind == "slope_x" else (1, 0)
        out = gaussian_filter(x, scale, order=order, mode="reflect")
    return np.where(ok, out, np.nan)


def _inflation(sum_sq: np.ndarray, count: np.ndarray, scale: float) -> np.ndarray:
    """Where the smoothed noise is larger than the scene's typical level (areas seen on
    fewer dates, noisier patches), ``>= 1``: the local RMS over the realisations
    (``sum_sq / count``), smoothed over half the scale, relative to its median."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ms = np.where(count > 0, sum_sq / np.maximum(count, 1).astype(np.float32), np.nan)
    ok = np.isfinite(ms)
    if not ok.any():
        return np.ones(ms.shape, np.float32)
    ms = gaussian_filter(np.where(ok, ms, np.nanmedian(ms)), max(scale / 2.0, 2.0), mode="reflect")
    return np.sqrt(np.maximum(ms / np.float32(np.median(ms)), 1.0))  # float32: frames


def _filter_noise(noise, kind: str, scale: float) -> tuple[float, np.ndarray]:
    """Robust std of the filtered noise maps (median over the realisations) and its local
    inflation; one realisation in memory at a time (``noise`` may be on disk)."""
    sds, sum_sq, count = [], None, None
    for j in range(len(noise)):
        m = _filtered(np.asarray(noise[j], dtype=np.float32), kind, scale)
        sds.append(_robust_std(m))
        fin = np.isfinite(m)
        sq = np.where(fin, m, 0.0) ** 2
        sum_sq = sq if sum_sq is None else sum_sq + sq
        count = fin.astype(np.int32) if count is None else count + fin
    return float(np.median(sds)), _inflation(sum_sq, count, extent(kind, scale))


def gate(
    cumulative: np.ndarray,
    noise,
    filters: tuple[tuple[str, float], ...] = FILTERS,
    threshold: float = THRESHOLD,
    projection: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The gate ``(H, W)`` in [0, 1], the largest ``z`` per filter and the missed-signal scale
    ``(H, W)`` mm: the noise std of the cumulative smoothed at 1 px where the gate is off
    (0 where it passes; the engine raises the uncertainty bands to multiples of it).

    ``cumulative (H, W)`` mm (any level: its median is removed); ``noise``: ``n`` maps
    ``(H, W)`` from :func:`noise_maps` (an array ``(n, H, W)`` or a disk stack);
    ``projection``: the least-squares cumulative ``sum_t a_t d_t`` (the statistic the noise
    maps describe exactly), tested too with the Gaussians only: a pixel passes if either map
    is significant.
    """
    shape = cumulative.shape
    hit = np.zeros(shape, dtype=bool)
    zmax = np.zeros(len(filters))
    pixel_sd = np.full(shape, np.nan, np.float32)
    for i, (kind, s) in enumerate(filters):
        size = extent(kind, s)
        if size > min(shape) / MIN_CELLS:
            continue  # too few independent cells at this size for a noise estimate
        sd, inflation = _filter_noise(noise, kind, s)
        if not np.isfinite(sd) or sd <= 0:
            continue
        if (kind, s) == ("smooth", 1.0):
            pixel_sd = (sd * inflation).astype(np.float32)
        tested = (
            (cumulative,) if projection is None or kind != "smooth" else (cumulative, projection)
        )
        for stat in tested:
            z = np.abs(np.nan_to_num(_filtered(stat, kind, s), nan=0.0)) / (
                np.float32(sd) * inflation
            )
            edge = int(round(2 * size))  # reflected copies inflate the filtered noise there
            if edge > 0:
                z[:edge], z[-edge:], z[:, :edge], z[:, -edge:] = 0.0, 0.0, 0.0, 0.0
            zmax[i] = max(zmax[i], float(z.max()))
            above = z > threshold
            if above.any():
                hit |= gaussian_filter(above.astype(np.float32), WIDEN * size) > 0.02
    g = np.clip(gaussian_filter(hit.astype(np.float32), EDGE_PX), 0.0, 1.0)
    return g, zmax, (pixel_sd * (1.0 - g)).astype(np.float32)


def gate_date(image: np.ndarray, gate_map: np.ndarray) -> np.ndarray:
    """One date ``(H, W)`` with its deviation from its median scaled by the gate."""
    fin = np.isfinite(image)
    level = float(np.median(image[fin])) if fin.any() else 0.0
    return ((image - level) * gate_map + level).astype(image.dtype)


def apply_gate(series: np.ndarray, gate_map: np.ndarray) -> np.ndarray:
    """Series ``(T, H, W)`` with each date's deviation from its median scaled by the gate."""
    return np.stack([gate_date(series[t], gate_map) for t in range(series.shape[0])])


def gate_series(
    series: np.ndarray,
    displacement: np.ndarray,
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The gated series, the gate, the largest ``z`` per scale and the missed-signal scale
    (whole scene in memory; :func:`gate`).

    ``series (T, H, W)`` mm relative to the first date; ``displacement (T, H, W)`` the input
    relative to the first date; ``segments``: the model's (its cumulative weighting).
    """
    weights = cumulative_weights(times_days, date_var, segments)
    maps = noise_maps(
        displacement, with_projection(noise_combinations(weights, times_days, date_var), weights)
    )
    g, zmax, missed = gate(series[-1] - series[0], maps[:-1], projection=maps[-1])
    return apply_gate(series, g), g, zmax, missed
