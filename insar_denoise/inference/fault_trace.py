"""Fault-trace step: find a long straight step in the least-squares cumulative and restore it.

A creeping fault offsets the ground along a line that often crosses the whole scene. The
network smooths such steps away (model card: its 8 px high-pass keeps 9 % of a 19 mm creep
step that the least-squares cumulative shows), and the gate's isotropic filters integrate
too little of the line to find small ones. This step integrates along lines, as the ideal
observer does:

1. the least-squares cumulative ``P`` (elevation part ``k z + q z²`` removed when there is a
   DEM), rotated every :data:`ANGLE_STEP_DEG` degrees; for every line (a column of the
   rotated map) at least :data:`MIN_LENGTH_PX` long, the mean along the line of the
   difference between the ``w`` pixels on each side (``w`` in :data:`WIDTHS`), times the
   square root of its length (a discrete Radon transform of the step; Deans 1983, The Radon
   Transform and Some of Its Applications, ch. 1);
2. ``z`` = that statistic over the robust spread (1.4826 MAD) of the same statistic over all
   lines of the scene: a single step is an outlier among thousands of lines, spatially
   correlated atmosphere is not. The largest ``z`` above :data:`THRESHOLD` is the trace
   (on Benchmark v2's no-deformation scenes the largest ``z`` was 4.7 on split ``in``, 6.2 on
   ``shifted``) if its step runs along the line: no quarter of the line carries more than
   :data:`MAX_QUARTER_SHARE` of it (the edge of a patch, such as an unwrapping error, scores
   high on one line but sits on a stretch of it). Lines that holes break, down to
   :data:`SHORT_LENGTH_PX` valid rows, form a class of their own with its own spread and the
   stricter :data:`SHORT_THRESHOLD` (where the long lines are :data:`MIN_LENGTH_PX` long);
   the class furthest above its threshold wins;
3. the profile across it (1 px bins of signed distance, up to :data:`HALF_WIDTH_PX`, means
   along the line) is fitted with an offset, a slope and the surface displacement of a
   strike-slip dislocation from depth ``top`` to ``top + W`` (``(A / π) (atan(d / top) −
   atan(d / (top + W)))``; Savage & Burford 1973, J. Geophys. Res. 78, 832-845, eq. 1); the
   output gains, within the band (tapered over its last quarter), the fitted dislocation
   minus the part of it already there (the same fit of the output's own profile);
4. in time, each date's amplitude (the same fit on that date, shape fixed), smoothed with the
   model's weighted piecewise-linear history, sets the share of the correction per date.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from insar_denoise.inference.noise_prediction import elevation_free_banded
from insar_denoise.inference.relief import elevation_coefficients
from insar_denoise.inference.significance import valid_extent

#: rotation step of the line search (degrees over 0-180)
ANGLE_STEP_DEG = 2.0
#: scenes up to this many pixels keep their rotated masks for the next search
MASK_CACHE_MAX_PX = 512 * 512
#: half-widths (px) of the two sides compared across a line
WIDTHS: tuple[int, ...] = (2, 4, 8)
#: shortest line tested (px); scenes narrower than it test lines of :data:`MIN_LENGTH_SHARE`
#: of their smaller side (:func:`min_length`)
MIN_LENGTH_PX = 96
MIN_LENGTH_SHARE = 0.9
#: detection threshold (robust standard deviations over all lines of the scene)
THRESHOLD = 6.5
#: lines broken by holes: lines of at least this many valid rows (px) are searched too, as a
#: class of their own with the stricter :data:`SHORT_THRESHOLD` (session 39: a fresh noise
#: draw of Benchmark v2 `shifted` creep 26, a hole over one side of the trace; its longest
#: lines held 65 rows and the search found a wrong line at z 7.2 against 40 at 48 rows)
SHORT_LENGTH_PX = 48
SHORT_THRESHOLD = 10.0
#: a trace's step must run along the line: no quarter of the line may carry more than this
#: share of the summed step (a patch edge, such as an unwrapping error's, does)
MAX_QUARTER_SHARE = 0.6
#: the profile is fitted and restored up to this distance (px) from the trace
HALF_WIDTH_PX = 64
#: scenes with more pixels than this skip the step (the rotations hold the whole map)
MAX_PIXELS = 2048 * 2048
#: dislocation widths ``W`` and top depths (px) of the profile fit; at most a quarter of
#: :data:`HALF_WIDTH_PX`, so that the shape has decayed to ~10 % of its slip where the taper
#: starts (wider ones trade off against the profile's linear slope and over-restore:
#: ``benchmarks/creep_widths.py``)
PROFILE_WIDTHS: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
PROFILE_TOPS: tuple[float, ...] = (0.0, 1.0, 3.0)
#: the line search's map loses its elevation part fitted on detail below this scale (px;
#: :func:`without_relief`): the straight ridges of `in` 80's DEM carried a false line, z 8.8
#: in a 128 px crop after a whole-scene fit (a creep model of 8.8 mm and a restored 88 mm
#: step on a 1.7 mm creep, the output anti-correlated with the truth), 4.2 after this one;
#: the creeps of Benchmark v2 keep their traces (session 37)
RELIEF_BAND_PX = 16.0
#: result attribute holding the trace (JSON) or why there is none
TRACE_ATTR = "insar_denoise_fault_trace"
#: ``(t, lo, hi) -> rows lo:hi of date t`` of the input relative to the first date
RowReader = Callable[[int, int, int], np.ndarray]


@dataclass
class Trace:
    """A detected trace: the line (a point and the unit normal, px), its ``z``, the fitted
    dislocation (``amplitude`` mm across the trace, ``width``, ``top`` px) and the angle."""

    z: float
    angle_deg: float
    point: tuple[float, float]
    normal: tuple[float, float]
    amplitude_mm: float
    width_px: float
    top_px: float

    def to_attr(self) -> str:
        """The JSON written to :data:`TRACE_ATTR`."""
        return json.dumps({k: np.round(v, 3).tolist() for k, v in asdict(self).items()})


def dislocation(d: np.ndarray, width: float, top: float) -> np.ndarray:
    """Surface displacement across a strike-slip dislocation from depth ``top`` to ``top +
    width`` (px), per unit slip: ``(atan(d / top) − atan(d / (top + width))) / π``."""
    d = np.asarray(d, dtype=np.float64)
    near = np.arctan2(d, top) if top > 0 else 0.5 * np.pi * np.sign(d)
    return (near - np.arctan(d / (top + width))) / np.pi


def without_elevation(p: np.ndarray, ok: np.ndarray, dem: Any) -> np.ndarray:
    """``p`` minus its least-squares ``k z + q z²`` (z in km), zero where not ``ok``."""
    out = np.where(ok, p, 0.0)
    if dem is None or ok.sum() < 10:
        return out
    z = (np.asarray(dem, dtype=np.float64) - np.nanmin(dem)) / 1000.0
    use = ok & np.isfinite(z)
    coef = elevation_coefficients(np.where(ok, p, np.nan), z)
    if coef is None or np.ptp(z[use]) <= 0:
        return out
    return np.where(use, p - coef[1] * z - coef[2] * z * z, 0.0)


def without_relief(p: np.ndarray, ok: np.ndarray, dem: Any) -> np.ndarray:
    """``p`` less ``c + k z + q z²``, ``k`` and ``q`` fitted on the map's and the DEM's detail
    below :data:`RELIEF_BAND_PX` (:func:`.noise_prediction.elevation_free_banded`), zero where
    not ``ok`` (without a DEM only ``c``). The search reads this map: straight ridges carry
    stratified delay that a whole-scene fit leaves along them."""
    return elevation_free_banded(np.where(ok, p, 0.0), ok, dem, RELIEF_BAND_PX)


def _rotate(image: np.ndarray, angle: float) -> np.ndarray:
    return ndimage.rotate(image, angle, reshape=True, order=1, mode="constant", cval=0.0)


def _rotated_mask(ok: np.ndarray, angle: float) -> np.ndarray:
    """Where the map rotated by ``angle`` is valid: ``ok`` rotated, above 0.999."""
    return _rotate(ok.astype(np.float64), angle) > 0.999


def _all_rotated_masks(ok: np.ndarray, step: float) -> tuple[np.ndarray, ...]:
    return tuple(_rotated_mask(ok, a) for a in np.arange(0.0, 180.0, step))


@functools.lru_cache(maxsize=2)
def _rotated_masks_of(packed: bytes, shape: tuple[int, int], step: float) -> tuple:
    ok = np.unpackbits(np.frombuffer(packed, np.uint8), count=shape[0] * shape[1])
    masks = _all_rotated_masks(ok.reshape(shape).astype(bool), step)
    for mask in masks:  # shared by the searches that follow
        mask.flags.writeable = False
    return masks


def rotated_masks(ok: np.ndarray) -> tuple[np.ndarray, ...]:
    """:func:`_rotated_mask` of ``ok`` at each angle of the search, remembered for the last
    two masks of scenes up to :data:`MASK_CACHE_MAX_PX` pixels (one run searches several
    maps of the same valid pixels)."""
    if ok.size > MASK_CACHE_MAX_PX or ok.dtype != bool:
        return _all_rotated_masks(ok, ANGLE_STEP_DEG)
    return _rotated_masks_of(np.packbits(ok).tobytes(), ok.shape, ANGLE_STEP_DEG)


def side_sums(f: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Running sums along rows of ``f`` where ``k`` and of ``k`` (:func:`side_differences`),
    once for every half-width; stored transposed, ``(columns + 1, rows)``, so that each
    column's sums lie together in memory."""
    c = np.cumsum(np.pad(np.ascontiguousarray((f * k).T), ((1, 0), (0, 0))), axis=0)
    n = np.cumsum(np.pad(np.ascontiguousarray(k.T, np.float64), ((1, 0), (0, 0))), axis=0)
    return c, n


