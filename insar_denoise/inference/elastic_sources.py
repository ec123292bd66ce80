"""Elastic sources fitted to a map: where a detected source's signal reaches.

The second detector (:mod:`.bilaplacian_support`) fills each detected area with the straight
line's map less the atmosphere predicted from around it. A broad source's tails reach past
the area that its test detects, and the prediction from just outside takes them for
atmosphere (Benchmark v2 `shifted` deep fault 74, gain 0.80). Here the map is fitted with the
surface displacement of three families of sources in an elastic half-space, each family's
geometry by Nelder-Mead (Nelder & Mead 1965, Comput. J. 7(4), 308-313) from starts at the
detection, its strength by least squares for each line of sight of
:data:`.creep_model.HEADINGS_DEG` x :data:`.creep_model.INCIDENCES_DEG` after prewhitening
by differences (:func:`.creep_model.gradients`), on block means of at most
:data:`FIT_MAX_PX` px a side:

- a finite rectangle with strike and dip slip (Okada 1985, BSSA 75(4), 1135-1154);
- a point pressure source (Mogi 1958; Segall 2010, eq. 7.14);
- a Gaussian bowl of vertical motion (compaction subsidence).

The best-fitting source gives only the *extent* of the area to fill (:func:`source_extent`);
the values there stay the data's own (the source itself taken as the output kept its errors
where the gate found nothing else: model card design table (bg)). The engine grows its areas
so only with ``bilaplacian_support.SOURCE_EXTENT`` on, which it is not: design table (bh).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage, optimize

from insar_denoise.inference.creep_model import (
    block_means,
    gradients,
    los_vectors,
    plane_offsets,
    prepared,
)
from insar_denoise.synth.okada import okada_unit_slips

#: the fit runs on block means of at most this many px a side
FIT_MAX_PX = 64
#: Nelder-Mead runs from this many of the best starts, each of at most MAX_EVALS evaluations
N_STARTS = 3
MAX_EVALS = 300
#: smoothing (px) of the map whose largest value seeds the source's position
SEED_SMOOTH_PX = 6.0
#: the areas grow to where the fitted source exceeds this share of its largest value
EXTENT_SHARE = 0.1
#: ... unless that adds more than this many times their own pixels: the source then stands
#: for more than the data detected (Benchmark v2 `in` 65, SNR 0.6: a 376 px false patch grown
#: 13x, 1.04 -> 3.81 mm; a fresh draw of `in` shallow Mogi 71 grown 2.3x, 0.77 -> 3.11 mm)
MAX_GROWTH = 1.0


def _grid(shape: tuple[int, int], step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows and columns of pixel centres of a grid of ``step`` px blocks (px of the full grid)."""
    rows = torch.arange(shape[0], dtype=torch.float64)[:, None] * step + 0.5 * (step - 1)
    cols = torch.arange(shape[1], dtype=torch.float64)[None, :] * step + 0.5 * (step - 1)
    return rows, cols


def okada_units(shape: tuple[int, int], step: float, q: np.ndarray) -> np.ndarray:
    """``(6, H, W)``: east, north, up of unit strike slip, then of unit dip slip, of a
    rectangle (Okada 1985) at ``q`` = (row, col of the top edge's midpoint, strike, dip,
    log2 length, log2 width, top depth; px of the full grid)."""
    r0, c0, strike, dip, log_length, log_width, top = (float(v) for v in q)
    rows, cols = _grid(shape, step)
    slips = okada_unit_slips(  # strike slip, then dip slip
        cols - c0 + 0.0 * rows,
        -(rows - r0) + 0.0 * cols,
        x0_m=0.0,
        y0_m=0.0,
        depth_m=max(top, 0.0),
        strike_deg=strike,
        dip_deg=float(np.clip(dip, 5.0, 89.9)),
        length_m=2.0 ** np.clip(log_length, -2.0, 12.0),
        width_m=2.0 ** np.clip(log_width, -2.0, 12.0),
        kinds=(True, True, False),
    )
    return np.stack([np.nan_to_num(v.numpy()) for slip in slips for v in slip])


