"""Significance gate: keep what the stack detects, at full amplitude; return zero elsewhere.

A least-squares (or learned) estimate of the cumulative deformation is unbiased but noisy:
on a scene without deformation it shows the stack's leftover atmosphere (several mm on short
stacks). Shrinking every scale towards zero (a Wiener gain) lowers that noise but also
lowers the amplitude of real signals. This step decides instead, as a matched-filter
detector would (Kay 1998, Fundamentals of Statistical Signal Processing vol. II, sec. 4.3):

1. noise maps with the cumulative's own temporal weighting: each pixel's residuals from an
   unweighted least-squares fit of a piecewise-linear history (``T // 3`` segments, 4 to 24,
   so that real histories leave little in them; unweighted, because the date variances come
   from small crops and miss broad atmosphere: a date that looks quiet draws a weighted fit
   to itself and hides its noise while the cumulative leans on it, which let false patches
   of 7-29 mm through on Benchmark v2), divided by ``sqrt(1 - h_tt)`` (leverage:
   a residual's variance is ``sigma_t^2 (1 - h_tt)``; Cook & Weisberg 1982, Residuals and
   Influence in Regression, sec. 2.2), combined with the weights ``a_t`` of the cumulative
   and random signs ``s_t`` (dates' noises are independent): ``sum_t s_t a_t r_t``; a pixel
   missing on some dates gets the same from its own fit on the dates it has
   (:func:`pattern_combos`: on Benchmark v2 such patches had passed up to 171 mm of
   stratification when judged against the noise of complete pixels);
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

Two least-squares maps are tested besides the model's cumulative, each with the Gaussians
only and against its own noise maps: the cumulative of the model's piecewise-linear
weighting, and that of a straight line through the whole stack (:data:`LINEAR_SEGMENTS`;
on 72 dates its noise is 0.68x the 4-segment one's, so steady signals pass 1.5x weaker).

Inside the gate the output keeps its full amplitude; outside it is the scene's level (zero
deformation). Without deformation, nothing passes a 5.5-sigma test of ten filters on a
scene (measured: false-positive p99 0.0 mm on the 12 no-deformation scenes of Benchmark v2's
split ``in``). The least-squares cumulative is tested with the Gaussians only: it keeps
pixel-scale terms that the residuals do not show, so through the band-passes and
derivatives it raised false alarms on those scenes.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from insar_denoise.inference import strips
from insar_denoise.inference.broad_scales import cumulative_weights, history_basis

#: detector filters ``(kind, scale px)``: ``smooth`` a Gaussian, ``bandpass`` a Gaussian minus
#: one of twice the scale, ``slope_x`` / ``slope_y`` Gaussian derivatives
FILTERS: tuple[tuple[str, float], ...] = (
    *(("smooth", s) for s in (1.0, 2.0, 4.0, 8.0, 16.0)),
    *(("bandpass", s) for s in (2.0, 4.0, 8.0)),
    *((kind, s) for s in (4.0, 8.0) for kind in ("slope_x", "slope_y")),
)
#: segments of the second least-squares statistic: a straight line through the whole stack
LINEAR_SEGMENTS = 1
#: the noise realisations of a filter are filtered in this many groups (threads)
NOISE_GROUPS = 2
#: detection threshold (noise standard deviations at the scale)
THRESHOLD = 5.5
#: per-filter thresholds ``{(kind, scale): value}`` where they differ from :data:`THRESHOLD`
FILTER_THRESHOLDS: dict[tuple[str, float], float] = {}
#: random-sign noise realisations
N_REALISATIONS = 16
#: a gate covering more than this share of the scene's finite pixels opens everywhere: the
#: signal is broader than the scene and the rest of it would be set to zero (Benchmark v2
#: replay, session 20: `shifted` bowl 63 3.07 -> 1.74 mm, `in` creep 55 4.31 -> 3.95; the
#: second detector's ``MAX_SHARE``, above which it cannot predict the noise from around)
WHOLE_SCENE_SHARE = 0.75
#: the same on a scene whose valid pixels span less than :func:`small_extent_px` (a small
#: scene padded to the gate's size): a detection over a quarter of it is a signal broader
#: than the scene (72 x 48 px crops of Benchmark v2, ``benchmarks/small_scenes.py``: 6 -> 7
#: of 15 at SNR >= 20 within the gain target, no-deformation crops still 0.0 mm)
SMALL_SCENE_SHARE = 0.25
#: pixels missing on some dates: the most common patterns of missing dates of a map (a
#: block on the streamed path) get their own noise maps, up to this many, each covering at
#: least :data:`MIN_PATTERN_PX` pixels there (the rest stay NaN: frames with pixel-by-pixel
#: masks keep their run time)
MAX_PATTERNS = 256
MIN_PATTERN_PX = 64
#: uncertainty bands where the gate is off: at least these multiples of the cumulative's
#: noise std at 1 px (the scale of a signal it may miss), and where it passes (the model's
#: own band misses its errors on deforming pixels): the smallest factors (grid 0.25) whose
#: bands hold 68.3 % / 95.4 % of deforming pixels' errors in each region on 16 fresh scenes
#: (``benchmarks/gate_bands.py``; refitted in session 12, when the noise maps' residual fit
#: became unweighted and their std larger: 1.0 / 2.0 in both regions before)
BAND_68 = 0.75
BAND_95 = 2.0
BAND_IN_68 = 0.5
BAND_IN_95 = 1.5
#: the same where the gate opened everywhere (:data:`WHOLE_SCENE_SHARE`: the network's map is
#: returned whole, with its shrinkage of a strong signal): the smallest factors (grid 0.25)
#: holding 68.3 % / 95.4 % of deforming pixels' errors pooled over 14 strong open-gate stacks
#: (session 21: 1.06 / 2.17 needed; the inside factors held 21-70 % / 60-99.8 % there)
BAND_OPEN_68 = 1.25
BAND_OPEN_95 = 2.25
#: a filter is used only on scenes at least this many times its extent
MIN_CELLS = 10
#: the gate's edges are softened by a Gaussian of this width (px)
EDGE_PX = 2.0
#: a detection is widened by this many extents of its filter (its support)
WIDEN = 2.0


def fit_segments(n_dates: int) -> int:
    """Segments of the piecewise-linear history fitted before taking residuals."""
    return int(np.clip(n_dates // 3, 4, 24))


def hat_matrix(
    times_days: np.ndarray, date_var: np.ndarray, segments: int, pinv: bool = False
) -> np.ndarray:
    """``(T, T)`` weighted least-squares hat matrix ``B (Bᵀ W B)⁻¹ Bᵀ W`` of a constant and
    ``segments`` piecewise-linear ramps in normalised time, ``W = 1 / date_var`` (``pinv``:
    the pseudo-inverse, for dates that leave a segment empty)."""
    basis = history_basis(times_days, segments)
    w = 1.0 / np.asarray(date_var, dtype=np.float64)
    normal = basis.T @ (w[:, None] * basis)
    if pinv:
        return basis @ np.linalg.pinv(normal) @ (basis.T * w[None, :])
    return basis @ np.linalg.solve(normal, basis.T * w[None, :])


def noise_combinations(
    weights: np.ndarray,
    times_days: np.ndarray,
    n: int = N_REALISATIONS,
    seed: int = 0,
    pinv: bool = False,
    date_var: np.ndarray | None = None,
) -> np.ndarray:
    """``(n, T)``: noise map ``j`` of a pixel is ``combos[j] @ d`` (``d`` its series).

    Each row is ``(s ⊙ a)ᵀ (I - H) / sqrt(1 - h_tt)``: leverage-corrected residuals of an
    unweighted piecewise-linear fit, combined with the cumulative's weights ``a`` and random
    signs. Unweighted: with the date variances in the fit, a date whose variance is
    underestimated draws the fit to itself and hides its noise from the residuals, while
    the cumulative leans on it (module docstring). ``date_var``: weigh the fit by them (the
    relief check of :mod:`.stratification`, whose flags were tuned so).
    """
    t = len(weights)
    fit_var = np.ones(t) if date_var is None else date_var
    hat = hat_matrix(times_days, fit_var, fit_segments(t), pinv)
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


def pattern_combos(
    times_days: np.ndarray, date_var: np.ndarray, segments: int, weighted_fit: bool = False
) -> Callable[[np.ndarray], np.ndarray | None]:
    """``present (T,) bool -> (n, T)``: the noise combinations (:func:`noise_combinations`)
    of a pixel seen only on the ``present`` dates (its own least-squares fit, pseudo-inverse
    where the dates leave a segment empty, as the model's ridge; zeros on the missing dates;
    no less than the variance its cumulative has under ``date_var``), or None when the first
    or last date is missing (the model's cumulative is NaN there). Cached per pattern.
    ``weighted_fit``: as :func:`cumulative_combos`."""
    t = np.asarray(times_days, dtype=np.float64)
    v = np.asarray(date_var, dtype=np.float64)

    @functools.lru_cache(maxsize=4096)
    def of(key: bytes) -> np.ndarray | None:
        present = np.frombuffer(key, dtype=bool)
        if not (present[0] and present[-1]) or present.sum() < 3:
            return None
        tp, vp = t[present], v[present]
        weights = cumulative_weights(tp, vp, segments, pinv=True)
        combos = noise_combinations(weights, tp, pinv=True, date_var=vp if weighted_fit else None)
        # few dates: high leverage makes the residuals understate the noise; no less than
        # the cumulative's own variance under the date variances
        implied = float(np.mean((combos.astype(np.float64) ** 2) @ vp))
        ratio = math.sqrt(float(weights**2 @ vp) / max(implied, 1e-12))
        sub = combos * np.float32(max(1.0, ratio))
        if not np.isfinite(sub).all():
            return None
        out = np.zeros((len(sub), len(t)), np.float32)
        out[:, present] = sub
        return out

    return lambda present: of(np.ascontiguousarray(present, dtype=bool).tobytes())


def noise_maps(
    displacement: np.ndarray,
    combos: np.ndarray,
    partial: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> np.ndarray:
    """``(n, H, W)`` noise realisations of the cumulative map (mm) of ``displacement (T, H,
    W)`` mm, with ``combos`` from :func:`noise_combinations`. Pixels missing on some dates get
    the combinations of their own dates from ``partial`` (:func:`pattern_combos`; the
    :data:`MAX_PATTERNS` most common patterns of at least :data:`MIN_PATTERN_PX` pixels;
    otherwise, or where it gives None, they are NaN, as pixels missing on every date). A last row
    of ``combos`` (the least-squares cumulative, :func:`with_projection`) stays NaN there:
    another estimator, whose patch edges would look like steps to :mod:`.fault_trace`."""
    d = np.asarray(displacement, dtype=np.float32)
    t = d.shape[0]
    finite = np.isfinite(d).reshape(t, -1)
    ok = finite.all(axis=0)
    filled = np.where(finite, d.reshape(t, -1), 0.0)
    out = np.empty((len(combos), ok.size), np.float32)
    for i, comb in enumerate(combos):
        out[i] = comb @ filled
    out[:, ~ok] = np.nan
    some = np.flatnonzero(~ok & finite.any(axis=0)) if partial is not None else []
    if len(some):
        packed = np.ascontiguousarray(np.packbits(finite[:, some], axis=0).T)
        keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
        _, first, inverse, counts = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        inverse = inverse.ravel()
        for k in np.argsort(-counts, kind="stable")[:MAX_PATTERNS]:
            if counts[k] < MIN_PATTERN_PX:
                break
            sub = partial(finite[:, some[first[k]]])
            if sub is not None:
                cols = some[inverse == k]
                out[: len(sub), cols] = sub @ filled[:, cols]
    return out.reshape((len(combos),) + d.shape[1:])


def _reader(src, dtype=None):
    """``(lo, hi) -> rows`` of a map indexable by rows (array or :class:`.strips.MapView`)."""
    return lambda lo, hi: np.asarray(src[lo:hi], dtype=dtype)


def extent(kind: str, scale: float) -> float:
    """Width (px) of what a filter responds to: twice the scale for a band-pass."""
    return 2.0 * scale if kind == "bandpass" else scale


def small_extent_px() -> int:
    """Smallest scene (px) with room for every filter: :data:`MIN_CELLS` times the largest."""
    return int(MIN_CELLS * max(extent(*f) for f in FILTERS))


def valid_extent(rows: np.ndarray, cols: np.ndarray) -> int:
    """Smaller side (px) of the valid pixels' bounding box, from the masks of the rows and
    of the columns that hold any (0 when none do)."""
    spans = [np.nonzero(m)[0] for m in (rows, cols)]
    return min(int(s[-1] - s[0]) + 1 for s in spans) if all(s.size for s in spans) else 0


def _filtered_rows(
    read, height: int, a: int, b: int, kind: str, sigma: float, base: float
) -> np.ndarray:
    """Rows ``[a, b)`` of the map through one filter of :data:`FILTERS`, NaN kept (filled
    with ``base``, its median, before filtering)."""

    def filled(lo: int, hi: int) -> np.ndarray:
        image = read(lo, hi)
        return np.where(np.isfinite(image), image - base, 0.0)

    out = strips.filtered_rows(filled, height, a, b, sigma, kind)
    return np.where(np.isfinite(read(a, b)), out, np.nan)


def _base(read, shape: tuple[int, int]) -> float:
    """Median of a map's finite values (0 if none): the level :func:`_filtered_rows` removes."""
    med, v = strips.median(read, shape, strips.finite)
    return float(med) if v.size else 0.0


def _threads() -> int:
    """Threads for the noise groups: ``OMP_NUM_THREADS`` when set, else the CPU count."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(NOISE_GROUPS, int(env) if env.isdigit() else (os.cpu_count() or 1)))


def _filter_group(reads, bases, shape, kind: str, scale: float, maps) -> list[float]:
    """Robust std of each filtered noise map of one group; ``maps``: the group's working
    maps (one filtered map, the sum of squares and the count of finite values)."""
    (h, w), sds = shape, []
    m, sum_sq, count = maps
    for j, (read, base) in enumerate(zip(reads, bases, strict=True)):
        for a, b in strips.row_strips(h, w):
            mj = _filtered_rows(read, h, a, b, kind, scale, base)
            m[a:b] = mj
            fin = np.isfinite(mj)
            sq = np.where(fin, mj, 0.0) ** 2
            sum_sq[a:b] = sq if j == 0 else sum_sq[a:b] + sq
            count[a:b] = fin if j == 0 else count[a:b] + fin
        sds.append(strips.robust_std(_reader(m), shape))
    return sds


def _filter_noise(reads, bases, shape, kind: str, scale: float, work) -> float:
    """Robust std of the filtered noise maps (median over the realisations); ``work[0]``
    gets the local mean square of the filtered noise (over the realisations, smoothed over
    half the filter's extent), :func:`_inflation` its ratio to its median. The realisations
    are filtered in :data:`NOISE_GROUPS` groups (one thread each where the CPU has them; the
    same sums in the same order on any machine), in row strips: group ``k``'s filtered map,
    sums of squares and counts on ``work[3 + 3 k : 6 + 3 k]``, summed into the first's."""
    h, w = shape
    groups = [range(k, len(reads), NOISE_GROUPS) for k in range(min(NOISE_GROUPS, len(reads)))]
    slots = [[strips.MapView(work, 3 + 3 * k + i) for i in range(3)] for k in range(len(groups))]

    def run(k: int) -> list[float]:
        idx = groups[k]
        return _filter_group(
            [reads[j] for j in idx], [bases[j] for j in idx], shape, kind, scale, slots[k]
        )

    threads = min(_threads(), len(groups))
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            sds = [sd for part in pool.map(run, range(len(groups))) for sd in part]
    else:
        sds = [sd for k in range(len(groups)) for sd in run(k)]
    (_, sum_sq, count), smooth_ms = slots[0], strips.MapView(work, 0)
    for _, other_sq, other_count in slots[1:]:
        for a, b in strips.row_strips(h, w):
            sum_sq[a:b] = sum_sq[a:b] + other_sq[a:b]
            count[a:b] = count[a:b] + other_count[a:b]

    def mean_square(lo: int, hi: int) -> np.ndarray:
        c = count[lo:hi]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(c > 0, sum_sq[lo:hi] / np.maximum(c, 1).astype(np.float32), np.nan)

    any_finite = [False]

    def not_nan(rows: np.ndarray) -> np.ndarray:
        any_finite[0] = any_finite[0] or bool(np.isfinite(rows).any())
        return rows[~np.isnan(rows)]

    fill = strips.median(mean_square, shape, not_nan)[0]  # np.nanmedian

    def filled(lo: int, hi: int) -> np.ndarray:
        ms = mean_square(lo, hi)
        return np.where(np.isfinite(ms), ms, fill)

    for a, b in strips.row_strips(h, w):
        if any_finite[0]:
            width = max(extent(kind, scale) / 2.0, 2.0)
            smooth_ms[a:b] = strips.filtered_rows(filled, h, a, b, width)
        else:  # no noise anywhere: no inflation
            smooth_ms[a:b] = np.ones((b - a, w), np.float32)
    return float(np.median(sds))


def _inflation(smooth_ms: np.ndarray, median_ms) -> np.ndarray:
    """Where the smoothed noise is larger than the scene's typical level (areas seen on
    fewer dates, noisier patches), ``>= 1``: the local RMS over the realisations, smoothed
    over half the extent (rows of ``work[0]`` of :func:`_filter_noise`), relative to its
    median."""
    return np.sqrt(np.maximum(smooth_ms / np.float32(median_ms), 1.0))  # float32: frames


def gate(
    cumulative: np.ndarray,
    noise,
    filters: tuple[tuple[str, float], ...] = FILTERS,
    threshold: float = THRESHOLD,
    projection: np.ndarray | None = None,
    scratch=None,
    linear: tuple | None = None,
) -> tuple:
    """The gate ``(H, W)`` in [0, 1], the largest ``z`` per filter and ``noise_sd (H, W)`` mm,
    the noise std of the cumulative smoothed at 1 px (the engine raises the uncertainty bands
    to multiples of it, :func:`band_floors`).

    ``cumulative (H, W)`` mm (any level: its median is removed; an array or a
    :class:`.strips.MapView`); ``noise``: ``n`` maps ``(H, W)`` from :func:`noise_maps` (an
    array ``(n, H, W)`` or a disk stack); ``projection``: the least-squares cumulative
    ``sum_t a_t d_t`` (the statistic the noise maps describe exactly), tested too with the
    Gaussians only: a pixel passes if either map is significant; ``linear``: ``(map, noise)``,
    the straight-line cumulative and its own noise maps (:func:`gate_combos`), tested with
    the Gaussians as well. Computed in row strips (:mod:`.strips`, exactly the whole-map
    filters); ``scratch``: ``shape -> (C, H, W)`` store for the working maps (e.g.
    :class:`.disk_stack.DiskStack`; then the gate and ``noise_sd`` are returned as
    :class:`.strips.MapView` of it; default: arrays in memory). A gate over
    :data:`WHOLE_SCENE_SHARE` of the scene opens everywhere.
    """
    shape = tuple(cumulative.shape)
    h, w = shape
    n_work = 3 + 3 * NOISE_GROUPS  # 0-2 here, three per noise group (:func:`_filter_noise`)
    work = np.empty((n_work, h, w), np.float32) if scratch is None else scratch((n_work, h, w))
    smooth_ms, pixel_sd, g = (strips.MapView(work, k) for k in (0, 1, 2))
    stats = [_reader(cumulative)] + ([] if projection is None else [_reader(projection)])
    tests = [(noise, stats, False)]
    if linear is not None:
        tests.append((linear[1], [_reader(linear[0])], True))
    hit = np.zeros(shape, dtype=bool)
    zmax, have_sd = np.zeros(len(filters)), False
    for test_noise, test_stats, smooth_only in tests:
        reads = [_reader(strips.MapView(test_noise, j), np.float32) for j in range(len(test_noise))]
        bases = [_base(read, shape) for read in reads]
        stat_bases = [_base(read, shape) for read in test_stats]
        for i, (kind, s) in enumerate(filters):
            size = extent(kind, s)
            if smooth_only and kind != "smooth":
                continue
            if size > min(shape) / MIN_CELLS:
                continue  # too few independent cells at this size for a noise estimate
            sd = _filter_noise(reads, bases, shape, kind, s, work)
            if not np.isfinite(sd) or sd <= 0:
                continue
            median_ms = strips.median(_reader(smooth_ms), shape)[0]
            if (kind, s) == ("smooth", 1.0) and not have_sd:
                for a, b in strips.row_strips(h, w):
                    pixel_sd[a:b] = (sd * _inflation(smooth_ms[a:b], median_ms)).astype(np.float32)
                have_sd = True
            edge = int(round(2 * size))  # reflected copies inflate the filtered noise there
            level = FILTER_THRESHOLDS.get((kind, s), threshold)
            n_tested = len(test_stats) if kind == "smooth" else 1
            for read, base in zip(test_stats[:n_tested], stat_bases[:n_tested], strict=True):
                above = np.zeros(shape, dtype=bool)
                for a, b in strips.row_strips(h, w):
                    filtered = _filtered_rows(read, h, a, b, kind, s, base)
                    z = np.abs(np.nan_to_num(filtered, nan=0.0)) / (
                        np.float32(sd) * _inflation(smooth_ms[a:b], median_ms)
                    )
                    if edge > 0:
                        z[: max(0, edge - a)], z[max(0, h - edge - a) :] = 0.0, 0.0
                        z[:, :edge], z[:, -edge:] = 0.0, 0.0
                    zmax[i] = max(zmax[i], float(z.max()))
                    above[a:b] = z > level
                if above.any():
                    above_rows = lambda lo, hi: above[lo:hi].astype(np.float32)  # noqa: B023, E731
                    for a, b in strips.row_strips(h, w):
                        hit[a:b] |= strips.filtered_rows(above_rows, h, a, b, WIDEN * size) > 0.02
    hit_rows = lambda lo, hi: hit[lo:hi].astype(np.float32)  # noqa: E731
    for a, b in strips.row_strips(h, w):
        g[a:b] = np.clip(strips.filtered_rows(hit_rows, h, a, b, EDGE_PX), 0.0, 1.0)
        if not have_sd:
            pixel_sd[a:b] = np.full((b - a, w), np.nan, np.float32)
    _open_if_broad(g, stats[0], shape)
    if scratch is not None:
        return g, zmax, pixel_sd
    return work[2].copy(), zmax, work[1].copy()


def _open_if_broad(g, read, shape: tuple[int, int]) -> None:
    """Set the gate ``g`` to 1 everywhere (in place, row strips) when it covers more than
    :data:`WHOLE_SCENE_SHARE` of the pixels where ``read`` (the cumulative) is finite, or
    :data:`SMALL_SCENE_SHARE` where those pixels span less than :func:`small_extent_px`."""
    h, w = shape
    covered = finite = 0
    rows, cols = np.zeros(h, bool), np.zeros(w, bool)
    for a, b in strips.row_strips(h, w):
        ok = np.isfinite(read(a, b))
        covered += int((np.asarray(g[a:b])[ok] > 0.5).sum())
        finite += int(ok.sum())
        rows[a:b] = ok.any(axis=1)
        cols |= ok.any(axis=0)
    small = valid_extent(rows, cols) < small_extent_px()
    share = SMALL_SCENE_SHARE if small else WHOLE_SCENE_SHARE
    if finite and covered > share * finite:
        for a, b in strips.row_strips(h, w):
            g[a:b] = np.ones((b - a, w), np.float32)


def date_level(read, shape: tuple[int, int]) -> float:
    """Median of a date's finite values (0 if none): the level :func:`gate_date` keeps."""
    return _base(read, shape)


def gate_rows(rows: np.ndarray, gate_rows_: np.ndarray, level: float) -> np.ndarray:
    """Rows of a date with their deviation from the date's ``level`` scaled by the gate."""
    return ((rows - level) * gate_rows_ + level).astype(rows.dtype)


def gate_date(image: np.ndarray, gate_map: np.ndarray) -> np.ndarray:
    """One date ``(H, W)`` with its deviation from its median scaled by the gate."""
    return gate_rows(image, gate_map, date_level(_reader(image), image.shape))


def apply_gate(series: np.ndarray, gate_map: np.ndarray) -> np.ndarray:
    """Series ``(T, H, W)`` with each date's deviation from its median scaled by the gate."""
    return np.stack([gate_date(series[t], gate_map) for t in range(series.shape[0])])


def cumulative_combos(
    times_days: np.ndarray, date_var: np.ndarray, segments: int, weighted_fit: bool = False
) -> np.ndarray:
    """``(n + 1, T)``: the noise combinations of the cumulative with the model's ``segments``
    weighting and, last, those weights (:func:`with_projection`); ``weighted_fit``: residuals
    of the fit weighted by ``date_var`` (:func:`noise_combinations`)."""
    weights = cumulative_weights(times_days, date_var, segments)
    fit_var = date_var if weighted_fit else None
    return with_projection(noise_combinations(weights, times_days, date_var=fit_var), weights)


def cumulative_noise(
    displacement: np.ndarray,
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    weighted_fit: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The noise maps ``(n, H, W)`` of the cumulative and the least-squares cumulative
    ``sum_t a_t d_t (H, W)`` (mm) of ``displacement (T, H, W)`` relative to the first date,
    with the cumulative weights of the model's ``segments`` (each pixel missing on some dates
    with those of its own dates, :func:`pattern_combos`); ``weighted_fit``: as
    :func:`cumulative_combos`."""
    combos = cumulative_combos(times_days, date_var, segments, weighted_fit)
    partial = pattern_combos(times_days, date_var, segments, weighted_fit)
    maps = noise_maps(displacement, combos, partial)
    return maps[:-1], maps[-1]


def gate_combos(
    times_days: np.ndarray, date_var: np.ndarray, segments: int
) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray | None]]:
    """The combinations of every map the gate needs, ``(2n + 2, T)``, and their per-pattern
    form for pixels missing some dates (:func:`pattern_combos`; NaN rows for the two
    least-squares maps there): ``n`` noise maps and the least-squares cumulative with the
    model's ``segments``, then the same for a straight line (:data:`LINEAR_SEGMENTS`).
    :func:`split_maps` takes them apart."""
    both = [cumulative_combos(times_days, date_var, k) for k in (segments, LINEAR_SEGMENTS)]
    parts = [pattern_combos(times_days, date_var, k) for k in (segments, LINEAR_SEGMENTS)]
    nan_row = np.full((1, len(times_days)), np.nan, np.float32)

    def partial(present: np.ndarray) -> np.ndarray | None:
        subs = [part(present) for part in parts]
        if any(sub is None for sub in subs):
            return None
        return np.vstack([subs[0], nan_row, subs[1], nan_row])

    return np.vstack(both), partial


def split_maps(maps) -> tuple:
    """``(noise, projection, linear_noise, linear)`` of the ``2n + 2`` maps of
    :func:`gate_combos` (an array, or a disk stack read as ``[j, rows]``: then views)."""
    n = (len(maps) - 2) // 2
    if isinstance(maps, np.ndarray):
        return maps[:n], maps[n], maps[n + 1 : 2 * n + 1], maps[2 * n + 1]
    return (
        strips.StackRows(maps, 0, n),
        strips.MapView(maps, n),
        strips.StackRows(maps, n + 1, n),
        strips.MapView(maps, 2 * n + 1),
    )


def gate_noise_maps(
    displacement: np.ndarray, times_days: np.ndarray, date_var: np.ndarray, segments: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`split_maps` of the gate's maps of ``displacement (T, H, W)`` mm relative to the
    first date (:func:`gate_combos`)."""
    combos, partial = gate_combos(times_days, date_var, segments)
    return split_maps(noise_maps(displacement, combos, partial))


def gate_series(
    series: np.ndarray,
    displacement: np.ndarray,
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    maps: tuple | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The gated series, the gate, the largest ``z`` per filter and the cumulative's noise
    std at 1 px (whole scene in memory; :func:`gate`).

    ``series (T, H, W)`` mm relative to the first date; ``displacement (T, H, W)`` the input
    relative to the first date; ``segments``: the model's (its cumulative weighting);
    ``maps``: :func:`gate_noise_maps` of them when already computed (its noise maps may carry
    the stratification terms, :mod:`.relief_noise`).
    """
    noise, projection, linear_noise, linear = maps or gate_noise_maps(
        displacement, times_days, date_var, segments
    )
    change = series[-1] - series[0]
    cumulative = tested_cumulative(change, displacement[0], displacement[-1])
    linear_maps = (linear, linear_noise)
    g, zmax, noise_sd = gate(cumulative, noise, projection=projection, linear=linear_maps)
    g = shut_unreferenced(g, displacement[0], change)
    return apply_gate(series, g), g, zmax, noise_sd


def shut_unreferenced(gate_rows_: np.ndarray, first: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The gate's rows set to 0 where the input's first date is missing and the network
    still returned a change (``first``, ``change``: the same rows): with no first date the
    whole series has no reference, and the network's cumulative there is a guess (a 48 px
    square missing on the first of 9 dates returned −70 mm where the gate opened beside it,
    `in` shallow Mogi 12, 0.08 -> 5.74 mm; session 40)."""
    return shut_where(gate_rows_, unreferenced(first, change))


def shut_where(gate_rows_: np.ndarray, shut: np.ndarray) -> np.ndarray:
    """The gate's rows set to 0 where ``shut`` (float32)."""
    return np.where(shut, np.float32(0.0), gate_rows_).astype(np.float32)


def unreferenced(first: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Where the input's first date is missing but the network returned a change."""
    return ~np.isfinite(np.asarray(first)) & np.isfinite(np.asarray(change))


def tested_cumulative(cumulative: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The network's cumulative as the gate tests it: NaN (not tested, as a hole) where the
    input's first or last date is missing (``first``, ``last``: those dates' rows), since
    there it is the network's extrapolation, with no noise maps to judge it by
    (:func:`pattern_combos`); a 48 px block missing on the last of 9 dates opened the gate on
    its edge, 0.32 -> 5.69 mm on `shifted` bowl 32 (session 40)."""
    unseen = ~(np.isfinite(np.asarray(first)) & np.isfinite(np.asarray(last)))
    return np.where(unseen, np.float32(np.nan), cumulative)


def gate_opened(gate_map) -> bool:
    """Whether the gate is 1 everywhere (:func:`gate` opened it; numpy, dask or a
    :class:`.strips.MapView`, read by rows)."""
    if isinstance(gate_map, strips.MapView):
        h, w = gate_map.shape
        return all(bool(np.all(gate_map[a:b] == 1.0)) for a, b in strips.row_strips(h, w))
    every = (gate_map == 1.0).all()
    return bool(every.compute() if hasattr(every, "compute") else every)


def band_floors(gate_map, noise_sd, opened: bool = False) -> tuple:
    """Lower bounds of the 68 % and 95 % half-widths (mm): :data:`BAND_68` / :data:`BAND_95`
    x ``noise_sd`` where the gate is off, :data:`BAND_IN_68` / :data:`BAND_IN_95` x it where
    it passes, :data:`BAND_OPEN_68` / :data:`BAND_OPEN_95` x it everywhere when the gate
    ``opened`` (numpy or dask arrays)."""
    if opened:
        return noise_sd * BAND_OPEN_68, noise_sd * BAND_OPEN_95
    f68 = noise_sd * (BAND_68 * (1.0 - gate_map) + BAND_IN_68 * gate_map)
    f95 = noise_sd * (BAND_95 * (1.0 - gate_map) + BAND_IN_95 * gate_map)
    return f68, f95
