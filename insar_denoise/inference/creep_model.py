"""Creep model: a creeping fault that the trace search finds is fitted as a finite
strike-slip dislocation and taken out of the stack before the network, then added back.

The fault-trace step (:mod:`.fault_trace`) restores a creeping fault's step within ±64 px of
its trace, as an infinitely long 2-D dislocation. A creeping fault is finite and its far field
reaches the whole scene (a fault of 15-40 km, locked below a few km): the band restoration
kept half of it or less (Benchmark v2, session 27). Here the least-squares cumulative (its
elevation fit removed) is fitted with the surface displacement of a vertical rectangular
dislocation (Okada 1985, BSSA 75(4), 1135-1154) whose top edge follows the trace:

1. geometry by grid search over the tips along the trace (beyond the scene or inside it),
   the width and the top depth (px: the displacement depends on ratios of lengths only),
   then refined by coordinate descent, with the trace's position (±3 px), direction
   (±3°) and the dip (60-120°) free too;
2. for each geometry and each line of sight of a polar-orbiting right-looking radar
   (:data:`HEADINGS_DEG` × :data:`INCIDENCES_DEG`: the stack does not say which) the slip is
   fitted by least squares after prewhitening data and displacement by the power spectrum
   of the cumulative's noise maps (the sign-flipped residuals the gate uses; a plane
   beside), an approximation of the generalised least squares under stationary turbulence
   (Kay 1998, Fundamentals of Statistical Signal Processing vol. II, sec. 4.3): the broad
   atmosphere does not steer the fit; the geometry with the least squared residual wins;
3. in time, each date's amplitude (the same fit, geometry and line of sight fixed),
   smoothed with the model's weighted piecewise-linear history
   (:func:`.fault_trace.date_shares`), shares the map between dates.

The engine subtracts the model series from the stack, runs the network, the gate and the
finishing steps on the rest (another source in the scene is found as before) and adds the
model back to the result. Scenes up to :data:`MAX_PIXELS`; fitted on a grid of at most
:data:`FIT_MAX_PX` px a side (block means), the model evaluated on the full grid.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from insar_denoise.inference.area_history import MIN_BIC_GAIN
from insar_denoise.inference.broad_scales import cumulative_weights, history_basis
from insar_denoise.inference.fault_trace import Trace, date_shares, find_trace, without_elevation
from insar_denoise.inference.significance import (
    LINEAR_SEGMENTS,
    cumulative_combos,
    cumulative_noise,
    hat_matrix,
    noise_maps,
)
from insar_denoise.synth.okada import okada_surface

#: result attribute holding the fitted model (JSON) or why there is none
CREEP_ATTR = "insar_denoise_creep_model"
#: scenes with more pixels, or series of more bytes, than these keep the band restoration
#: of :mod:`.fault_trace` only (the step holds the whole series in memory)
MAX_PIXELS = 1024 * 1024
MAX_BYTES = 200_000_000
#: the fit runs on block means of at most this many px a side
FIT_MAX_PX = 256
#: tip positions along the trace, in units of the trace's half extent in the scene
#: (``None``: beyond the scene)
TIPS_LOW: tuple[float | None, ...] = (None, -1.5, -1.0, -0.5, 0.0)
TIPS_HIGH: tuple[float | None, ...] = (0.0, 0.5, 1.0, 1.5, None)
#: a tip "beyond the scene" lies this many half extents from the trace's centre
FAR = 8.0
#: widths and top depths (px of the full grid) of the dislocation
WIDTHS_PX: tuple[float, ...] = (8.0, 32.0)
TOPS_PX: tuple[float, ...] = (0.0, 2.0)
#: rounds of the coordinate descent that refines the grid's best geometry
REFINE_ROUNDS = 6
#: bytes of unit displacements one scene's fits share (:class:`UnitMemo`)
MEMO_MAX_BYTES = 160_000_000
#: bounds of the geometry :func:`refine` moves (:func:`geometry`'s ``x``: tips in half
#: extents, log2 width, top, shift, turn, dip)
GEOMETRY_LOW = np.array([-np.inf, -np.inf, 2.0, 0.0, -3.0, -3.0, 60.0])
GEOMETRY_HIGH = np.array([np.inf, np.inf, 7.0, np.inf, 3.0, 3.0, 120.0])
#: the model is kept when, fitted to the even (odd) dates, it predicts the odd (even) ones
#: with at most ``1 - CV_MARGIN`` of the misfit of no model (both ways summed)
CV_MARGIN = 0.0
#: the same where the fit's per-date amplitudes are steady (a straight line in time is not
#: beaten by the model's piecewise-linear history by more than
#: :data:`.area_history.MIN_BIC_GAIN` in BIC; :func:`history_bic_gain`), as creep is: below
#: 0, a margin. At low SNR the split-date test cannot confirm even the true map (`in` 27, 2
#: mm of creep over 72 dates at SNR 23: the truth scores 1.005-1.007, the fit 1.064 and BIC
#: gain -8; kept: gain 0.45 -> 0.91, r 0.95), while a transient dip-slip fault taken for a
#: trace scored 1.000 with BIC gain 40 and would lose r 0.89 -> 0.57 if kept
#: (`benchmarks/stack_uncertainty.py` scene 10; session 34)
STEADY_CV_MARGIN = -0.1
#: the prewhitening that predicts the other half best must also predict it better than no
#: model when read by differences, or the other one is taken where it does: the spectrum
#: weighs broad scales little, so a fit under it can grow broad lobes of atmosphere
#: (fresh noise under Benchmark v2 `in` creep 81: slip 0.8 m, a 121 mm lobe, RMSE 13.1 mm
#: against the zero map's 3.1; under differences 1.24 mm; design table (au), session 38)
SCREENED = True
#: fewest dates (two halves of at least three)
MIN_DATES = 6
#: lines of sight tried (the stack does not carry its own): flight directions of polar
#: orbits, ascending and descending (Sentinel-1: about -12° and 192°), and incidences
HEADINGS_DEG: tuple[float, ...] = (-20.0, -12.0, -4.0, 184.0, 192.0, 200.0)
INCIDENCES_DEG: tuple[float, ...] = (25.0, 35.0, 45.0, 55.0)


@dataclass
class CreepFit:
    """The fitted dislocation: tips along the trace (px from its centre, None beyond the
    scene), width and top depth (px), dip (over 90°: to the other side), the slip times
    the line of sight's east, north and up (mm) and the cumulative map."""

    tips_px: tuple[float | None, float | None]
    width_px: float
    top_px: float
    dip_deg: float
    coefficients: tuple[float, float, float]
    cumulative: np.ndarray

    def note(self, trace: Trace) -> str:
        """The JSON written to :data:`CREEP_ATTR`: the trace it follows and the fit."""
        r = lambda v: None if v is None else round(float(v), 3)  # noqa: E731
        return json.dumps(
            {
                "trace": json.loads(trace.to_attr()),
                "tips_px": [r(v) for v in self.tips_px],
                "width_px": r(self.width_px),
                "top_px": r(self.top_px),
                "dip_deg": r(self.dip_deg),
                "slip_los_mm": [r(v) for v in self.coefficients],
                "largest_mm": r(np.nanmax(np.abs(self.cumulative))),
            }
        )


