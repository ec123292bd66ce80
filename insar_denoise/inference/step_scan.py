"""A step scan for broad signals that start at one date, where nothing else is found.

A step in time (an eruption's inflation, a bowl that starts to subside, a slow-slip event) is
seen by the straight line's map at a fraction of its amplitude when it comes early or late,
and a signal broader than the scene leaves the second detector's harmonic noise prediction
(:mod:`.bilaplacian_support`) no surroundings to work from. For every candidate date ``k``
with at least :data:`MIN_SIDE` dates on each side, the step map ``sum_t b_t d_t`` (the
weighted least-squares step of a constant and a step at ``k``, each date's elevation fit
``c + k z + q z²`` removed) is band-passed (a Gaussian of ``s`` minus one of ``2 s``: the
matched filter of a blob in noise that is flat at broad scales, as turbulence is beyond its
correlation length) and compared with its noise: the expected square of the sign-flip noise
maps of :mod:`.significance`, ``sum_t b_t² r_t² / (1 - h_tt)`` with ``r_t`` the filtered
residuals of the piecewise-linear fit plus the step at ``k`` (Rademacher signs: ``E[(sum_t
s_t c_t)²] = sum_t c_t²``; no random draws), smoothed and raised where locally stronger as
in :func:`.bilaplacian_support.zmaps`. Adding the step to the fit is a rank-one update of its
residuals, so each date is filtered once per scale and each candidate costs ``O(T H W)``.
A step in the last one or two dates (an event just before the last acquisitions) leaves too
few dates after it for those residuals: its noise is each pixel's typical date noise from the
residuals of the dates before it (:func:`late_variance`; session 26), and it must last: every
date from it on carries at least :data:`LASTING_SHARE` of it (:func:`lasts`; session 39).
Detections covering more than :data:`.detector_supports.MAX_SHARE` of the scene, or
detections whose step beyond steady motion covers more than :data:`STEADY_SHARE` of it (session
26: `shifted` bowl 6, 2.89 -> 1.51 mm), give :class:`BroadStep`: the step map smoothed by
:data:`SMOOTH_PX`, written from date ``k`` on.

Benchmark v2 (session 25, model card design table (w)): the 24 no-deformation scenes reach
z 6.75 (`in`) / 6.22 (`shifted`); used only where the gate and the second detector find
nothing, it returns a 72-date bowl at SNR 11 (`in` 35, r 0.86, 6.68 -> 3.50 mm) and lowers
`shifted` 62 (3.62 -> 2.86 mm). The late steps (session 26): no-deformation scenes of three
design seeds reach z 4.9 at the last dates (72 stacks of 18-72 dates); a fault that moved on the
last date (`shifted` 45, SNR 32) comes back at r 0.95 (5.89 -> 1.93 mm).

Where the second detector does fill areas, :func:`step_beyond_fill` scans the step beyond a
straight line in time (a steady signal, which the straight line already sees, gives none):
where, at its best date, it is detected over more than :data:`OUTSIDE_SHARE` of the pixels
outside the areas, the harmonic prediction would take the signal around them for noise, and
the step at that date is written over the scene instead (:func:`step_estimate`, as the broad
step; session 26 returned the network's ungated map: `shifted` bowl 5, SNR 40, 6.17 -> 1.83
mm, gain 0.16 -> 1.13, now 0.89 mm; the network kept a date's stratification on a fresh
draw of the deep fault `shifted` 45, 21.3 mm against 3.3 for the step; session 38. The deep
fault `shifted` 47, whose step stays inside its area, 0.08 of the outside, keeps its fill).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import integrate, ndimage, stats

from insar_denoise.inference.broad_scales import history_basis
from insar_denoise.inference.detector_supports import (
    MAX_SHARE,
    MIN_INTERIOR,
    SCALES,
    grown_area,
    interior,
)
from insar_denoise.inference.noise_prediction import elevation_free, elevation_free_banded
from insar_denoise.inference.significance import fit_segments

#: a step needs this many dates on each side (with fewer, the residuals of one side cannot
#: show its noise: the scan's `in` no-deformation scenes reached z 11 at k = 2)
MIN_SIDE = 3
#: stacks with fewer dates are not scanned: three dates a side leave the step's noise to few
#: residuals (session 25: a 9-date `shifted` scene at SNR 3.9 got a false broad step, 0.26 ->
#: 4.21 mm; the unwrapping and stratification steps use the same bound)
MIN_DATES = 12
#: detection threshold: above every no-deformation scene of Benchmark v2 (6.91, 24 scenes)
THRESHOLD = 7.0
#: at most this many candidate dates, evenly spread (neighbouring steps see the same signal)
MAX_CANDIDATES = 24
#: the broad step's map is smoothed by a Gaussian of this width (px)
SMOOTH_PX = 8.0
#: the broad step's map loses its relief fit in the band below this scale (px;
#: :func:`.noise_prediction.elevation_free_banded`; 8 and 16 px gave the same on `in` 35 and
#: `shifted` 6, 62, session 33)
RELIEF_BAND_PX = 8.0
#: the smoothed map is written where the valid pixels' share of the smoothing weight exceeds
#: this (into gap patches up to about two smoothing widths from valid pixels)
REACH = 0.05
#: a step beyond steady motion detected over more than this share of the pixels outside the
#: second detector's areas (those its harmonic prediction takes for noise) opens the gate
#: (session 39: 0.2 -> 0.12; a fresh draw under `shifted` bowl 5 covered 0.186, the design
#: draw 0.36, and the deep fault `shifted` 47 that keeps its fill 0.08; no design scene moved)
OUTSIDE_SHARE = 0.12
#: a detected step that is not broad is taken as broad all the same when the step beyond
#: steady motion, at its own best date, covers more than this share of the scene
STEADY_SHARE = 0.5
#: a late step (fewer than :data:`MIN_SIDE` dates after it) is kept only where every date
#: from it on carries at least this share of it (:func:`lasts`; session 39: a fresh draw of
#: `shifted` 77, one date's delay and a partly removed unwrapping error on the second-last of
#: 18 dates taken for a broad step, 9.25 mm against the zero map's 0.30; the last date
#: carried 0.15 of it, the dates before the step -0.10 to 0.16)
LASTING_SHARE = 0.5
#: scenes over this many pixels skip the scan (each scale holds two ``(T, H, W)`` arrays)
MAX_PIXELS = 512 * 512


def candidates(n_dates: int) -> np.ndarray:
    """The candidate step dates ``k`` (the step between dates ``k - 1`` and ``k``)."""
    ks = np.arange(MIN_SIDE, n_dates - MIN_SIDE + 1)
    if len(ks) > MAX_CANDIDATES:
        ks = np.unique(np.round(np.linspace(ks[0], ks[-1], MAX_CANDIDATES)).astype(int))
    return ks


def late_candidates(n_dates: int) -> np.ndarray:
    """Step dates with fewer than :data:`MIN_SIDE` dates after them (a step in the last one
    or two acquisitions), tested with :func:`late_variance`; none below :data:`MIN_DATES`."""
    if n_dates < MIN_DATES:
        return np.zeros(0, int)
    return np.arange(n_dates - MIN_SIDE + 1, n_dates)


def late_variance(
    filtered: np.ndarray, times_days: np.ndarray, date_var: np.ndarray, k: int, b: np.ndarray
) -> np.ndarray:
    """The noise variance ``(N,)`` of the step map ``sum_t b_t d_t`` at a late date ``k``
    from the dates before it: the residuals of their weighted straight line (leave-one-out
    scaled) give each pixel's typical date noise (median over dates, robust to a signal that
    grows before ``k``), each date scaled by its ``date_var`` and the dates from ``k`` on
    (whose own residuals are the step itself) by the median one."""
    u = (times_days - times_days[0]) / max(float(times_days[-1] - times_days[0]), 1e-6)
    basis = np.c_[np.ones(k), u[:k]]
    w = 1.0 / np.asarray(date_var[:k], np.float64)
    hat = basis @ np.linalg.solve(basis.T @ (w[:, None] * basis), basis.T * w)
    lev = np.clip(1.0 - np.diag(hat), 0.05, 1.0)
    typical = float(np.median(date_var[:k]))
    res = filtered[:k] - hat.astype(np.float32) @ filtered[:k]
    np.square(res, out=res)  # in place: at 512² x 100 dates each copy is 0.1 GB
    res *= (typical / (lev * date_var[:k])).astype(np.float32)[:, None]
    per_date = np.median(res, axis=0, overwrite_input=True) / median_chi2(k)
    dv = np.r_[np.asarray(date_var[:k], np.float64), np.full(len(b) - k, typical)]
    return per_date * float(np.sum(b**2 * dv) / typical)


@lru_cache(maxsize=256)
def median_chi2(n: int) -> float:
    """The expected sample median of ``n`` chi-square(1) variates (0.455 for large ``n``; 9 %
    more at ``n`` = 22): the mean of its middle order statistics, ``E X_(r) = int_0^1
    F^-1(u) Beta(u; r, n - r + 1) du`` (David & Nagaraja 2003, Order Statistics, eq. 2.1.5)."""
    ranks = {(n + 1) // 2, n // 2 + 1}
    total = 0.0
    for r in ranks:
        f = lambda u, r=r: stats.chi2.ppf(u, 1) * stats.beta.pdf(u, r, n - r + 1)  # noqa: E731
        total += integrate.quad(f, 0.0, 1.0, limit=200)[0]
    return total / len(ranks)


def band_pass(image: np.ndarray, scale: float) -> np.ndarray:
    """A Gaussian of ``scale`` minus one of twice it (reflected at the edges)."""
    g = lambda s: ndimage.gaussian_filter(image, s, mode="reflect")  # noqa: E731
    return g(scale) - g(2.0 * scale)


def step_weights(date_var: np.ndarray, k: int, times_days: np.ndarray | None = None) -> np.ndarray:
    """``b (T,)``: ``sum_t b_t d_t`` is the weighted least-squares step at date ``k`` of a
    constant and a step (weights ``1 / date_var``); with ``times_days``, of a constant, a
    straight line in time and the step (the step beyond steady motion: a line gives 0)."""
    t = len(date_var)
    columns = [np.ones(t)]
    if times_days is not None:
        days = np.asarray(times_days, np.float64)
        columns.append((days - days[0]) / max(float(days[-1] - days[0]), 1e-6))
    basis = np.column_stack([*columns, (np.arange(t) >= k).astype(float)])
    w = 1.0 / np.asarray(date_var, np.float64)
    return np.linalg.solve(basis.T @ (w[:, None] * basis), basis.T * w)[-1]


def broad_step_variance(date_var: np.ndarray, k: int) -> float:
    """Variance (mm²) of the date noise in the step map at date ``k`` (``sum_t b_t²
    date_var_t``, :func:`step_weights`): what the broad step's output carries on top of the
    cumulative's noise, since one date's atmosphere is not averaged down (a step on the last
    date is that date's delay). The engine adds it to the bands of a broad step (session 27:
    two fresh scenes of late broad steps held 58 % and 82 % of their pixels at 1σ without it,
    91 % and 95 % with it)."""
    dv = np.asarray(date_var, np.float64)
    b = step_weights(dv, k)
    return float(np.sum(b * b * dv))


class StepNoise:
    """The expected square of the sign-flip noise maps of step maps (module docstring), for
    every candidate date, from the filtered dates ``(T, N)`` of one scale."""

    def __init__(self, filtered: np.ndarray, times_days: np.ndarray, date_var: np.ndarray):
        n_dates = filtered.shape[0]
        basis = history_basis(times_days, fit_segments(n_dates))
        self.resid0 = np.eye(n_dates) - basis @ np.linalg.pinv(basis.T @ basis) @ basis.T
        self.res = (self.resid0 @ filtered).astype(np.float32)  # residuals of the base fit
        self.res2 = self.res**2
        self.date_var = np.asarray(date_var, np.float64)

    def variance(self, k: int, weights: np.ndarray | None = None) -> np.ndarray:
        """``sum_t (b_t r_t)² / (1 - h_tt)`` ``(N,)`` with the fit's residuals ``r`` once the
        step at ``k`` joins the piecewise-linear fit (a rank-one update); ``weights``: ``b``
        when already computed (:func:`step_weights`)."""
        n_dates = len(self.date_var)
        b = step_weights(self.date_var, k) if weights is None else weights
        h = self.resid0 @ (np.arange(n_dates) >= k).astype(float)
        u = h / np.linalg.norm(h)  # the step's direction orthogonal to the base fit
        lev = np.clip(1.0 - (1.0 - np.diag(self.resid0) + u**2), 0.05, 1.0)
        c2 = b**2 / lev
        proj = u.astype(np.float32) @ self.res  # the step's part of the residuals
        var = c2.astype(np.float32) @ self.res2  # sum_t c_t² (res_t - u_t proj)²
        var -= 2.0 * proj * ((c2 * u).astype(np.float32) @ self.res)
        var += float(np.sum(c2 * u**2)) * proj**2
        return np.maximum(var, 0.0)


def step_zmaps(
    series: np.ndarray,
    times_days: np.ndarray,
    date_var: np.ndarray,
    ok: np.ndarray,
    dem=None,
    steady: bool = False,
) -> dict[int, dict[float, np.ndarray]]:
    """``{k: {scale: z (H, W)}}`` for every candidate step date of ``series (T, H, W)`` mm
    (relative to the first date; only ``ok`` pixels, valid on every date, are used); ``z``
    is 0 within two scales of the edge and off ``ok``. ``steady``: steps beyond a straight
    line in time (:func:`step_weights` with the times)."""
    n_dates = series.shape[0]
    late = late_candidates(n_dates)
    ks = np.r_[candidates(n_dates), late].astype(int)
    if len(ks) == 0:
        return {}
    flat = np.where(ok, np.nan_to_num(series), 0.0).astype(np.float64)
    free = elevation_free(flat, ok, dem, ok).astype(np.float32)
    line = times_days if steady else None
    weights = {int(k): step_weights(date_var, int(k), line) for k in ks}
    out: dict[int, dict[float, np.ndarray]] = {int(k): {} for k in ks}
    for s in SCALES:
        inner = interior(ok, s)
        if inner is None:
            continue
        filt = np.stack([band_pass(x, s) for x in free]).reshape(n_dates, -1)
        noise = StepNoise(filt, times_days, date_var)
        for k, b in weights.items():
            if k in late:
                var = late_variance(filt, times_days, date_var, k, b).reshape(ok.shape)
            else:
                var = noise.variance(k, b).reshape(ok.shape)
            smooth = ndimage.gaussian_filter(var, max(s / 2.0, 2.0))
            base = float(np.median(smooth[inner]))
            if base <= 0:
                continue
            stat = (b @ filt).reshape(ok.shape)
            sd = np.sqrt(base * np.maximum(smooth / base, 1.0))
            out[k][s] = np.where(inner, np.abs(stat) / sd, 0.0)
    return {k: z for k, z in out.items() if z}


def step_support(
    series: np.ndarray,
    times_days: np.ndarray,
    date_var: np.ndarray,
    ok: np.ndarray,
    dem=None,
    steady: bool = False,
) -> tuple[np.ndarray, float, int]:
    """The pixels of the step scan's detections ``(H, W)`` bool (areas above ``GROW``
    holding a ``z`` above :data:`THRESHOLD`, widened by the scale), the largest ``z`` and
    its date (-1 when no candidate). Scenes over :data:`MAX_PIXELS` give an empty support;
    ``steady`` as :func:`step_zmaps`."""
    support = np.zeros(ok.shape, bool)
    if ok.size > MAX_PIXELS:
        return support, 0.0, -1
    zs = step_zmaps(series, times_days, date_var, ok, dem, steady)
    best, best_k = 0.0, -1
    for k, by_scale in zs.items():
        for s, z in by_scale.items():
            top = float(z.max())
            if top > best:
                best, best_k = top, k
            support |= grown_area(z, THRESHOLD, s)
    return support & ok, best, best_k


def best_date_support(zs: dict, ok: np.ndarray) -> tuple[int, float, np.ndarray] | None:
    """``(k, z, support)`` at the date of the largest ``z`` of :func:`step_zmaps`' maps ``zs``,
    the supports of that date only (a transient detected at many dates is not broad)."""
    if not zs:
        return None
    k = max(zs, key=lambda kk: max(float(z.max()) for z in zs[kk].values()))
    support = np.zeros(ok.shape, bool)
    for s, z in zs[k].items():
        support |= grown_area(z, THRESHOLD, s)
    return k, max(float(z.max()) for z in zs[k].values()), support & ok


def _read(rows, shape: tuple[int, int, int], dem) -> tuple | None:
    """``(series (T, H, W) float32, ok, dem float64 or None)`` read by ``rows``; None for
    scenes over :data:`MAX_PIXELS`, stacks under :data:`MIN_DATES` or too few valid pixels."""
    n, h, w = shape
    if h * w > MAX_PIXELS or n < MIN_DATES:
        return None
    series = np.stack([np.asarray(rows(t, 0, h), np.float32) for t in range(n)])
    ok = np.isfinite(series).all(axis=0)
    if ok.sum() < MIN_INTERIOR:
        return None
    return series, ok, None if dem is None else np.asarray(dem, np.float64)


@dataclass
class BroadStep:
    """A step detected over most of a scene: the step's map ``(H, W)`` mm (0 off ``ok``),
    its history ``(T,)`` (0 before the step date ``k``, 1 from it), its ``z`` and the
    pixels it is written to (``ok``: valid on every date or near them)."""

    estimate: np.ndarray
    history: np.ndarray
    k: int
    z: float
    ok: np.ndarray


def broad_step(
    rows, shape: tuple[int, int, int], times_days, date_var, dem=None
) -> BroadStep | None:
    """The step scan's broad signal: its detections cover more than
    :data:`.detector_supports.MAX_SHARE` of the scene, where the second detector's noise
    prediction has no surroundings to work from, or the step beyond steady motion covers more
    than :data:`STEADY_SHARE` of it at its date. None when the scan detects nothing or less,
    the stack has under :data:`MIN_DATES` dates, or the scene is over :data:`MAX_PIXELS`.
    ``rows(t, lo, hi)``: the input relative to the first date."""
    read = _read(rows, shape, dem)
    if read is None:
        return None
    series, ok, dem_np = read
    n, h, w = shape
    support, z, k = step_support(series, times_days, date_var, ok, dem_np)
    if (support & ok).sum() <= MAX_SHARE * ok.sum():
        if z <= THRESHOLD:
            return None
        # detected but not broad: broad all the same when the step beyond steady motion covers
        # over half the scene at its date (a bowl stepping on the last date, `shifted` 6;
        # steady creep, whose plain step is half its motion, gives none: `shifted` 55)
        found = best_date_support(step_zmaps(series, times_days, date_var, ok, dem_np, True), ok)
        if found is None:
            return None
        k, z, steady_support = found
        if z <= THRESHOLD or steady_support[ok].mean() <= STEADY_SHARE:
            return None
    step = step_estimate(series, ok, dem_np, date_var, k, z)
    return step if lasts(series, ok, dem_np, date_var, step) else None


def step_estimate(
    series: np.ndarray, ok: np.ndarray, dem_np: np.ndarray | None, date_var, k: int, z: float
) -> BroadStep:
    """:class:`BroadStep` of the step at date ``k`` of ``series (T, H, W)`` (relative to the
    first date): the step's combination of the dates less its relief fit in a band, smoothed
    by :data:`SMOOTH_PX`, written where the smoothing reaches."""
    n, h, w = series.shape
    # one combination of the dates (NaN off ``ok``, which the fit and the smoothing skip)
    combined = step_weights(date_var, k).astype(np.float32) @ series.reshape(n, -1)
    estimate, weight = step_map(combined.reshape(h, w), ok, dem_np)
    # pixels missing on some dates (a gap patch) get the smoothed map from around them
    written = (weight > REACH) & np.isfinite(series).any(axis=0)
    history = (np.arange(n) >= k).astype(np.float64)
    return BroadStep(np.where(written, estimate, 0.0), history, k, z, written)


def step_map(
    combined: np.ndarray, ok: np.ndarray, dem_np: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(map, weight)``: a combination of the dates ``(H, W)`` less its relief fit in a
    band, smoothed by :data:`SMOOTH_PX` (normalized by the valid pixels' share of the
    smoothing, ``weight``)."""
    # the relief fit in a band below the broad signal's scale: a plain fit took a bowl's part
    # along the relief (session 33: `in` 35 3.50 -> 2.69 mm, `shifted` 62 2.86 -> 1.69)
    free = elevation_free_banded(combined, ok, dem_np, RELIEF_BAND_PX)
    weight = ndimage.gaussian_filter(ok.astype(np.float64), SMOOTH_PX)
    smooth = ndimage.gaussian_filter(np.where(ok, free, 0.0), SMOOTH_PX)
    return smooth / np.maximum(weight, 1e-9), weight


