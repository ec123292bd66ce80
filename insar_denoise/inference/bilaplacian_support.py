"""A second detector after the gate: broad signals the gate's filters miss.

Turbulent delay has a steep power spectrum (``P(k) ∝ k^-β``, β ≈ 3-4 on Benchmark v2
scenes), so its maps are smooth: the filter that whitens it is close to ``|k|^β``, and the
matched filter of a blob of width ``s`` under that noise is ``|k|⁴ G_s(k)``, the
bi-Laplacian of a Gaussian (Kay 1998, vol. II, sec. 4.3: prewhitening matched filter; β = 4).
This step filters the two least-squares cumulatives of the gate (the model weighting's and
the straight line's) by ``Δ² G_s`` (``s`` = 8, 16, 32 px), compares them with the same
filter of their noise maps (``z``, as the gate does), and where ``z`` exceeds
:data:`THRESHOLD` grows a support (``z`` above ``GROW`` of :mod:`.detector_supports`
connected to the detection, widened by a Gaussian of ``s``). In every area of the supports
and of the gate (session 21: also the gate's areas no support reaches), the output is the
straight line's cumulative minus the noise predicted from around it: the harmonic
interpolation of the map from the pixels outside every support (kriging with the generalised
covariance of a ``k⁻²`` field; Matheron 1973; :mod:`.noise_prediction`), smoothed by a
Gaussian of :data:`SMOOTH_PX` inside the area except at edges the noise cannot make, a
straight line in time, or the ramp in time that the area's own data prefer (a step, a
transient; :mod:`.area_history`, session 20). The straight line's map first loses its relief
fit ``c + k z + q z²`` on the pixels around the areas, ``k, q`` fitted in the band below
:data:`RELIEF_BAND_PX` (a broad source's tails follow the relief there too; session 33).
Where the areas cover a quarter of the scene or more, the noise is predicted from beyond a
band of :data:`BROAD_MARGIN_PX` around them instead when Stein's unbiased risk of that
prediction is the lower (a broad source's tails reach past its detected area;
:func:`prediction_pixels`, session 31).

On short stacks (under :data:`PROJECTION_MIN_DOF` residual degrees of freedom) the model
weighting's map only widens what the straight line's map detects.

Where neither the gate nor this step finds anything, the step scan of :mod:`.step_scan` may
return a broad signal that starts at one date (session 25); where this step fills areas but a
step beyond steady motion reaches well outside them, the step at its date is written over
the scene instead of the fill (session 26, :func:`.step_scan.step_beyond_fill`; session 38:
the step scan's estimate instead of the network's ungated map).

Benchmark v2 (model card "A second detector"): detected at SNR >= 10 0.68 -> 0.76 -> 0.80
(``in``, sessions 13 / 17 / 18) and 0.48 -> 0.60 -> 0.64 (``shifted``), false-positive p99
0.0 mm; the areas' ramps (session 20): RMSE at SNR 20-50 1.76 -> 1.36 mm (``in``) and 3.10
-> 2.83 mm (``shifted``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from insar_denoise.inference import gate_history, step_scan
from insar_denoise.inference.area_history import area_ramps
from insar_denoise.inference.detector_supports import (
    GATE_ON,
    MAX_SHARE,
    MIN_INTERIOR,
    SCALES,
    grown_area,
    interior,
)
from insar_denoise.inference.elastic_sources import source_extent
from insar_denoise.inference.noise_prediction import (
    HarmonicPredictor,
    elevation_free,
    elevation_free_banded,
    harmonic_fill,
)
from insar_denoise.inference.significance import date_level, fit_segments, gate_opened
from insar_denoise.inference.strips import row_strips

#: detection threshold (noise std at the scale): the no-deformation scenes of Benchmark v2
#: reach at most 6.5 at 8-32 px (`in` 56 at 8 px: a 0.15 mm patch); 7 detected 0.72 / 0.48
#: of the scenes at SNR >= 10 against 0.76 / 0.52 (`in` / `shifted`, session 17)
THRESHOLD = 6.0
#: scenes over this many pixels skip the step (the 2048² frame-time run is unchanged)
MAX_PIXELS = 1024 * 1024
#: the estimate is smoothed inside each filled area by a Gaussian of this width (px), weighted
#: by the area (session 18 replay: detected at SNR >= 10 0.76 -> 0.80 `in`, RMSE lower in
#: every filled bin; 3 px lowers the `in` gain at SNR 20-50 0.97 -> 0.91, 2 px keeps it)
SMOOTH_PX = 2.0
#: wider Gaussians (px) tried on the filled areas' estimate, plainly: the one with the least
#: unbiased risk (Stein 1981's SURE, :func:`risk_smoothing`) among those whose risk falls
#: below that of :data:`SMOOTH_PX` by more than :data:`RISK_Z` standard errors of the fall
#: (:func:`risk_change_sd`) replaces the edge-kept :data:`SMOOTH_PX` smoothing (session 32;
#: before, a risk at most 0.9 of 2 px's: a fixed margin kept strong compact peaks, whose
#: risk is noisy, from being smoothed, `shifted` 8 would have lost gain 0.90 -> 0.87 at 8 px
#: for a risk 0.97 of 2 px's, but also kept broad weak areas narrow: `in` deep fault 46 at
#: 0.954, 1.33 mm at 2 px, ~1.17 at 8)
WIDER_PX: tuple[float, ...] = (4.0, 8.0, 16.0)
RISK_Z = 2.0
#: noise maps read for the risk's trace term
RISK_MAPS = 8
#: pixels where the smoothing moves the estimate by more than this many std of the noise
#: maps' own smoothing residual keep their value: a sharp fault's step (`in` 78, gain 0.82
#: smoothed everywhere 0.69, with this 0.81)
EDGE_Z = 4.0
#: filled areas covering at least this share of the scene predict their noise from beyond a
#: band of :data:`BROAD_MARGIN_PX` around them (:func:`prediction_pixels`)
BROAD_SHARE = 0.25
BROAD_MARGIN_PX = 16.0
#: the straight line's map loses its relief fit (on the pixels around the areas) in the band
#: below this scale (px; :func:`.noise_prediction.elevation_free_banded`; 8 px: `in` Mogi 39
#: 1.12 -> 1.30 mm, 16 px 1.08, the rest alike; session 33)
RELIEF_BAND_PX = 16.0
#: below this many residual degrees of freedom per pixel behind the noise maps of the model
#: weighting's least-squares map (``T - fit_segments(T) - 1``; 4 at T = 9), that map only
#: widens what the straight line's map detects and detects nothing alone: on Benchmark v2
#: the two fills that raised a scene's error (`in` 4 and `shifted` 4, bowls under 7 sigma at
#: T = 9) passed on it alone (z 6.2, 6.4, the line 4.2, 3.7), and every fill that helped at
#: T = 9 passed the line's test too (z >= 8; session 19)
PROJECTION_MIN_DOF = 8
#: the filled areas grown to where the best-fitting elastic source reaches
#: (:func:`.elastic_sources.source_extent`; its values are not used): off, design table (bh):
#: on Benchmark v2 `shifted` deep fault 74 comes into the gain target (0.80 -> 1.08) but
#: shallow faults lose (the bundled demo 1.12 -> 1.22 mm)
SOURCE_EXTENT = False
#: output attribute: the second detector's largest z per map and scale and the pixels it
#: filled (JSON)
SECOND_DETECTOR_ATTR = "insar_denoise_second_detector_z"


def mad_std(values: np.ndarray) -> float:
    """1.4826 x the median absolute deviation of ``values`` (the robust std of a normal)."""
    return 1.4826 * float(np.median(np.abs(values - np.median(values))))


def bilaplacian(image: np.ndarray, scale: float) -> np.ndarray:
    """``s⁴ Δ² G_s * image`` (reflected at the edges)."""
    f = lambda order: ndimage.gaussian_filter(image, scale, order=order, mode="reflect")  # noqa: E731
    return (f((0, 4)) + 2.0 * f((2, 2)) + f((4, 0))) * scale**4


def zmaps(stat: np.ndarray, noise: np.ndarray, ok: np.ndarray) -> dict[float, np.ndarray]:
    """``{scale: z}``: ``|Δ²G_s stat|`` over the robust std of the same of the noise maps,
    raised where their local rms is larger; 0 within two scales of the edge and off ``ok``."""
    mm = np.where(ok, stat - np.median(stat[ok]), 0.0).astype(np.float32)
    nn = np.where(ok, noise - np.median(noise[:, ok], axis=1)[:, None, None], 0.0)
    out = {}
    for s in SCALES:
        inner = interior(ok, s)
        if inner is None:
            continue
        fn = np.stack([bilaplacian(x.astype(np.float32), s) for x in nn])
        sd = mad_std(fn[:, inner])
        loc = np.sqrt(ndimage.gaussian_filter(np.mean(fn**2, axis=0), max(s / 2.0, 2.0)))
        loc = np.maximum(loc / np.median(loc[inner]), 1.0)
        out[s] = np.where(inner, np.abs(bilaplacian(mm, s)) / (sd * loc), 0.0)
    return out


def grown_support(z: dict[float, np.ndarray], threshold: float = THRESHOLD) -> np.ndarray:
    """Pixels of the areas above ``GROW`` that hold a detection, widened by ``s``."""
    first = next(iter(z.values()))
    support = np.zeros(first.shape, bool)
    for s, zz in z.items():
        support |= grown_area(zz, threshold, s)
    return support


def smooth_within(
    values: np.ndarray, area: np.ndarray, sigma: float = SMOOTH_PX, weight: np.ndarray | None = None
) -> np.ndarray:
    """``values`` Gaussian-smoothed inside ``area`` from ``area`` alone (normalised
    convolution, Knutsson & Westin 1993), 0 outside; ``weight``: the area's own smoothing,
    when several maps share the area."""
    if weight is None:
        weight = ndimage.gaussian_filter(area.astype(np.float64), sigma)
    total = ndimage.gaussian_filter(np.where(area, values, 0.0), sigma)
    return np.where(area, total / np.maximum(weight, 1e-9), 0.0)


def edge_kept_smoothing(values: np.ndarray, area: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """:func:`smooth_within` of ``values`` except where it moves them by more than
    :data:`EDGE_Z` robust std of the same residual of the noise maps ``(n, H, W)``, each
    read in turn (a sigma filter, Lee 1983: edges the noise cannot make are kept)."""
    weight = ndimage.gaussian_filter(area.astype(np.float64), SMOOTH_PX)
    smooth = smooth_within(values, area, weight=weight)
    residual = np.concatenate([(m - smooth_within(m, area, weight=weight))[area] for m in noise])
    keep = np.abs(values - smooth) > EDGE_Z * mad_std(residual)
    return np.where(area, np.where(keep, values, smooth), 0.0)


def smoothing_risk(values: np.ndarray, area: np.ndarray, noise: np.ndarray, sigma: float) -> float:
    """Stein's unbiased risk of :func:`smooth_within` at ``sigma`` inside ``area``, less the
    noise variance it does not depend on: ``||S y - y||² + 2 tr(S Σ)``, the trace from the
    first :data:`RISK_MAPS` noise maps ``(n, H, W)`` (``E <S n, n> = tr(S Σ)``; Stein 1981,
    Ann. Statist. 9(6), 1135-1151, eq. 3, for correlated Gaussian noise)."""
    weight = ndimage.gaussian_filter(area.astype(np.float64), sigma)
    fit = smooth_within(values, area, sigma, weight) - values
    trace = np.mean(
        [
            float(np.sum((smooth_within(m, area, sigma, weight) * m)[area]))
            for m in np.asarray(noise[:RISK_MAPS], np.float64)
        ]
    )
    return float(np.sum(fit[area] ** 2)) + 2.0 * trace


def risk_change_sd(
    values: np.ndarray,
    area: np.ndarray,
    noise: np.ndarray,
    sigma: float,
    narrow: np.ndarray | None = None,
) -> float:
    """The standard error of the change of :func:`smoothing_risk` from :data:`SMOOTH_PX` to
    ``sigma``: its data term ``||(S - I) y||²`` moves with the noise by ``<g, n>``, ``g = 2
    (S - I)ᵀ (S - I) y`` (the delta method; the trace terms are fixed), read on the noise
    maps ``(n, H, W)`` as the root mean square of ``<g_sigma - g_2px, n>``. Large where a
    strong signal's shape is changed by the smoothing (its risk is then noisy). ``narrow``:
    ``g_2px`` when already computed (:func:`_risk_gradient`)."""
    if narrow is None:
        narrow = _risk_gradient(values, area, SMOOTH_PX)
    return _projection_rms(_risk_gradient(values, area, sigma) - narrow, area, noise)


def _risk_gradient(values: np.ndarray, area: np.ndarray, sigma: float) -> np.ndarray:
    """``2 (S - I)ᵀ (S - I) y`` on ``area`` for :func:`smooth_within` at ``sigma``."""
    weight = ndimage.gaussian_filter(area.astype(np.float64), sigma)
    change = np.where(area, smooth_within(values, area, sigma, weight) - values, 0.0)
    # (S - I)ᵀ of the normalised convolution S = D⁻¹ G M: M G D⁻¹ - I on the area
    back = ndimage.gaussian_filter(np.where(area, change / np.maximum(weight, 1e-9), 0.0), sigma)
    return 2.0 * np.where(area, back - change, 0.0)


def _projection_rms(g: np.ndarray, area: np.ndarray, noise) -> float:
    """The root mean square of ``<g, n>`` on ``area`` over the noise maps ``(n, H, W)``."""
    return float(np.sqrt(np.mean([float(np.sum((g * m)[area])) ** 2 for m in np.asarray(noise)])))


def risk_smoothing(values: np.ndarray, area: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """The filled areas' estimate: :func:`edge_kept_smoothing`, or :func:`smooth_within` at the
    :data:`WIDER_PX` width of least :func:`smoothing_risk` among those whose risk is lower
    than the risk at :data:`SMOOTH_PX` by more than :data:`RISK_Z` times
    :func:`risk_change_sd` (a broad signal under noise the narrow smoothing leaves)."""
    base = smoothing_risk(values, area, noise, SMOOTH_PX)
    risks = {s: smoothing_risk(values, area, noise, s) for s in WIDER_PX}
    narrow = _risk_gradient(values, area, SMOOTH_PX)  # once for every width
    fallen = [
        s
        for s in WIDER_PX
        if risks[s] < base - RISK_Z * risk_change_sd(values, area, noise, s, narrow)
    ]
    if fallen:
        return smooth_within(values, area, min(fallen, key=risks.get))
    return edge_kept_smoothing(values, area, noise)


def prediction_risk(values: np.ndarray, unknown: np.ndarray, area: np.ndarray, noise) -> float:
    """Stein's unbiased risk on ``area`` of ``values`` less their harmonic prediction from
    outside ``unknown``, less the noise variance it does not depend on: ``||(M y)_A||² - 2
    tr_A(M Σ)``, the trace from the noise maps ``(n, H, W)`` (``E <(M n)_A, n_A>``; Stein
    1981, eq. 3, as :func:`smoothing_risk`)."""
    predict = HarmonicPredictor(unknown)
    trace = np.mean([float(np.sum((predict(m) * m)[area])) for m in noise])
    return float(np.sum(predict(values)[area] ** 2)) - 2.0 * trace


def prediction_pixels(
    lin: np.ndarray, new: np.ndarray, outside: np.ndarray, ok: np.ndarray, noise, dem
) -> np.ndarray:
    """The pixels the noise inside the filled areas ``new`` is predicted from: ``outside``
    or, where the areas cover at least :data:`BROAD_SHARE` of the scene, ``outside`` less a
    band of :data:`BROAD_MARGIN_PX` around them when that prediction's unbiased risk
    (:func:`prediction_risk`) is the lower (a broad source's tails reach beyond its detected
    area, and a prediction from them takes the tails for atmosphere). ``noise``: the line's
    noise maps, their elevation fit removed as the map's and scaled to its spread outside."""
    if new.sum() < BROAD_SHARE * ok.sum():
        return outside
    far = outside & (ndimage.distance_transform_edt(~new) > BROAD_MARGIN_PX)
    if far.sum() < (1.0 - MAX_SHARE) * ok.sum():
        return outside
    maps = elevation_free(np.asarray(noise, np.float64), ok, dem, outside)
    spread = np.sqrt(np.mean([np.var(m[outside]) for m in maps]))
    maps *= float(np.std(lin[outside])) / max(spread, 1e-12)
    near, wide = (prediction_risk(lin, ~o, new, maps) for o in (outside, far))
    return far if wide < near else outside