def mogi_units(shape: tuple[int, int], step: float, q: np.ndarray) -> np.ndarray:
    """``(3, H, W)``: east, north, up of a point pressure source at ``q`` = (row, col,
    depth; px), up to a scale (Mogi 1958; Segall 2010, eq. 7.14: ``x / R³``, ``d / R³``)."""
    r0, c0, depth = (float(v) for v in q)
    rows, cols = _grid(shape, step)
    x, y, d = (cols - c0 + 0.0 * rows), -(rows - r0) + 0.0 * cols, max(depth, 0.5)
    r3 = (x**2 + y**2 + d**2) ** 1.5 / d**2
    return np.stack([(x / r3).numpy(), (y / r3).numpy(), (d / r3).numpy()])


def bowl_units(shape: tuple[int, int], step: float, q: np.ndarray) -> np.ndarray:
    """``(3, H, W)``: a Gaussian bowl of vertical motion at ``q`` = (row, col, log2 sigma)."""
    r0, c0, log_sigma = (float(v) for v in q)
    rows, cols = _grid(shape, step)
    s = 2.0 ** np.clip(log_sigma, 0.0, 12.0)
    up = torch.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2.0 * s * s)).numpy()
    return np.stack([np.zeros_like(up), np.zeros_like(up), up])


FAMILIES = {"okada": (okada_units, 2), "mogi": (mogi_units, 1), "bowl": (bowl_units, 1)}


def seeds(family: str, positions: list[tuple[float, float]]) -> list[np.ndarray]:
    """Starting geometries of ``family`` at each ``(row, col)``."""
    if family == "okada":
        return [
            np.array([r, c, s, d, 5.0, 4.3, 16.0])
            for r, c in positions
            for s in range(0, 360, 45)
            for d in (30.0, 60.0, 85.0)
        ]
    if family == "mogi":
        return [np.array([r, c, d]) for r, c in positions for d in (8.0, 16.0, 32.0)]
    return [np.array([r, c, s]) for r, c in positions for s in (3.0, 4.0, 5.0, 6.0)]


def _solve(columns: np.ndarray, offsets: np.ndarray, y: np.ndarray, n_slip: int, los) -> tuple:
    """For each line of sight, the least squares of ``y`` on the ``n_slip`` projected
    displacements' differences and a plane's: ``(rss, coefficients, line of sight)``."""
    x = np.concatenate([columns, offsets], axis=1)
    gram, moment, energy = x.T @ x, x.T @ y, float(y @ y)
    n_off = offsets.shape[1]
    best: tuple = (np.inf, np.zeros(n_slip), los[0])
    for vector in los:
        basis = np.zeros((3 * n_slip + n_off, n_slip + n_off))
        for s in range(n_slip):
            basis[3 * s : 3 * s + 3, s] = vector
        basis[3 * n_slip :, n_slip:] = np.eye(n_off)
        normal, right = basis.T @ gram @ basis, basis.T @ moment
        try:
            coef = np.linalg.solve(normal + 1e-12 * np.eye(len(normal)), right)
        except np.linalg.LinAlgError:
            continue
        rss = energy - float(coef @ right)
        if rss < best[0]:
            best = (rss, coef[:n_slip], vector)
    return best


@dataclass
class SourceFit:
    """A fitted source: its family, geometry, strengths, line of sight, misfit and map."""

    family: str
    geometry: np.ndarray
    strengths: np.ndarray
    los: np.ndarray
    rss: float
    cumulative: np.ndarray


@dataclass
class Differenced:
    """A map as the fit reads it (:func:`differenced`): the full grid's ``shape``, the block
    side ``k``, the valid blocks ``cok``, the map's differences ``y`` and where they are
    finite (``use``), and a plane's columns in them (``offsets``)."""

    shape: tuple[int, int]
    k: int
    cok: np.ndarray
    y: np.ndarray
    use: np.ndarray
    offsets: np.ndarray

    def of(self, coarse: np.ndarray) -> np.ndarray:
        """The differences of another map on the block grid, as ``y``'s."""
        return gradients(coarse, self.cok)