def side_differences(
    f: np.ndarray, k: np.ndarray, w: int, sums: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per column of a rotated map ``f`` (valid where ``k``): the mean over rows of (mean of
    the ``w`` pixels right of the column) − (mean of the ``w`` pixels left of it and the
    column itself), over rows where both sides are valid, and the number of such rows.
    ``sums``: :func:`side_sums` of ``f`` and ``k`` when already formed."""
    c, n = side_sums(f, k) if sums is None else sums
    width = f.shape[1]
    mean, rows = np.zeros(width), np.zeros(width, dtype=int)
    if width <= 2 * w:
        return mean, rows
    x = np.arange(w, width - w)
    right, mid, left = (slice(a, a + x.size) for a in (2 * w + 1, w + 1, 1))  # x + w + 1, ...
    good = (n[right] - n[mid] == w) & (n[mid] - n[left] == w)  # (columns, rows)
    diff = (c[right] - c[mid]) - (c[mid] - c[left])
    count = good.sum(axis=1)
    mean[x] = np.where(
        count > 0, np.where(good, diff / w, 0.0).sum(axis=1) / np.maximum(count, 1), 0.0
    )
    rows[x] = count
    return mean, rows


def min_length(ok: np.ndarray) -> int:
    """Shortest line (px) tested on a scene valid where ``ok``: :data:`MIN_LENGTH_PX`, or
    :data:`MIN_LENGTH_SHARE` of the smaller side of the valid pixels' bounding box where that
    is shorter (a small scene, or one padded with invalid pixels)."""
    return min(MIN_LENGTH_PX, int(MIN_LENGTH_SHARE * valid_extent(ok.any(axis=1), ok.any(axis=0))))


def line_statistics(p: np.ndarray, ok: np.ndarray, shortest: int) -> dict[int, list]:
    """Per half-width ``w`` of :data:`WIDTHS`, per angle: ``(angle, columns, statistic,
    rows)`` of the lines of ``p`` (``ok`` its valid pixels) at least ``shortest`` rows long."""
    stats: dict[int, list] = {w: [] for w in WIDTHS}
    masks = rotated_masks(ok)
    for angle, k in zip(np.arange(0.0, 180.0, ANGLE_STEP_DEG), masks, strict=True):
        f = _rotate(p, angle)
        sums = side_sums(f, k)
        for w in WIDTHS:
            mean, rows = side_differences(f, k, w, sums)
            cols = np.nonzero(rows >= shortest)[0]
            stats[w].append((angle, cols, mean[cols] * np.sqrt(rows[cols]), rows[cols]))
    return stats


def most_significant(stats: dict[int, list], shortest: int) -> tuple[float, float, int, int]:
    """``(z, angle, column, w)`` of the most significant of the lines of ``stats``
    (:func:`line_statistics`) at least ``shortest`` rows long, ``z`` against their spread."""
    best = (0.0, 0.0, 0, WIDTHS[0])
    for w in WIDTHS:
        kept = [(a, c[r >= shortest], s[r >= shortest]) for a, c, s, r in stats[w]]
        values = np.concatenate([s for _, _, s in kept]) if kept else np.empty(0)
        if values.size < 100:
            continue
        med = np.median(values)
        spread = 1.4826 * np.median(np.abs(values - med))
        if not spread > 0:
            continue
        for angle, cols, s in kept:
            if s.size:
                z = np.abs(s - med) / spread
                i = int(np.argmax(z))
                if z[i] > best[0]:
                    best = (float(z[i]), float(angle), int(cols[i]), w)
    return best


def short_length(ok: np.ndarray) -> int:
    """Shortest broken line (px): :data:`SHORT_LENGTH_PX` where the long lines are
    :data:`MIN_LENGTH_PX` long (the scenes its threshold was set on), else :func:`min_length`
    (no class of short lines on a small scene)."""
    longest = min_length(ok)
    return SHORT_LENGTH_PX if longest >= MIN_LENGTH_PX else longest


def search(p: np.ndarray, ok: np.ndarray) -> tuple[float, float, int, int]:
    """``(z, angle, column, w)`` of the most significant line of ``p`` (``ok`` its valid
    pixels) and the half-width ``w`` of :data:`WIDTHS` that found it."""
    shortest = min_length(ok)
    return most_significant(line_statistics(p, ok, shortest), shortest)


def search_broken(p: np.ndarray, ok: np.ndarray) -> tuple[float, float, int, int, float]:
    """As :func:`search`, with the lines down to :data:`SHORT_LENGTH_PX` (a trace that holes
    break) searched as a class of their own: ``(z, angle, column, w, threshold)`` of the
    class whose best line is furthest above its threshold (:data:`THRESHOLD` for lines of
    :func:`min_length`, :data:`SHORT_THRESHOLD` for the short ones)."""
    longest, shortest = min_length(ok), short_length(ok)
    stats = line_statistics(p, ok, shortest)
    best = (*most_significant(stats, longest), THRESHOLD)
    if shortest < longest:
        short = (*most_significant(stats, shortest), SHORT_THRESHOLD)
        if short[0] / SHORT_THRESHOLD > best[0] / THRESHOLD:
            best = short
    return best


def quarter_shares(p: np.ndarray, ok: np.ndarray, angle: float, column: int, w: int) -> np.ndarray:
    """Shares of the line's summed step (the row differences of :func:`side_differences`)
    carried by each quarter of its rows, in order along the line."""
    f = _rotate(p, angle)
    k = _rotated_mask(ok, angle)
    x = column
    if x - w + 1 < 0 or x + w + 1 > f.shape[1]:
        return np.ones(4) / 4.0
    good = k[:, x + 1 : x + w + 1].all(axis=1) & k[:, x - w + 1 : x + 1].all(axis=1)
    steps = f[good, x + 1 : x + w + 1].mean(axis=1) - f[good, x - w + 1 : x + 1].mean(axis=1)
    total = steps.sum()
    if steps.size < 4 or total == 0:
        return np.ones(4) / 4.0
    return np.array([q.sum() / total for q in np.array_split(steps, 4)])


def line_of(ok: np.ndarray, angle: float, column: int) -> tuple[tuple, tuple]:
    """The line (a point and its unit normal, in (row, column) px of the scene) that the
    column ``column`` of the map rotated by ``angle`` traces."""
    rows, cols = np.mgrid[: ok.shape[0], : ok.shape[1]].astype(np.float64)
    k = _rotated_mask(ok, angle)
    on = k[:, column]
    y, x = _rotate(rows, angle)[on, column], _rotate(cols, angle)[on, column]
    cy, cx = float(y.mean()), float(x.mean())
    direction = np.linalg.svd(np.stack([y - cy, x - cx], axis=1), full_matrices=False)[2][0]
    normal = (float(-direction[1]), float(direction[0]))
    return (cy, cx), normal


def signed_distance(
    shape: tuple[int, int],
    point: tuple[float, float],
    normal: tuple[float, float],
    rows: slice = slice(None),
) -> np.ndarray:
    """Signed distance (px) of the pixels of ``rows`` from the line."""
    r = np.arange(shape[0], dtype=np.float64)[rows][:, None]
    c = np.arange(shape[1], dtype=np.float64)[None, :]
    return (r - point[0]) * normal[0] + (c - point[1]) * normal[1]


def binned_profile(values: np.ndarray, dist: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Means of ``values`` in 1 px bins of ``dist`` from ``-R`` to ``R`` (NaN if empty)."""
    bins = np.rint(dist[use]).astype(int) + HALF_WIDTH_PX
    size = 2 * HALF_WIDTH_PX + 1
    total = np.bincount(bins, weights=values[use], minlength=size)
    count = np.bincount(bins, minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _shape_fit(d: np.ndarray, values: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Least-squares ``(offset, slope, amplitude)`` of ``values`` on ``1``, ``d``, ``shape``."""
    design = np.stack([np.ones_like(d), d, shape], axis=1)
    return np.linalg.lstsq(design, values, rcond=None)[0]


def fit_profile(profile: np.ndarray) -> tuple[float, float, float]:
    """``(amplitude, width, top)`` of the dislocation (with an offset and a slope) that fits
    the binned profile best in the least-squares sense."""
    d = np.arange(-HALF_WIDTH_PX, HALF_WIDTH_PX + 1, dtype=np.float64)
    fin = np.isfinite(profile)
    best = (np.inf, 0.0, PROFILE_WIDTHS[0], PROFILE_TOPS[0])
    for width in PROFILE_WIDTHS:
        for top in PROFILE_TOPS:
            shape = dislocation(d[fin], width, top)
            coef = _shape_fit(d[fin], profile[fin], shape)
            rss = float(np.sum((coef[0] + coef[1] * d[fin] + coef[2] * shape - profile[fin]) ** 2))
            if rss < best[0]:
                best = (rss, float(coef[2]), width, top)
    return best[1], best[2], best[3]


def find_trace(projection: np.ndarray, dem: Any = None) -> Trace | None:
    """The most significant trace of the least-squares cumulative ``projection (H, W)`` mm
    (NaN = not valid), or None when no line passes :data:`THRESHOLD`."""
    p = np.asarray(projection, dtype=np.float64)
    ok = np.isfinite(p)
    if ok.sum() < min_length(ok) ** 2 / 4:
        return None
    dem = None if dem is None else np.asarray(dem, dtype=np.float64)
    p = without_relief(p - np.median(p[ok]), ok, dem)
    z, angle, column, w, threshold = search_broken(p, ok)
    if z <= threshold:
        return None
    if quarter_shares(p, ok, angle, column, w).max() > MAX_QUARTER_SHARE:
        return None
    point, normal = line_of(ok, angle, column)
    dist = signed_distance(p.shape, point, normal)
    use = ok & (np.abs(dist) <= HALF_WIDTH_PX)
    amplitude, width, top = fit_profile(binned_profile(p, dist, use))
    return Trace(z, angle, point, normal, amplitude, width, top)


def date_shares(amplitudes: np.ndarray, hat: np.ndarray, times_days: np.ndarray) -> np.ndarray:
    """Share ``φ_t`` of the cumulative correction carried by each date: the per-date
    amplitudes smoothed by ``hat`` (the weighted piecewise-linear fit), relative to the first
    date, over the last; linear in time when that is not finite or too small."""
    smooth = hat @ np.nan_to_num(amplitudes)
    span = smooth[-1] - smooth[0]
    if np.isfinite(span) and abs(span) > 1e-6 * (np.abs(smooth).max() + 1e-12):
        return (smooth - smooth[0]) / span
    t = np.asarray(times_days, dtype=np.float64)
    return (t - t[0]) / max(float(t[-1] - t[0]), 1.0)


def taper(d: np.ndarray) -> np.ndarray:
    """1 up to 3/4 of :data:`HALF_WIDTH_PX`, then a cosine down to 0 at it (no step at the
    band's edges)."""
    inner = 0.75 * HALF_WIDTH_PX
    x = np.clip((np.abs(d) - inner) / (HALF_WIDTH_PX - inner), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def restore(
    series: Any, date_rows: RowReader, trace: Trace, hat: np.ndarray, times_days: np.ndarray
) -> None:
    """Replace, in place, the along-trace profile of ``series`` (``(T, H, W)``, any store
    read and written as ``[t, lo:hi]``: an array or a disk stack) by the fitted dislocation,
    shared between dates by :func:`date_shares`. ``date_rows(t, lo, hi)``: rows of date ``t``
    of the input relative to the first date (the per-date amplitudes); ``hat`` the model's
    weighted piecewise-linear hat matrix (:func:`.significance.hat_matrix`). Row strips."""
    from insar_denoise.inference.strips import row_strips

    n_dates, h, w = series.shape
    size = 2 * HALF_WIDTH_PX + 1
    total, count = np.zeros(size), np.zeros(size)
    normal = np.zeros((n_dates, 3, 3))
    moment = np.zeros((n_dates, 3))
    shape = lambda d: dislocation(d, trace.width_px, trace.top_px)  # noqa: E731
    for a, b in row_strips(h, w):
        dist = signed_distance((h, w), trace.point, trace.normal, slice(a, b))
        band = np.abs(dist) <= HALF_WIDTH_PX
        if not band.any():
            continue
        cum = np.asarray(series[n_dates - 1, a:b], np.float64) - np.asarray(series[0, a:b])
        use = band & np.isfinite(cum)
        bins = np.rint(dist[use]).astype(int) + HALF_WIDTH_PX
        total += np.bincount(bins, weights=cum[use], minlength=size)
        count += np.bincount(bins, minlength=size)
        for t in range(n_dates):
            values = np.asarray(date_rows(t, a, b), np.float64)
            ok = band & np.isfinite(values)
            design = np.stack([np.ones(ok.sum()), dist[ok], shape(dist[ok])], axis=1)
            normal[t] += design.T @ design
            moment[t] += design.T @ values[ok]
    amplitudes = np.array(
        [np.linalg.lstsq(normal[t], moment[t], rcond=None)[0][2] for t in range(n_dates)]
    )
    shares = date_shares(amplitudes, hat, times_days)
    d = np.arange(-HALF_WIDTH_PX, HALF_WIDTH_PX + 1, dtype=np.float64)
    fin = count > 0
    kept = 0.0  # the dislocation's amplitude already in the output (offset and slope aside)
    if fin.sum() > 3:
        kept = _shape_fit(d[fin], total[fin] / count[fin], shape(d[fin]))[2]
    change = (trace.amplitude_mm - kept) * shape(d) * taper(d)
    for a, b in row_strips(h, w):
        dist = signed_distance((h, w), trace.point, trace.normal, slice(a, b))
        band = np.abs(dist) <= HALF_WIDTH_PX
        if not band.any():
            continue
        delta = np.where(band, np.interp(dist, d, change), 0.0)
        for t in range(1, n_dates):
            rows = series[t, a:b]
            series[t, a:b] = (rows + shares[t] * delta).astype(rows.dtype)


def trace_step(
    series: Any,
    date_rows: RowReader,
    projection: Any,
    dem: Any,
    hat: np.ndarray,
    times_days: np.ndarray,
    line: tuple | None = None,
) -> str:
    """Find a trace in ``projection`` or, where it holds none, in the straight line's
    cumulative ``line = (map, its hat matrix)``, and restore it in ``series``
    (:func:`restore`, shared between dates by that map's hat); the note for
    :data:`TRACE_ATTR`: the trace's JSON, ``"none"`` or why it was skipped. A steady creep
    can be clear on the straight line only (session 31: Benchmark v2 `in` 27, a 72-date
    creep the creep model's cross-validation rejects, z 8.9 there, returned as zero)."""
    h, w = series.shape[1:]
    if h * w > MAX_PIXELS:
        return f"skipped: scene over {MAX_PIXELS} pixels"
    trace = find_trace(np.asarray(projection[0:h], dtype=np.float64), dem)
    if trace is None and line is not None:
        trace = find_trace(np.asarray(line[0][0:h], dtype=np.float64), dem)
        hat = line[1]
    if trace is None:
        return "none"
    restore(series, date_rows, trace, hat, times_days)
    return trace.to_attr()