@dataclass
class Detection:
    """What :func:`detect` found: the pixels to fill (None: nothing), the straight line's
    cumulative there, the largest ``z`` per map and scale, the pixels the noise prediction is
    made from (the rest is predicted), the line's noise maps ``(n, H, W)`` and the pixels of
    the supports and the gate (also when they cover too much of the scene to fill) and the
    band (px) left out of the prediction around the areas (0: none)."""

    new: np.ndarray | None
    estimate: np.ndarray | None
    zmax: dict
    outside: np.ndarray | None = None
    line_noise: np.ndarray | None = None
    covered: np.ndarray | None = None
    beyond_px: float = 0.0
    extent: dict | None = None


def new_supports(
    gate_map, maps: tuple, shape: tuple[int, int], dem=None, n_dates: int | None = None
) -> tuple:
    """``(filled, estimate, zmax)`` of :func:`detect`."""
    d = detect(gate_map, maps, shape, dem, n_dates)
    return d.new, d.estimate, d.zmax


def detect(
    gate_map, maps: tuple, shape: tuple[int, int], dem=None, n_dates: int | None = None
) -> Detection:
    """The pixels to fill ``(H, W)`` bool (the new supports and every area of the gate),
    the straight line's cumulative there ``(H, W)`` mm (0 elsewhere) and the largest
    ``z`` per map and scale (:class:`Detection`); the pixels are None when the scene is over
    :data:`MAX_PIXELS`, nothing is detected or the supports and the gate's cover more than
    :data:`MAX_SHARE` of the scene. ``maps``: the gate's ``(noise,
    projection, line_noise, line)`` (arrays or disk stacks); each map and noise map is
    tested with its elevation fit ``c + k z + q z²`` removed (a signal that follows the
    relief is the stratification the stack's trend terms leave, session 17: `shifted` 34);
    with ``n_dates`` under :data:`PROJECTION_MIN_DOF` residual degrees of freedom the
    projection's supports count only when the line detects too (its noise maps are less
    certain)."""
    h, w = shape
    if h * w > MAX_PIXELS:
        return Detection(None, None, {})
    noise, projection, line_noise, line = maps
    proj = np.asarray(projection[0:h], np.float64)
    lin = np.asarray(line[0:h], np.float64)
    stacks = [noise_stack(noise, h), noise_stack(line_noise, h)]
    ok = np.isfinite(proj) & np.isfinite(lin)
    for st in stacks:
        ok &= np.all(np.isfinite(st), axis=0)
    if ok.sum() < MIN_INTERIOR:
        return Detection(None, None, {})
    gate_on = np.asarray(gate_map[0:h]) > GATE_ON
    zmax: dict[str, float] = {}
    supports = {}
    for name, stat, st in (("projection", proj, stacks[0]), ("line", lin, stacks[1])):
        free = elevation_free(np.concatenate([stat[None], np.nan_to_num(st)]), ok, dem, ok)
        z = zmaps(free[0], free[1:], ok)
        zmax.update({f"{name}:{s:g}": float(v.max()) for s, v in z.items()})
        supports[name] = grown_support(z) if z else np.zeros((h, w), bool)
    few = n_dates is not None and n_dates - fit_segments(n_dates) - 1 < PROJECTION_MIN_DOF
    if few and not supports["line"].any():
        supports["projection"][:] = False
    support = supports["projection"] | supports["line"]
    support &= ok
    # every area of the supports and every area of the gate is filled whole (session 17:
    # filling only the new pixels beside a gate area, or leaving those areas out, detected
    # 0.72 instead of 0.76 of `in` at SNR >= 10; session 21: gate areas no support reaches
    # too, the atmosphere predicted from around them removed: false patches `in` 65 2.70 ->
    # 1.04 mm, `shifted` 34 1.13 -> 0.84, Mogi `in` 39 1.36 -> 1.19, nothing else moved)
    new = (support | gate_on) & ok
    outside = ok & ~support & ~gate_on
    if not new.any() or outside.sum() < (1.0 - MAX_SHARE) * ok.sum():
        return Detection(None, None, zmax, covered=new)
    extent = None
    if SOURCE_EXTENT:  # off: design table (bh)
        new, extent = source_extent(lin, new, ok, dem, MAX_SHARE)
        outside = ok & ~new
    # fitted in a band below broad signals' scale: their tails outside the areas follow the
    # relief there (session 33: `in` deep fault 46 1.17 -> 0.99 mm, `shifted` Mogi 66 1.14 -> 1.08)
    lin = elevation_free_banded(np.where(ok, lin, 0.0), ok, dem, RELIEF_BAND_PX, fit_on=outside)
    line_noise = np.nan_to_num(stacks[1])
    predict_from = prediction_pixels(lin, new, outside, ok, line_noise, dem)
    beyond = BROAD_MARGIN_PX if not np.array_equal(predict_from, outside) else 0.0
    outside = predict_from
    residual = lin - harmonic_fill(lin, ~outside)
    # the risk's trace term rests on the line's noise maps: with few residual degrees of
    # freedom behind them (T - 2) they are too uncertain (`in` shallow Mogi 40, 9 dates:
    # gain 0.84 -> 0.38 at a wider smoothing)
    if n_dates is not None and n_dates - 2 < PROJECTION_MIN_DOF:
        estimate = edge_kept_smoothing(residual, new, line_noise)
    else:
        estimate = risk_smoothing(residual, new, line_noise)
    return Detection(new, estimate, zmax, outside, line_noise, beyond_px=beyond, extent=extent)