def unit_displacement(
    shape: tuple[int, int],
    trace: Trace,
    tips: tuple[float, float],
    width: float,
    top: float,
    step: float = 1.0,
    shift: float = 0.0,
    turn: float = 0.0,
    dip: float = 90.0,
) -> np.ndarray:
    """``(3, H, W)``: east, north and up surface displacement of unit strike slip on a
    rectangle under the trace from ``tips[0]`` to ``tips[1]`` (px along it from its centre),
    ``top`` to ``top + width`` deep (down dip), on a grid of ``shape`` whose pixels are
    ``step`` px of the trace's grid; the trace moved by ``shift`` px along its normal and
    turned by ``turn`` degrees; ``dip`` over 90° dips to the other side (``180 - dip``)."""
    angle = np.arctan2(trace.normal[0], -trace.normal[1]) + np.radians(turn)
    dr, dc = np.cos(angle), np.sin(angle)  # along the trace, (rows, columns)
    mid = 0.5 * (tips[0] + tips[1])
    r0 = trace.point[0] + shift * trace.normal[0] + mid * dr
    c0 = trace.point[1] + shift * trace.normal[1] + mid * dc
    strike = np.degrees(np.arctan2(dc, -dr))  # clockwise from north (up the rows)
    if dip > 90.0:  # the same plane seen from its other end: left-lateral either way
        strike, dip = strike + 180.0, 180.0 - dip
    rows = torch.arange(shape[0], dtype=torch.float64)[:, None] * step + 0.5 * (step - 1)
    cols = torch.arange(shape[1], dtype=torch.float64)[None, :] * step + 0.5 * (step - 1)
    east, north, up = okada_surface(
        cols - c0 + 0.0 * rows,
        -(rows - r0) + 0.0 * cols,
        x0_m=0.0,
        y0_m=0.0,
        depth_m=float(top),
        strike_deg=float(strike),
        dip_deg=float(dip),
        length_m=float(tips[1] - tips[0]),
        width_m=float(width),
        strike_slip_m=1.0,
    )
    return np.stack([np.nan_to_num(v.numpy()) for v in (east, north, up)])


