"""Unwrapping errors of single dates: regions shifted by whole half wavelengths, found and removed.

An unwrapping error offsets a closed region of one date by a whole number of half
wavelengths (27.7 mm LOS at C-band; the region's edge is a phase cycle the unwrapper
closed the wrong way; Hanssen 2001, Radar Interferometry, sec. 2.5). Atmosphere is smooth,
so neighbouring pixels of a date-to-date difference differ by a few mm, while across such an
edge they differ by a whole multiple of the half wavelength: on Benchmark v2's ``shifted``
scenes the edge steps were 25-28 mm (10th percentile, median) and every other neighbour step
under 14 mm. For each date ``t`` after the first:

1. ``a = d_t - d_{t-1}``, its elevation fit removed, is cut into plateaus: neighbouring
   pixels belong together unless their step exceeds :data:`CUT` half wavelengths;
2. each plateau gets a level, its offset in half wavelengths from the largest plateau, through
   the step most of the edges it shares with a plateau already levelled agree on; plateaus
   no vote reaches (cut off by missing pixels) by their median step to the levelled pixels
   around them (session 24);
3. a region of at least :data:`MIN_PIXELS` pixels at the same non-zero level ``k`` is an
   error of date ``t`` only if ``d_t - d_{t+1}`` puts it at the same level (a spike in time:
   a real step at ``t``, such as an earthquake, stays in later dates; for the last date,
   ``d_t - d_{t-2}``); on such a date, pieces of at least :data:`MIN_PIECE_PIXELS` at that
   level go too; a region only one difference levels (its plateau leaked into the rest in
   the other) goes when both step by ``k`` from the ring around it and from the rest of
   the scene (session 24);
4. each region grows by the edge pixels that sit ``k`` above their surroundings
   (:func:`grown`), and ``k`` half wavelengths are removed from it on date ``t``;
5. in stacks of at most :data:`RIM_MAX_DATES` dates, the :data:`RIM_PX` px around it are set
   missing on date ``t`` (session 41): without it the corrected region's edge was taken
   for a signal (9-date `shifted` deep Mogi 36: the second detector filled 8,609 px, 0.95
   -> 2.48 mm; with the rim nothing, 0.95). The rim's absence on that date, not its
   values, does this: filled from its date's neighbours instead, 2.77 mm.

On Benchmark v2's ``shifted`` stacks of >= 12 dates (63 errors) this restores 329 k of the
352 k wrong pixels (session 23's first two rules alone: 312 k) and moves 23 right ones; on
its 21 nine-date ones (session 41) 95 k of 103 k, moving 574.

Deformation is left alone: it is not a closed edge of exactly a whole number of half
wavelengths that appears on one date and disappears on the next.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from insar_denoise.synth.config import S1_HALF_WAVELENGTH_MM

#: neighbours are cut apart where their step exceeds this share of a half wavelength (below
#: one half, so that noise at an error's edge rarely joins it to the rest: a cut inside
#: smooth atmosphere only makes a plateau at level 0)
CUT = 0.35
#: stacks with fewer dates are left as they are: the spike test needs a date after ``t`` or
#: two before it (12 until session 41: on 9-date `shifted` stacks session 23's rules exposed
#: false and partial regions; with session 24's rules they restore 92 % of the 103 k wrong
#: pixels of the 21 nine-date `shifted` design scenes and move 574 right ones)
MIN_DATES = 3
#: ring (px) around a removed region set missing on its date (step 5 of the module docstring)
RIM_PX = 3
#: stacks of at most this many dates get the rim; longer ones keep it (session 41, one full
#: Benchmark v2 run with the rim on every stack: 18 scenes of >= 12 dates worse, 3 better,
#: `shifted` bowls 6 1.07 -> 3.00 mm and 62 1.69 -> 3.62, creep 83 0.26 -> 0.94)
RIM_MAX_DATES = 11
#: smallest region corrected (pixels)
MIN_PIXELS = 256
#: on a date with such a region, pieces of at least this many pixels at the same level are
#: removed too (the same error, cut apart by decorrelation holes)
MIN_PIECE_PIXELS = 16
#: plateaus no vote reached are levelled from the levelled pixels this close (px)
HOLE_PX = 6
#: rings of edge pixels a region may grow by (:func:`grown`)
GROW_PX = 3
#: width (px) of the local mean that gives the level around a region's edge
REFERENCE_PX = 15
#: share of a region's edge steps that must round to its multiple, in both differences
EDGE_SHARE = 0.8
#: scenes with more pixels than this are not searched (the plateau labels hold 4x the map)
MAX_PIXELS = 2048 * 2048
#: dates a :class:`DateReader` keeps in memory
CACHED_DATES = 4
#: result attribute: the regions removed (JSON list) or why none
UNWRAP_ATTR = "insar_denoise_unwrapping"


@dataclass
class Jump:
    """A region of one date shifted by ``cycles`` half wavelengths (``mask (H, W)``)."""

    date: int
    cycles: int
    mask: np.ndarray
    #: pixels set missing on ``date`` around the region (step 5; None: none)
    rim: np.ndarray | None = None

    def note(self, half_wavelength_mm: float) -> dict:
        """The JSON-ready summary: date index, jump (mm), pixels and rim pixels set missing."""
        return {
            "date": self.date,
            "jump_mm": round(self.cycles * half_wavelength_mm, 2),
            "pixels": int(self.mask.sum()),
            "rim_missing": 0 if self.rim is None else int(self.rim.sum()),
        }


def plateaus(diff: np.ndarray, half: float) -> tuple[np.ndarray, int]:
    """Labels ``(H, W)`` (0: missing) of the regions of ``diff`` joined by neighbour steps under
    :data:`CUT` half wavelengths (a 2x grid whose odd cells are the links; 4-connectivity)."""
    h, w = diff.shape
    ok = np.isfinite(diff)
    grid = np.zeros((2 * h - 1, 2 * w - 1), bool)
    grid[::2, ::2] = ok
    with np.errstate(invalid="ignore"):
        grid[::2, 1::2] = ok[:, 1:] & ok[:, :-1] & (np.abs(np.diff(diff, axis=1)) < CUT * half)
        grid[1::2, ::2] = ok[1:] & ok[:-1] & (np.abs(np.diff(diff, axis=0)) < CUT * half)
    labels, n = ndimage.label(grid)
    return labels[::2, ::2].copy(), n  # a copy: the 2x grid's labels are freed


def levels(diff: np.ndarray, half: float) -> np.ndarray:
    """``(H, W)`` int: each pixel's offset in half wavelengths from the largest plateau of
    ``diff`` (:func:`plateaus`). Plateaus are levelled from it outwards, largest first: each
    edge a plateau shares with a levelled one votes for that one's level plus the rounded
    step across it, and the level takes when at least :data:`EDGE_SHARE` of the votes agree
    (plateaus never agreed on stay at 0)."""
    labels, n = plateaus(diff, half)
    out = np.zeros(diff.shape, np.int16)
    if n < 2:
        return out
    pairs = []
    for axis in (0, 1):
        lo = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        hi = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        la, lb = labels[lo], labels[hi]
        cross = (la > 0) & (lb > 0) & (la != lb)
        step = np.rint((diff[lo] - diff[hi])[cross] / half).astype(np.int64)
        pairs.append(np.stack([la[cross], lb[cross], step], 1))
        pairs.append(np.stack([lb[cross], la[cross], -step], 1))
    edges = np.concatenate(pairs)  # (plateau, neighbour, level difference) per shared edge
    if not len(edges):
        return out
    edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))]
    starts = np.searchsorted(edges[:, 0], np.arange(n + 2))
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    level = np.full(n + 1, np.iinfo(np.int32).min, np.int64)
    unset = level[0]
    level[int(np.argmax(sizes))] = 0
    # a plateau's vote changes only when a neighbour's level does: the others are not recounted
    stale = np.ones(n + 1, bool)
    changed = True
    while changed:  # each pass levels every plateau whose levelled neighbours' edges agree
        changed = False
        todo = np.flatnonzero((level == unset) & (sizes > 0))
        for p in todo[np.argsort(-sizes[todo], kind="stable")]:
            if not stale[p]:
                continue
            stale[p] = False
            own = edges[starts[p] : starts[p + 1]]
            nb = level[own[:, 1]]
            known = nb != unset
            if not known.any():
                continue
            votes = nb[known] + own[known, 2]
            low = int(votes.min())
            counts = np.bincount(votes - low)  # the smallest of the most common, as np.unique
            best = int(np.argmax(counts))
            if counts[best] >= EDGE_SHARE * known.sum():
                level[p] = best + low
                stale[own[:, 1]] = True
                changed = True
    across_holes(diff, half, labels, sizes, level, unset)
    level[level == unset] = 0
    return level.astype(np.int16)[labels]


def across_holes(
    diff: np.ndarray, half: float, labels: np.ndarray, sizes: np.ndarray, level: np.ndarray, unset
) -> None:
    """Level in place the plateaus of at least :data:`MIN_PIECE_PIXELS` that no vote reached
    (cut off by missing pixels, or their edges disagreeing): by the median step to the
    levelled pixels within :data:`HOLE_PX` around them, when it is within :data:`CUT` of a
    whole number of half wavelengths."""
    todo = np.flatnonzero((level == unset) & (sizes >= MIN_PIECE_PIXELS))
    if not len(todo):
        return
    known = level[labels] != unset
    known &= labels > 0
    flat = np.where(known, diff - np.where(known, level[labels], 0) * half, np.nan)
    boxes = ndimage.find_objects(labels)
    h, w = diff.shape
    for p in todo[np.argsort(-sizes[todo], kind="stable")]:
        ys, xs = boxes[p - 1]
        y0, y1 = max(ys.start - HOLE_PX, 0), min(ys.stop + HOLE_PX, h)
        x0, x1 = max(xs.start - HOLE_PX, 0), min(xs.stop + HOLE_PX, w)
        own = labels[y0:y1, x0:x1] == p
        near = ndimage.binary_dilation(own, iterations=HOLE_PX) & known[y0:y1, x0:x1]
        if near.sum() < MIN_PIECE_PIXELS:
            continue
        step = (np.median(diff[y0:y1, x0:x1][own]) - np.median(flat[y0:y1, x0:x1][near])) / half
        if abs(step - round(step)) < CUT:
            level[p] = round(step)
            if sizes[p] >= MIN_PIXELS:  # a large one levels the smaller ones after it
                known[y0:y1, x0:x1] |= own
                flat[y0:y1, x0:x1][own] = diff[y0:y1, x0:x1][own] - level[p] * half


def without_elevation(diff: np.ndarray, z: np.ndarray | None, half: float) -> np.ndarray:
    """``diff`` less its least-squares ``c + k z + q z²`` (``z`` the elevation in km; the
    stratified delay of two dates; Doin et al. 2009), refitted without the pixels more than a
    quarter half wavelength from the fit (an error's region must not bend it)."""
    if z is None:
        return diff
    ok = np.isfinite(diff) & np.isfinite(z)
    if ok.sum() < 3 * MIN_PIXELS:
        return diff
    basis = np.stack([np.ones(int(ok.sum())), z[ok], z[ok] ** 2], axis=1)
    values = diff[ok].astype(np.float64)
    use = np.ones(values.size, bool)
    for _ in range(3):
        coef = np.linalg.lstsq(basis[use], values[use], rcond=None)[0]
        resid = values - basis @ coef
        use = np.abs(resid) < 0.25 * half
        if use.sum() < 3 * MIN_PIXELS:
            return diff
    out = np.full(diff.shape, np.nan, np.float32)
    out[ok] = resid
    return out


def date_jumps(
    displacement: np.ndarray, t: int, half: float, z: np.ndarray | None = None
) -> list[Jump]:
    """The unwrapping errors of date ``t`` (``1 <= t``) of ``displacement (T, H, W)`` mm:
    connected regions of at least :data:`MIN_PIXELS` at the same non-zero level
    (:func:`levels`) in ``d_t - d_{t-1}`` and in ``d_t - d_{t+1}`` (``d_{t-2}`` for the last
    date), each with its rim in stacks of at most :data:`RIM_MAX_DATES` dates."""
    n_dates = displacement.shape[0]
    other = t + 1 if t + 1 < n_dates else t - 2
    if t < 1 or other < 0:
        return []
    a1 = without_elevation(displacement[t] - displacement[t - 1], z, half)
    first = levels(a1, half)
    if not first.any():
        return []
    a2 = without_elevation(displacement[t] - displacement[other], z, half)
    second = levels(a2, half)
    agree = np.where(first == second, first, 0)
    jumps: list[Jump] = []
    taken = np.zeros(agree.shape, bool)
    for cycles in np.unique(agree[agree != 0]):
        regions, n = ndimage.label(agree == cycles)
        sizes = np.bincount(regions.ravel(), minlength=n + 1)
        sizes[0] = 0
        big = np.flatnonzero(sizes >= MIN_PIXELS)
        if not len(big):
            continue
        pieces = np.flatnonzero((sizes >= MIN_PIECE_PIXELS) & (sizes < MIN_PIXELS))
        masks = [regions == label for label in big]
        if len(pieces):  # cut off the same error by holes: this date is known to carry one
            masks.append(np.isin(regions, pieces))
        for mask in masks:
            mask = grown(mask & ~taken, (a1, a2), int(cycles), half, taken)
            taken |= mask
            jumps.append(Jump(t, int(cycles), mask))
    # a region one difference levels and the other does not (its plateau leaked into the
    # rest where the edge crosses steep atmosphere): kept when both differences step by its
    # level from the pixels around it and from the rest of the scene (not the background
    # seen from an error that was taken for the level-0 plateau)
    for lv in (first, second):
        for cycles in np.unique(lv[(lv != 0) & ~taken]):
            regions, n = ndimage.label((lv == cycles) & ~taken)
            sizes = np.bincount(regions.ravel(), minlength=n + 1)
            for label in np.flatnonzero(sizes[1:] >= MIN_PIXELS) + 1:
                mask = regions == label
                steps = [ring_step(a, mask, half) for a in (a1, a2)]
                steps += [scene_step(a, mask, half) for a in (a1, a2)]
                if all(abs(x - cycles) < CUT for x in steps):
                    mask = grown(mask, (a1, a2), int(cycles), half, taken)
                    taken |= mask
                    jumps.append(Jump(t, int(cycles), mask))
    if n_dates <= RIM_MAX_DATES:  # step 5: the rims, outside every region of the date
        seen = np.isfinite(displacement[t])
        for j in jumps:
            j.rim = ndimage.binary_dilation(j.mask, iterations=RIM_PX) & ~taken & seen
    return jumps


def scene_step(diff: np.ndarray, mask: np.ndarray, half: float) -> float:
    """The median of ``diff`` over ``mask`` less its median over the rest of the scene, in
    half wavelengths (:func:`median_step`)."""
    return median_step(diff[mask], diff[~mask], half)


def ring_step(diff: np.ndarray, mask: np.ndarray, half: float) -> float:
    """The median of ``diff`` over ``mask`` less its median over a ring 3-8 px around it, in
    half wavelengths (NaN with under :data:`MIN_PIECE_PIXELS` pixels on either side)."""
    ys, xs = np.nonzero(mask)
    box = (
        slice(max(ys.min() - 8, 0), ys.max() + 9),
        slice(max(xs.min() - 8, 0), xs.max() + 9),
    )
    own, part = mask[box], diff[box]
    ring = ndimage.binary_dilation(own, iterations=8) & ~ndimage.binary_dilation(own, iterations=2)
    return median_step(part[own], part[ring], half)


def median_step(inside: np.ndarray, outside: np.ndarray, half: float) -> float:
    """The median of the finite ``inside`` values less that of the finite ``outside`` ones, in
    half wavelengths (NaN with under :data:`MIN_PIECE_PIXELS` finite values on either side)."""
    inside, outside = inside[np.isfinite(inside)], outside[np.isfinite(outside)]
    if min(inside.size, outside.size) < MIN_PIECE_PIXELS:
        return float("nan")
    return float(np.median(inside) - np.median(outside)) / half


def grown(
    mask: np.ndarray, diffs: tuple[np.ndarray, ...], cycles: int, half: float, taken: np.ndarray
) -> np.ndarray:
    """``mask`` grown by up to :data:`GROW_PX` rings of pixels that sit ``cycles`` half
    wavelengths (within :data:`CUT`) above the level of the pixels around them outside the
    region (a local mean over :data:`REFERENCE_PX`, from at least 3 px beyond the region), in
    every difference: the edge pixels the plateau cut left on the other side."""
    away = ~ndimage.binary_dilation(mask | taken, iterations=3)
    refs = []
    for a in diffs:
        use = away & np.isfinite(a)
        total = ndimage.uniform_filter(np.where(use, a, 0.0).astype(np.float64), REFERENCE_PX)
        count = ndimage.uniform_filter(use.astype(np.float64), REFERENCE_PX)
        refs.append(np.where(count > 0.05, total / np.maximum(count, 1e-9), np.nan))
    for _ in range(GROW_PX):
        ring = ndimage.binary_dilation(mask) & ~mask & ~taken
        for a, ref in zip(diffs, refs, strict=True):
            with np.errstate(invalid="ignore"):
                ring &= np.abs(a - ref - cycles * half) < CUT * half
        if not ring.any():
            break
        mask = mask | ring
    return mask


class DateReader:
    """A ``(T, H, W)`` array read one date at a time (a dask array of a stack on disk): ``[t]``
    is date ``t`` as float32 numpy, the last :data:`CACHED_DATES` dates read kept (the search
    reads dates ``t - 2 .. t + 1`` for date ``t``, so each date is read once)."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.shape = tuple(data.shape)
        self._cache: dict[int, np.ndarray] = {}

    def __getitem__(self, t: int) -> np.ndarray:
        if t not in self._cache:
            if len(self._cache) >= CACHED_DATES:
                self._cache.pop(min(self._cache))
            self._cache[t] = np.asarray(self.data[t], dtype=np.float32)
        return self._cache[t]


def find_jumps(
    displacement: Any,
    dem: np.ndarray | None = None,
    half_wavelength_mm: float = S1_HALF_WAVELENGTH_MM,
) -> list[Jump]:
    """Every unwrapping error of single dates in ``displacement (T, H, W)`` mm (NaN =
    missing; module docstring; numpy, or a dask array read one date at a time); ``dem (H,
    W)`` m: each difference loses its elevation fit first (:func:`without_elevation`)."""
    if isinstance(displacement, np.ndarray):
        d = np.asarray(displacement, dtype=np.float32)
    else:
        d = DateReader(displacement)
    z = None
    if dem is not None:
        z = np.asarray(dem, np.float64)
        z = (z - np.nanmedian(z)) / 1000.0
    return [j for t in range(1, d.shape[0]) for j in date_jumps(d, t, half_wavelength_mm, z)]


def removed(
    displacement: np.ndarray, jumps: list[Jump], half_wavelength_mm: float = S1_HALF_WAVELENGTH_MM
) -> np.ndarray:
    """``(T, H, W)`` float32: what the ``jumps`` added (subtract it to correct the stack; NaN
    on their rims, which the subtraction sets missing)."""
    n_dates, h, w = np.shape(displacement)
    return removed_block(jumps, half_wavelength_mm, (0, n_dates), (0, h), (0, w))


def removed_block(
    jumps: list[Jump],
    half_wavelength_mm: float,
    dates: tuple[int, int],
    rows: tuple[int, int],
    cols: tuple[int, int],
) -> np.ndarray:
    """The block ``[dates[0]:dates[1], rows[0]:rows[1], cols[0]:cols[1]]`` of :func:`removed`."""
    (t0, t1), (y0, y1), (x0, x1) = dates, rows, cols
    out = np.zeros((t1 - t0, y1 - y0, x1 - x0), np.float32)
    for j in jumps:
        if t0 <= j.date < t1:
            out[j.date - t0] += np.float32(j.cycles * half_wavelength_mm) * j.mask[y0:y1, x0:x1]
            if j.rim is not None:
                out[j.date - t0][j.rim[y0:y1, x0:x1]] = np.nan
    return out


def removed_lazy(data: Any, jumps: list[Jump], half_wavelength_mm: float) -> Any:
    """:func:`removed` as a dask array with the chunks of the dask array ``data``: each block
    is made from the jumps' masks when it is computed (no ``(T, H, W)`` array in memory)."""
    import dask.array as da

    def block(block_info: dict | None = None) -> np.ndarray:
        return removed_block(jumps, half_wavelength_mm, *block_info[None]["array-location"])

    return da.map_blocks(block, chunks=data.chunks, dtype=np.float32, meta=np.array((), np.float32))


def to_attr(
    jumps: list[Jump],
    half_wavelength_mm: float = S1_HALF_WAVELENGTH_MM,
    dates: Sequence[str] | None = None,
) -> str:
    """The note for :data:`UNWRAP_ATTR`: the removed regions (JSON; ``dates`` name the date
    indices) or ``"none"``."""
    if not jumps:
        return "none"
    notes = [j.note(half_wavelength_mm) for j in jumps]
    if dates is not None:
        for n in notes:
            n["date"] = str(dates[n["date"]])
    return json.dumps(notes)


def unwrapping_fix(
    displacement: np.ndarray,
    dem: np.ndarray | None = None,
    wavelength_mm: float | None = None,
    dates: Sequence[str] | None = None,
) -> tuple[np.ndarray | None, str]:
    """What to subtract from ``displacement (T, H, W)`` mm (None: nothing found, or the scene
    is over :data:`MAX_PIXELS`; a dask array, with its chunks, when ``displacement`` is one:
    read one date at a time, removed lazily) and the note for :data:`UNWRAP_ATTR`.
    ``wavelength_mm``: the radar's (a jump is half of it in line of sight; None: Sentinel-1's)."""
    n_dates, h, w = np.shape(displacement)
    if h * w > MAX_PIXELS:
        return None, f"skipped: scene over {MAX_PIXELS} pixels; the QC still warns"
    half = S1_HALF_WAVELENGTH_MM if wavelength_mm is None else 0.5 * float(wavelength_mm)
    jumps = find_jumps(displacement, dem, half)
    note = to_attr(jumps, half, dates)
    if not jumps:
        return None, note
    if isinstance(displacement, np.ndarray):
        return removed(displacement, jumps, half), note
    return removed_lazy(displacement, jumps, half), note