def differenced(projection: np.ndarray, dem) -> Differenced:
    """``projection (H, W)`` mm (NaN = not valid) less its median and elevation fit, as block
    means of at most :data:`FIT_MAX_PX` px a side, prewhitened by differences."""
    p, _, _ = prepared(projection, dem)
    k = max(1, int(np.ceil(max(p.shape) / FIT_MAX_PX)))
    coarse = block_means(p, k)
    cok = np.isfinite(coarse)
    y = gradients(coarse, cok)
    return Differenced(p.shape, k, cok, y, np.isfinite(y), plane_offsets(cok.shape))


def fit_source(projection: np.ndarray, dem, family: str, starts: list[np.ndarray]) -> SourceFit:
    """The ``family``'s source best fitting ``projection (H, W)`` mm (NaN = not valid; median
    and elevation fit removed) by differences (:func:`differenced`), from the best
    :data:`N_STARTS` of ``starts``."""
    d = differenced(projection, dem)
    use = d.use
    units, n_slip = FAMILIES[family]
    los = los_vectors()

    def misfit(q: np.ndarray) -> tuple:
        columns = np.stack([d.of(u) for u in units(d.cok.shape, d.k, q)], axis=1)
        return _solve(columns[use], d.offsets[use], d.y[use], n_slip, los)

    ranked = sorted(starts, key=lambda q: misfit(q)[0])[:N_STARTS]
    best = (np.inf, ranked[0])
    for q in ranked:
        found = optimize.minimize(
            lambda v: misfit(v)[0],
            q,
            method="Nelder-Mead",
            options={"maxfev": MAX_EVALS, "xatol": 0.05, "fatol": 1e-3},
        )
        if found.fun < best[0]:
            best = (float(found.fun), found.x)
    rss, strengths, vector = misfit(best[1])
    full = units(d.shape, 1, best[1])
    cumulative = sum(
        strengths[s] * np.tensordot(vector, full[3 * s : 3 * s + 3], axes=1) for s in range(n_slip)
    )
    return SourceFit(family, best[1], strengths, vector, float(rss), cumulative)


def seed_positions(values: np.ndarray, area: np.ndarray, ok: np.ndarray) -> list:
    """Where to start the fits: the largest value of the smoothed map in ``area`` and the
    area's centroid, ``(row, col)`` px."""
    centred = np.where(ok, values - np.median(values[ok]), 0.0)
    smooth = np.where(area, np.abs(ndimage.gaussian_filter(centred, SEED_SMOOTH_PX)), -1.0)
    peak = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    centre = np.argwhere(area).mean(axis=0)
    return [(float(peak[0]), float(peak[1])), (float(centre[0]), float(centre[1]))]


def best_source(values: np.ndarray, area: np.ndarray, ok: np.ndarray, dem) -> SourceFit:
    """The family's source, of the three, that fits ``values (H, W)`` mm best (on ``ok``),
    started at ``area``."""
    positions = seed_positions(values, area, ok)
    mapped = np.where(ok, values, np.nan)
    fits = [fit_source(mapped, dem, f, seeds(f, positions)) for f in FAMILIES]
    return min(fits, key=lambda f: f.rss)


def source_extent(
    values: np.ndarray, area: np.ndarray, ok: np.ndarray, dem, max_share: float
) -> tuple[np.ndarray, dict]:
    """``area`` grown by the pixels of ``ok`` where the best-fitting source
    (:func:`best_source`) exceeds :data:`EXTENT_SHARE` of its largest value, in the connected
    parts that touch ``area``; ``area`` itself where that would cover more than
    ``max_share`` of ``ok`` or add more than :data:`MAX_GROWTH` times its pixels. Returns the
    areas and a note (family, pixels added, why skipped)."""
    fit = best_source(values, area, ok, dem)
    size = np.abs(fit.cumulative)
    reach = (size >= EXTENT_SHARE * float(size[ok].max())) & ok
    labels, _ = ndimage.label(reach)
    touching = np.unique(labels[area & reach])
    grown = area | np.isin(labels, touching[touching > 0])
    added = int((grown & ~area).sum())
    note = {"family": fit.family, "pixels_added": added}
    if grown.sum() > max_share * ok.sum():
        return area, {**note, "pixels_added": 0, "skipped": "over the fill's cap"}
    if added > MAX_GROWTH * area.sum():
        return area, {**note, "pixels_added": 0, "skipped": f"over {MAX_GROWTH:g}x the areas"}
    return grown, note