class UnitMemo:
    """:func:`unit_displacement` remembered for the geometries already evaluated: every fit
    under one trace (the halves' and the whole's) starts from the same grid. Holds at most
    ``max_bytes``; the arrays it returns are shared, not to be written to."""

    def __init__(self, max_bytes: int = MEMO_MAX_BYTES) -> None:
        self.held: dict[tuple, np.ndarray] = {}
        self.free = max_bytes

    def __call__(self, shape: tuple[int, int], trace: Trace, **kwargs) -> np.ndarray:
        """:func:`unit_displacement` ``(shape, trace, **kwargs)``."""
        key = (tuple(shape), trace.point, trace.normal, tuple(sorted(kwargs.items())))
        unit = self.held.get(key)
        if unit is None:
            unit = unit_displacement(shape, trace, **kwargs)
            if unit.nbytes <= self.free:
                self.held[key], self.free = unit, self.free - unit.nbytes
        return unit


def geometry(x: np.ndarray, half: float) -> dict:
    """:func:`unit_displacement`'s arguments of the fit's parameters ``x`` = (tips in half
    extents, log2 width, top, shift, turn, dip)."""
    return {
        "tips": (x[0] * half, x[1] * half),
        "width": 2.0 ** x[2],
        "top": x[3],
        "shift": x[4],
        "turn": x[5],
        "dip": x[6],
    }