def support_step(
    series,
    gate_map,
    maps: tuple,
    times_days: np.ndarray,
    dem=None,
    rows=None,
    date_var: np.ndarray | None = None,
    beyond: bool = False,
) -> tuple:
    """Fill the areas of :func:`detect` in ``series (T, H, W)`` (an array or a disk stack,
    row strips) from each date's level, a straight line in time or, with ``rows(t, lo, hi)``
    (the input relative to the first date) and ``date_var``, the ramp of
    :mod:`.area_history` where an area's data prefer one, and set the gate to 1 there (in
    place where they are writable); where nothing is found, the step scan's broad step
    (:func:`.step_scan.broad_step`) fills the scene instead; where a step beyond steady
    motion reaches well outside the areas (:func:`.step_scan.step_beyond_fill`, scanned
    with ``beyond``: the in-memory path), the step at its date fills the scene instead, as
    the broad step. ``(series, gate, note)``, the note ``{"largest_z": {map:scale: z},
    "filled_pixels": n, "ramps": [...], "step_beyond": {...}, "prediction_beyond_px": 16}``
    (the last where :func:`prediction_pixels` left a band out; or ``"broad_step"``, beside
    ``"step_beyond"`` where that wrote it; empty when skipped)."""
    n, h, w = series.shape
    found = detect(gate_map, maps, (h, w), dem, n)
    note = {"largest_z": {k: round(v, 2) for k, v in found.zmax.items()}} if found.zmax else {}
    # only where nothing else was found: a broad step replacing a detected area's fill or the
    # network's map lost strong creep and faults (session 25: `in` 54 1.88 -> 6.44 mm)
    nothing = found.new is None and (found.covered is None or not found.covered.any())
    if nothing and rows is not None and date_var is not None and not gate_opened(gate_map):
        broad = step_scan.broad_step(rows, (n, h, w), times_days, date_var, dem)
        if broad is not None:
            return _write_broad_step(series, gate_map, broad, note)
    if found.new is None:
        note = _network_history(series, gate_map, rows, dem, times_days, date_var, note)
        return series, gate_map, {**note, "filled_pixels": 0} if note else note
    if beyond and rows is not None and date_var is not None:
        # a step beyond the areas: the harmonic prediction would take the signal around
        # them for noise (session 26: `shifted` bowl 5, 5.97 -> 1.79 mm with the network's
        # ungated map; session 38, the step itself: 0.89 mm, and no date's stratification
        # that the network keeps, a fresh draw of `shifted` 45 21.3 -> 3.3 mm)
        scan = step_scan.step_beyond_fill(rows, (n, h, w), times_days, date_var, found.new, dem)
        if scan is not None:
            step = {"date_index": scan.k, "z": round(scan.z, 2), "outside": round(scan.outside, 3)}
            if not scan.lasting:  # a late step that later dates do not carry (session 39)
                step["lasting"] = False
            note = {**note, "step_beyond": step}
            if scan.step is not None:
                return _write_broad_step(series, gate_map, scan.step, note)
    days = np.asarray(times_days, np.float64)
    shapes = [(days - days[0]) / float(days[-1] - days[0])]
    which = np.zeros((h, w), np.int16)
    estimate = found.estimate
    ramps = []
    if rows is not None and date_var is not None:
        for found_history in area_ramps(rows, found.new, found.outside, dem, days, date_var):
            area, cumulative = found_history.area, found_history.cumulative
            values = np.zeros((h, w))
            values[area] = np.where(np.isfinite(cumulative), cumulative, estimate[area])
            scale = np.float32(found_history.scale)
            smooth = edge_kept_smoothing(values, area, found.line_noise * scale)
            # the line's and the ramp's estimates averaged where neither model wins alone
            weight = found_history.ramp.weight
            if weight < 1.0:
                smooth = weight * smooth + (1.0 - weight) * estimate
            estimate = np.where(area, smooth, estimate)
            shapes.append(found_history.shape)
            which[area] = len(shapes) - 1
            ramps.append(found_history.ramp.note(int(area.sum())))
    series, gate_map = _fill(series, gate_map, found.new, estimate, np.stack(shapes), which)
    note = {**note, "filled_pixels": int(found.new.sum()), "ramps": ramps}
    if found.beyond_px:
        note["prediction_beyond_px"] = found.beyond_px
    if found.extent:
        note["source_extent"] = found.extent
    return series, gate_map, note