def later_shares(
    series: np.ndarray, ok: np.ndarray, dem_np: np.ndarray | None, date_var, step: BroadStep
) -> np.ndarray:
    """The share of the step each date from ``step.k`` on carries: that date less the
    weighted mean of the dates before the step, made into a map as the step's
    (:func:`step_map`), regressed on the step's map (medians removed) on the written pixels."""
    k = step.k
    w = 1.0 / np.asarray(date_var[:k], np.float64)
    before = np.tensordot(w / w.sum(), series[:k], axes=1)
    use = step.ok & ok
    e = step.estimate[use] - np.median(step.estimate[use])
    shares = []
    for t in range(k, series.shape[0]):
        m = step_map(series[t] - before, ok, dem_np)[0][use]
        shares.append(float(e @ (m - np.median(m)) / max(float(e @ e), 1e-12)))
    return np.array(shares)


def lasts(
    series: np.ndarray, ok: np.ndarray, dem_np: np.ndarray | None, date_var, step: BroadStep
) -> bool:
    """Whether a late step (fewer than :data:`MIN_SIDE` dates after it) lasts: every date
    from it on carries at least :data:`LASTING_SHARE` of it (:func:`later_shares`). Steps
    with more dates after them, and steps on the last date, pass."""
    if step.k < series.shape[0] - MIN_SIDE + 1:
        return True
    return bool((later_shares(series, ok, dem_np, date_var, step) >= LASTING_SHARE).all())