def gradients(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Differences along rows and columns of ``values`` (NaN where a pixel of the pair is not
    ``ok``), one vector."""
    v = np.where(ok, values, 0.0)
    dx = np.where(ok[:, 1:] & ok[:, :-1], np.diff(v, axis=1), np.nan)
    dy = np.where(ok[1:] & ok[:-1], np.diff(v, axis=0), np.nan)
    return np.concatenate([dx.ravel(), dy.ravel()])


def plane_offsets(shape: tuple[int, int]) -> np.ndarray:
    """``(n, 2)``: the differences of a plane (a constant per direction) in :func:`gradients`."""
    n_dx = shape[0] * (shape[1] - 1)
    ind = np.zeros(n_dx + (shape[0] - 1) * shape[1])
    ind[:n_dx] = 1.0
    return np.stack([ind, 1.0 - ind], axis=1)


def block_means(values: np.ndarray, k: int) -> np.ndarray:
    """Means of ``k × k`` blocks of ``values`` (NaN ignored; NaN where a block has none)."""
    if k == 1:
        return values
    h, w = (values.shape[0] // k) * k, (values.shape[1] // k) * k
    blocks = values[:h, :w].reshape(h // k, k, w // k, k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty block: NaN
        return np.nanmean(blocks, axis=(1, 3))


def los_vectors() -> np.ndarray:
    """``(n, 3)``: east, north, up of the ground-to-satellite unit vectors of
    :data:`HEADINGS_DEG` × :data:`INCIDENCES_DEG` (a right-looking radar: the horizontal part
    points 90° left of the flight direction, as :func:`insar_denoise.synth.los.los_unit_vector`)."""
    head = np.radians(np.repeat(HEADINGS_DEG, len(INCIDENCES_DEG)))
    inc = np.radians(np.tile(INCIDENCES_DEG, len(HEADINGS_DEG)))
    return np.stack([-np.sin(inc) * np.cos(head), np.sin(inc) * np.sin(head), np.cos(inc)], 1)


def _solve(
    columns: np.ndarray, offsets: np.ndarray, y: np.ndarray, los: np.ndarray
) -> tuple[float, float, np.ndarray]:
    """For each line of sight, the least squares of ``y`` on the projected displacement's
    differences and a plane's: ``(residual sum of squares, slip, line of sight)`` of the
    best. ``columns (n, 3)``, ``offsets (n, 2)``, ``y (n,)``: finite rows only. Through the
    normal equations: the products are formed once for every line of sight."""
    x = np.concatenate([columns, offsets], axis=1)
    gram, moment, energy = x.T @ x, x.T @ y, float(y @ y)
    best = (np.inf, 0.0, los[0])
    for vector in los:
        # the design [columns @ vector, offsets] as a projection of the five columns
        basis = np.zeros((5, 3))
        basis[:3, 0], basis[3, 1], basis[4, 2] = vector, 1.0, 1.0
        normal, right = basis.T @ gram @ basis, basis.T @ moment
        try:
            coef = np.linalg.solve(normal, right)
        except np.linalg.LinAlgError:
            continue
        rss = energy - float(coef @ right)
        if rss < best[0]:
            best = (rss, float(coef[0]), vector)
    return best


def spectral_whitener(noise: np.ndarray, ok: np.ndarray, k: int = 1):
    """The prewhitening filter of the noise maps ``(n, H, W)`` (block means of ``k`` px, as
    the fit's grid): ``m -> irfft2(rfft2(m) / sqrt(P))`` with ``P`` the maps' power spectrum
    averaged over realisations and over rings of radial frequency (24 log-spaced rings;
    the zero frequency dropped), ``m`` zero outside ``ok``."""
    maps = np.stack([block_means(np.asarray(m, np.float64), k) for m in noise])
    maps = np.where(ok[None] & np.isfinite(maps), maps, np.nan)
    maps = np.where(ok[None], maps - np.nanmean(maps, axis=(1, 2), keepdims=True), 0.0)
    power = np.mean(np.abs(np.fft.rfft2(np.nan_to_num(maps))) ** 2, axis=0)
    shape = ok.shape
    radius = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.rfftfreq(shape[1])[None, :])
    edges = np.geomspace(0.5 / max(shape), 0.75, 25)
    ring = np.clip(np.digitize(radius, edges) - 1, 0, len(edges) - 2)
    mean = np.bincount(ring.ravel(), power.ravel(), len(edges) - 1)
    count = np.bincount(ring.ravel(), minlength=len(edges) - 1)
    level = np.where(count > 0, mean / np.maximum(count, 1), np.nan)
    centres = np.sqrt(edges[:-1] * edges[1:])
    have = np.isfinite(level) & (level > 0)
    smooth = np.exp(np.interp(np.log(radius + 1e-12), np.log(centres[have]), np.log(level[have])))
    gain = 1.0 / np.sqrt(smooth)
    gain[0, 0] = 0.0

    def whiten(values: np.ndarray) -> np.ndarray:
        field = np.where(ok, np.nan_to_num(values), 0.0)
        return np.fft.irfft2(np.fft.rfft2(field) * gain, s=shape)[ok]

    return whiten


def prepared(projection: np.ndarray, dem) -> tuple[np.ndarray, np.ndarray, int]:
    """``projection`` less its median and elevation fit (NaN where not valid), its block
    means on the fit's grid and the block side ``k``."""
    p = np.asarray(projection, dtype=np.float64)
    ok = np.isfinite(p)
    dem = None if dem is None else np.asarray(dem, dtype=np.float64)
    p = without_elevation(p - np.median(p[ok]), ok, dem)
    p[~ok] = np.nan
    k = max(1, int(np.ceil(max(p.shape) / FIT_MAX_PX)))
    return p, block_means(p, k), k


def _domain(noise, cok: np.ndarray, k: int) -> tuple:
    """The prewhitening ``transform`` (map -> vector) and a plane's columns in it: the noise
    maps' spectrum (:func:`spectral_whitener`) or, without them, differences."""
    if noise is None:
        return (lambda m: gradients(m, cok)), plane_offsets(cok.shape)
    transform = spectral_whitener(noise, cok, k)
    r, c = np.mgrid[: cok.shape[0], : cok.shape[1]] / max(cok.shape)
    return transform, np.stack([transform(r), transform(c)], axis=1)


def residual_energy(values: np.ndarray, dem, noise) -> float:
    """Squared norm of ``values (H, W)`` (median and elevation fit removed) prewhitened by
    the noise maps' spectrum, a plane fitted out: the misfit that cross-validation reads."""
    _, coarse, k = prepared(values, dem)
    cok = np.isfinite(coarse)
    transform, offsets = _domain(noise, cok, k)
    y = transform(coarse)
    use = np.isfinite(y)
    coef = np.linalg.lstsq(offsets[use], y[use], rcond=None)[0]
    return float(np.sum((y[use] - offsets[use] @ coef) ** 2))


def dislocation_misfit(
    projection: np.ndarray, dem, trace: Trace, noise=None, units: UnitMemo | None = None
) -> tuple:
    """``(misfit, half, shape)``: the fit's objective (geometry ``x`` of :func:`geometry` ->
    residual sum of squares and slip × line of sight), the trace's half extent (px) and the
    full grid's shape, for the least-squares cumulative ``projection (H, W)`` mm (NaN = not
    valid; its elevation fit removed) after prewhitening: by the power spectrum of the noise
    maps ``noise (n, H, W)`` (:func:`spectral_whitener`), or, without them, by differences
    along rows and columns (turbulence of spectrum ``k^-2``). ``units``: a memo shared with
    other fits under ``trace``."""
    p, coarse, k = prepared(projection, dem)
    units = UnitMemo() if units is None else units
    ok, cok = np.isfinite(p), np.isfinite(coarse)
    transform, offsets = _domain(noise, cok, k)
    y = transform(coarse)
    use = np.isfinite(y)
    rows, cols = np.nonzero(ok)
    along = (rows - trace.point[0]) * -trace.normal[1] + (cols - trace.point[1]) * trace.normal[0]
    half = float(np.abs(along).max())
    los = los_vectors()

    def misfit(x: np.ndarray) -> tuple[float, np.ndarray]:
        """Residual and slip × line of sight of the geometry ``x`` (:func:`geometry`)."""
        unit = units(coarse.shape, trace, step=k, **geometry(x, half))
        columns = np.stack([transform(u) for u in unit], axis=1)[use]
        rss, slip, vector = _solve(columns, offsets[use], y[use], los)
        return rss, slip * vector

    return misfit, half, p.shape


def descent(misfit) -> tuple:
    """``(rss, x, coefficients)``: the grid's best geometry refined by :func:`refine`."""
    best: tuple = (np.inf,)
    for lo in TIPS_LOW:
        for hi in TIPS_HIGH:
            tips = (-FAR if lo is None else lo, FAR if hi is None else hi)
            if tips[1] - tips[0] < 0.5:
                continue
            for width in WIDTHS_PX:
                for top in TOPS_PX:
                    x = np.array([*tips, np.log2(width), top, 0.0, 0.0, 90.0])
                    rss, coef = misfit(x)
                    if rss < best[0]:
                        best = (rss, x, coef)
    return refine(misfit, *best)


def fitted(
    trace: Trace,
    shape: tuple[int, int],
    half: float,
    x: np.ndarray,
    coef,
    units: UnitMemo | None = None,
) -> CreepFit:
    """The :class:`CreepFit` of geometry ``x`` and slip × line of sight ``coef``, its
    cumulative evaluated on the full grid of ``shape``."""
    far = (x[0] <= -FAR, x[1] >= FAR)
    named = (None if far[0] else x[0] * half, None if far[1] else x[1] * half)
    unit = (unit_displacement if units is None else units)(shape, trace, **geometry(x, half))
    cumulative = np.tensordot(coef, unit, axes=1).astype(np.float32)
    return CreepFit(named, 2.0 ** x[2], x[3], float(x[6]), tuple(coef), cumulative)


def fit_dislocation(
    projection: np.ndarray, dem, trace: Trace, noise=None, units: UnitMemo | None = None
) -> CreepFit:
    """The dislocation under ``trace`` that fits the least-squares cumulative ``projection
    (H, W)`` mm best after prewhitening (:func:`dislocation_misfit`): a grid, then
    coordinate descent (:func:`descent`). ``units``: a memo shared with other fits under
    ``trace``."""
    units = UnitMemo() if units is None else units
    misfit, half, shape = dislocation_misfit(projection, dem, trace, noise, units)
    _, x, coef = descent(misfit)
    return fitted(trace, shape, half, x, coef, units)


def refine(misfit, rss: float, x: np.ndarray, coef: np.ndarray) -> tuple:
    """Coordinate descent from the grid's best ``x`` (:func:`geometry`): each parameter
    moved by its step both ways while that lowers the misfit, the steps halved when nothing
    does, :data:`REFINE_ROUNDS` times (a tip beyond the scene stays beyond it)."""
    step = np.array([0.25, 0.25, 0.5, 1.0, 1.0, 1.0, 5.0])
    low, high = GEOMETRY_LOW, GEOMETRY_HIGH
    free = [x[0] > -FAR, x[1] < FAR, True, True, True, True, True]
    for _ in range(REFINE_ROUNDS):
        moved = False
        for i in np.flatnonzero(free):
            for sign in (1.0, -1.0):
                trial = x.copy()
                trial[i] += sign * step[i]
                if trial[1] - trial[0] < 0.25 or not low[i] <= trial[i] <= high[i]:
                    continue
                got = misfit(trial)
                if got[0] < rss:
                    (rss, coef), x, moved = got, trial, True
                    break
        if not moved:
            step = step / 2.0
    return rss, x, coef


def date_amplitudes(referenced: np.ndarray, cumulative: np.ndarray, dem) -> np.ndarray:
    """Each date's amplitude of the fitted map (its differences fitted to the date's, with a
    plane's; the date's elevation fit removed first); block means as in the fit."""
    k = max(1, int(np.ceil(max(cumulative.shape) / FIT_MAX_PX)))
    model = block_means(np.asarray(cumulative, np.float64), k)
    dem = None if dem is None else np.asarray(dem, dtype=np.float64)
    out = np.zeros(referenced.shape[0])
    for t, date in enumerate(referenced):
        d = np.asarray(date, np.float64)
        ok = np.isfinite(d)
        if ok.sum() < 100:
            out[t] = np.nan
            continue
        d = without_elevation(d, ok, dem)
        d[~ok] = np.nan
        coarse = block_means(d, k)
        cok = np.isfinite(coarse) & np.isfinite(model)
        y, g = gradients(coarse, cok), gradients(model, cok)
        x = np.concatenate([g[:, None], plane_offsets(coarse.shape)], axis=1)
        use = np.isfinite(y) & np.isfinite(g)
        out[t] = np.linalg.lstsq(x[use], y[use], rcond=None)[0][0]
    return out


def history_bic_gain(
    amplitudes: np.ndarray, times_days: np.ndarray, date_var: np.ndarray, segments: int
) -> float:
    """How much lower the BIC (Schwarz 1978, Ann. Statist. 6(2), 461-464) of the per-date
    ``amplitudes`` is under the model's piecewise-linear history of ``segments`` than under
    a straight line in time (least squares weighted by ``1 / date_var``): over
    :data:`.area_history.MIN_BIC_GAIN`, the history is not steady."""
    ok = np.isfinite(amplitudes)
    y, w, n = np.asarray(amplitudes)[ok], 1.0 / np.asarray(date_var)[ok], int(ok.sum())
    bic = []
    for k in (LINEAR_SEGMENTS, segments):
        basis = history_basis(np.asarray(times_days, np.float64)[ok], k)
        coef = np.linalg.lstsq(basis * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
        rss = max(float(np.sum(w * (y - basis @ coef) ** 2)), 1e-300)
        bic.append(n * np.log(rss / n) + basis.shape[1] * np.log(n))
    return bic[0] - bic[1]


def half_projections(
    referenced: np.ndarray, times_days: np.ndarray, date_var: np.ndarray, segments: int
) -> list[np.ndarray]:
    """The least-squares cumulatives of the even and of the odd dates (each over nearly the
    whole span, scaled to it; fewer segments where a half has few dates)."""
    span = float(times_days[-1] - times_days[0])
    out = []
    for idx in (np.arange(0, len(times_days), 2), np.arange(1, len(times_days), 2)):
        days = np.asarray(times_days, np.float64)[idx]
        k = max(1, min(segments, len(idx) - 2))
        weights = cumulative_weights(days, np.asarray(date_var)[idx], k, pinv=True)
        sub = referenced[idx]
        cumulative = np.tensordot(weights, np.nan_to_num(sub), axes=1)
        cumulative = np.where(np.isfinite(sub).all(axis=0), cumulative, np.nan)
        out.append(cumulative * span / max(float(days[-1] - days[0]), 1e-6))
    return out


def cross_validated(
    halves: list[np.ndarray], dem, trace: Trace, noise, units: UnitMemo | None = None
) -> tuple:
    """``(noise or None, misfit, null misfit)``: the prewhitening (the noise maps' spectrum,
    or differences) whose fit to one half of the dates best predicts the other half (both
    ways; :func:`residual_energy`, the same spectral measure for both), its summed misfit
    and that of no model; a fit that predicts the other half worse than no model when read
    by differences gives way to one that does not (:data:`SCREENED`). ``units``: a memo
    shared with other fits under ``trace``."""
    units = UnitMemo() if units is None else units
    null = sum(residual_energy(h, dem, noise) for h in halves)
    null_differences = sum(residual_energy(h, dem, None) for h in halves)
    fits = []
    for candidate in (noise, None):
        misfit = differences = 0.0
        for a, b in ((0, 1), (1, 0)):
            model = fit_dislocation(halves[a], dem, trace, candidate, units).cumulative
            misfit += residual_energy(halves[b] - model, dem, noise)
            differences += residual_energy(halves[b] - model, dem, None)
        fits.append((misfit, differences <= null_differences, candidate))
    fits.sort(key=lambda f: f[0])  # stable: the spectrum first on a tie, as before
    misfit, _, chosen = next((f for f in fits if f[1]), fits[0]) if SCREENED else fits[0]
    return chosen, misfit, null


def first_trace(
    referenced: np.ndarray, dem, times_days: np.ndarray, date_var: np.ndarray, segments: int
) -> tuple[Trace, int, np.ndarray] | None:
    """``(trace, segments, map)``: the trace (:func:`.fault_trace.find_trace`) of the
    least-squares cumulative with the model's ``segments`` or, where it has none, of the
    straight line's (:data:`.significance.LINEAR_SEGMENTS`); None when neither holds one. A
    steady creep can be clear on the straight line only (Benchmark v2 `shifted` creep 83: z
    6.8 there, 5.2 on the model's)."""
    choices = (segments, LINEAR_SEGMENTS) if segments != LINEAR_SEGMENTS else (segments,)
    weights = np.vstack([cumulative_combos(times_days, date_var, k)[-1:] for k in choices])
    maps = noise_maps(referenced, weights)  # one pass over the stack for both
    for k, cumulative in zip(choices, maps, strict=True):
        trace = find_trace(cumulative, dem)
        if trace is not None:
            return trace, k, cumulative
    return None


def creep_series(
    referenced: np.ndarray, dem, times_days: np.ndarray, date_var: np.ndarray, segments: int
) -> tuple[np.ndarray | None, str]:
    """The model series ``(T, H, W)`` mm relative to the first date (None when no trace is
    found or the scene is too large) and the note for :data:`CREEP_ATTR`. ``referenced``:
    the input relative to the first date; ``date_var``, ``segments``: the model's weighting
    (the least-squares cumulative the trace search reads, as the gate's, beside the straight
    line's: :func:`first_trace`; the model's is fitted where both hold a trace)."""
    n, h, w = referenced.shape
    if h * w > MAX_PIXELS:
        return None, f"skipped: scene over {MAX_PIXELS} pixels"
    # the least-squares cumulatives alone for the search (the gate's rows, NaN on pixels
    # missing a date); the noise maps only once a trace is found: most scenes have none
    found = first_trace(referenced, dem, times_days, date_var, segments)
    if found is None:
        return None, "none"
    if n < MIN_DATES:
        return None, f"skipped: {n} dates (at least {MIN_DATES}, for two halves to compare)"
    # the model's map first: on Benchmark v2, fitting on the straight line wherever it holds
    # the trace too, or on whichever map cross-validated better, left 6 / 4 of 12 creeps
    # worse (`in` 52: RMSE 1.06 -> 1.24 mm) as it left others better (`in` 55: 2.27 -> 1.39)
    trace, k, projection = found
    noise, _ = cumulative_noise(referenced, times_days, date_var, k)
    halves = half_projections(referenced, times_days, date_var, k)
    units = UnitMemo()  # the five fits under one trace share their grid
    chosen, misfit, null = cross_validated(halves, dem, trace, noise, units)
    fit = fit_dislocation(projection, dem, trace, chosen, units)
    amplitudes = date_amplitudes(referenced, fit.cumulative, dem)
    steady = history_bic_gain(amplitudes, times_days, date_var, segments) <= MIN_BIC_GAIN
    limit = 1.0 - (STEADY_CV_MARGIN if steady else CV_MARGIN)
    if misfit > null * limit:
        return None, (
            f"rejected: fitted to one half of the dates, the model predicts the other too "
            f"poorly (misfit {misfit / null:.3f} of no model's, at most {limit:g} for a "
            f"{'steady' if steady else 'non-steady'} history; trace z {trace.z:.1f})"
        )
    shares = date_shares(amplitudes, hat_matrix(times_days, date_var, segments), times_days)
    series = shares[:, None, None].astype(np.float32) * fit.cumulative[None]
    return series, fit.note(trace)