def _network_history(series, gate_map, rows, dem, times_days, date_var, note: dict) -> dict:
    """Where the network's series stays in the gate, its history a ramp where the data prefer
    one (:mod:`.gate_history`; in place); the note with ``"gate_ramp"`` then."""
    if rows is None or date_var is None:
        return note
    found = gate_history.gate_ramp(series, gate_map, rows, dem, times_days, date_var)
    if found is None:
        return note
    gate_history.write_ramp(series, gate_map, found)
    return {**note, "gate_ramp": found.note()}


def _fill(series, gate_map, new, estimate, shape_of, which, gate_on=None) -> tuple:
    """``series`` at the ``new`` pixels set to each date's level plus ``estimate`` times its
    history ``shape_of[which]`` (rows of histories in time), the gate set to 1 on ``gate_on``
    (default ``new``); in place where they are writable. ``(series, gate)``."""
    n, h, w = series.shape
    gate_on = new if gate_on is None else gate_on
    for t in range(n):
        level = date_level(lambda lo, hi, t=t: series[t, lo:hi], (h, w))
        for a, b in row_strips(h, w):
            current = np.asarray(series[t, a:b])
            filled = level + shape_of[:, t][which[a:b]] * estimate[a:b]
            series[t, a:b] = np.where(new[a:b], filled.astype(current.dtype), current)
    if isinstance(gate_map, np.ndarray):
        gate_map = np.where(gate_on, np.float32(1.0), gate_map).astype(np.float32)
    else:
        for a, b in row_strips(h, w):
            gate_map[a:b] = np.where(gate_on[a:b], np.float32(1.0), np.asarray(gate_map[a:b]))
    return series, gate_map


def _write_broad_step(series, gate_map, broad, note: dict) -> tuple:
    """``series`` filled with the step scan's broad signal (:mod:`.step_scan`), the gate set
    to 1 everywhere; as :func:`support_step`."""
    which = np.zeros(broad.ok.shape, np.int16)
    everywhere = np.ones(broad.ok.shape, bool)
    history = np.asarray(broad.history, np.float64)[None]
    series, gate_map = _fill(series, gate_map, broad.ok, broad.estimate, history, which, everywhere)
    step = {"date_index": broad.k, "z": round(broad.z, 2), "pixels": int(broad.ok.sum())}
    note = {**note, "filled_pixels": int(broad.ok.sum()), "broad_step": step}
    return series, gate_map, note


def noise_stack(maps, h: int, dtype=np.float32) -> np.ndarray:
    """The gate's noise maps ``(n, H, W)`` as one array, read ``[j, rows]`` (an array, a disk
    stack, or with the relief terms of :class:`.relief_noise.WithStratification` added)."""
    return np.stack([np.asarray(maps[j, 0:h], dtype) for j in range(len(maps))])