@dataclass
class StepBeyondFill:
    """A step beyond steady motion (its date ``k`` and ``z``) and the share of the pixels
    outside the filled areas that its detections cover (``outside``); ``broad``: it is
    detected, covers more than :data:`OUTSIDE_SHARE` of them and ``lasting`` (:func:`lasts`);
    ``step``: then the step at ``k`` over the scene (:func:`step_estimate`)."""

    k: int
    z: float
    outside: float
    step: BroadStep | None = None
    lasting: bool = True

    @property
    def broad(self) -> bool:
        return self.z > THRESHOLD and self.outside > OUTSIDE_SHARE and self.lasting


def step_beyond_fill(
    rows, shape: tuple[int, int, int], times_days, date_var, filled: np.ndarray, dem=None
) -> StepBeyondFill | None:
    """How far the step beyond a straight line in time (``steady``: a steady signal, which
    the second detector's straight line already sees, gives none), at the date where it is
    largest, reaches outside the areas the second detector fills (``filled (H, W)`` bool),
    the pixels its harmonic prediction takes for noise. None when skipped as
    :func:`broad_step`."""
    read = _read(rows, shape, dem)
    if read is None:
        return None
    series, ok, dem_np = read
    outside = ok & ~filled
    if not outside.any():
        return None
    found = best_date_support(step_zmaps(series, times_days, date_var, ok, dem_np, True), ok)
    if found is None:
        return None
    k, z, support = found
    beyond = StepBeyondFill(k, z, float((support & outside).sum() / outside.sum()))
    if beyond.broad:
        step = step_estimate(series, ok, dem_np, date_var, k, z)
        beyond.lasting = lasts(series, ok, dem_np, date_var, step)
        beyond.step = step if beyond.lasting else None
    return beyond
