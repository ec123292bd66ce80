"""Interferogram networks: pair names, reading unwrapped stacks and SBAS inversion.

Recognised inputs (one single-band raster per interferogram, all on one grid):

- HyP3 GeoTIFF products such as
  ``S1AA_20200101T000000_20200113T000000_VVP012_INT80_G_ueF_XXXX_unw_phase.tif``
  (reference and secondary acquisition times in the name, radians);
- GeoTIFFs whose tags carry ``FIRST_DATE`` / ``SECOND_DATE`` (and ``WAVELENGTH_METRES``,
  ``DATA_UNITS``), as PyRate writes them;
- names holding a ``YYYYMMDD-YYYYMMDD`` (or ``_``) pair, or a two-digit-year
  ``YYMMDD-YYMMDD`` pair (years 70–99 → 19xx, else 20xx);
- any name, with ``pairs_pattern`` such as ``'{ref}_{sec}'`` (``YYYYMMDD``, ``YYYYMMDDTHHMMSS``
  or ``YYYY-MM-DD`` in place of each field, searched anywhere in the file name).

Acquisition times are truncated to the day (one acquisition per day and track).

Units and sign: unwrapped phase (radians; the default when nothing says otherwise) becomes
LOS displacement with ``d_mm = -phase * wavelength_mm / (4 pi)`` (MintPy's convention:
positive = towards the satellite). The wavelength comes from ``wavelength_mm``, else the
``WAVELENGTH_METRES`` tag, else Sentinel-1 (55.465763 mm). In radians files the declared
nodata and exact zeros are no data (NaN), as in PyRate and LiCSBAS.

Inversion (Berardino et al. 2002, SBAS; Schmidt & Bürgmann 2003): for each pixel the
interferogram of pair (i, j) is ``d[j] - d[i]``, with ``d[0] = 0`` at the first date, solved
by (weighted) least squares over the pairs valid at that pixel. Pixels are grouped by their
pattern of valid pairs and each group is solved with one factorisation. Dates that a pixel's
valid pairs do not connect to the first date are NaN at that pixel (no temporal smoothing
bridges gaps). A network whose dates split into several groups altogether is an
``InputError`` naming the groups.
"""

from __future__ import annotations

import glob
import logging
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine

from insar_denoise.errors import DateError, DemError, InputError, UnitsError
from insar_denoise.io.dem import open_dem
from insar_denoise.io.geotiff import check_same_grid, probe
from insar_denoise.io.stack import canonical_dataset
from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM, normalize_units, scale_to_mm

log = logging.getLogger(__name__)

_DATE = r"(\d{8}(?:T\d{6})?|\d{4}-\d{2}-\d{2})"
_HYP3 = re.compile(r"S1[ABCD_]{2}_(\d{8})T\d{6}_(\d{8})T\d{6}_")
_FULL_PAIR = re.compile(r"(?<!\d)(\d{8})(?:T\d{6})?[-_](\d{8})(?:T\d{6})?(?!\d)")
_SHORT_PAIR = re.compile(r"(?<!\d)(\d{6})-(\d{6})(?!\d)")
_PIXEL_BLOCK = 16384
"""Pixels solved at once in the weighted inversion (memory ~ block * pairs * dates * 8 B)."""


def _day(text: str) -> datetime | None:
    """``YYYYMMDD[T...]``, ``YYYY-MM-DD`` or ``YYMMDD`` text as a date, None when invalid."""
    digits = text.replace("-", "")[:8]
    if len(digits) == 6:
        year = int(digits[:2])
        digits = f"{1900 + year if year >= 70 else 2000 + year}{digits[2:]}"
    try:
        return datetime.strptime(digits, "%Y%m%d")
    except ValueError:
        return None


def _valid_pair(first: str, second: str) -> tuple[datetime, datetime] | None:
    ref, sec = _day(first), _day(second)
    return None if ref is None or sec is None else (ref, sec)


def parse_pair_name(
    name: str | Path, pairs_pattern: str | None = None
) -> tuple[datetime, datetime] | None:
    """The (reference, secondary) dates written in an interferogram's file name.

    Parameters
    ----------
    name : str or Path
        File name (the folder part is ignored).
    pairs_pattern : str, optional
        Template with ``{ref}`` and ``{sec}`` fields, e.g. ``'{ref}_{sec}'``; the other
        characters are literal. Without it HyP3, ``YYYYMMDD-YYYYMMDD`` and ``YYMMDD-YYMMDD``
        names are tried in that order.

    Returns
    -------
    tuple of datetime or None
        None when the name holds no pair.
    """
    stem = Path(name).name
    if pairs_pattern is not None:
        if "{ref}" not in pairs_pattern or "{sec}" not in pairs_pattern:
            raise InputError(f"pairs_pattern {pairs_pattern!r}: needs {{ref}} and {{sec}} fields")
        regex = re.escape(pairs_pattern).replace(r"\{ref\}", "{ref}").replace(r"\{sec\}", "{sec}")
        regex = regex.replace("{ref}", f"(?P<ref>{_DATE})").replace("{sec}", f"(?P<sec>{_DATE})")
        match = re.search(regex, stem)
        return None if match is None else _valid_pair(match["ref"], match["sec"])
    for pattern in (_HYP3, _FULL_PAIR, _SHORT_PAIR):
        match = pattern.search(stem)
        if match is not None and (pair := _valid_pair(*match.groups())) is not None:
            return pair
    return None


def _tag_pair(tags: dict[str, str]) -> tuple[datetime, datetime] | None:
    """The pair in PyRate-style ``FIRST_DATE`` / ``SECOND_DATE`` tags, or None."""
    if "FIRST_DATE" not in tags or "SECOND_DATE" not in tags:
        return None
    return _valid_pair(tags["FIRST_DATE"], tags["SECOND_DATE"])


def expand_paths(paths_or_glob: str | Path | Sequence[str | Path]) -> list[str]:
    """Files named by a path, a glob pattern, or a list of either, sorted within each glob."""
    items = [paths_or_glob] if isinstance(paths_or_glob, (str, Path)) else list(paths_or_glob)
    out: list[str] = []
    for item in items:
        text = str(item)
        out.extend(sorted(glob.glob(text)) if glob.has_magic(text) else [text])
    if not out:
        raise InputError(f"{paths_or_glob}: no interferogram files match")
    return out


def pair_of_file(path: str, pairs_pattern: str | None = None) -> tuple[datetime, datetime]:
    """The pair of one file: ``pairs_pattern``, else the tags, else the name conventions.

    Raises
    ------
    DateError
        When no pair is found, or the reference date is not before the secondary date.
    """
    pair = parse_pair_name(path, pairs_pattern)
    if pair is None and pairs_pattern is None:
        pair = _tag_pair(probe(path).tags)
    if pair is None:
        raise DateError(
            f"{path}: no date pair in the name (YYYYMMDD-YYYYMMDD, YYMMDD-YYMMDD, HyP3) or in "
            "FIRST_DATE/SECOND_DATE tags; pass pairs_pattern='{ref}_{sec}'"
        )
    if pair[0] >= pair[1]:
        raise DateError(
            f"{path}: reference date {pair[0]:%Y-%m-%d} is not before {pair[1]:%Y-%m-%d}"
        )
    return pair


def is_interferogram_stack(paths: str | Path | Sequence[str | Path]) -> bool:
    """True when every file names (or tags) a date pair, i.e. is an interferogram.

    Parameters
    ----------
    paths : str, Path or sequence
        Files or glob patterns, as given to ``open_interferograms``.
    """
    try:
        files = expand_paths(paths)
        return all(Path(f).is_file() for f in files) and all(pair_of_file(f) for f in files)
    except InputError:
        return False


def network_components(pairs: Sequence[tuple[int, int]], n_dates: int) -> list[list[int]]:
    """Groups of date indices connected by the pairs (graph components), sorted.

    Parameters
    ----------
    pairs : sequence of (int, int)
        Date indices of each interferogram.
    n_dates : int
        Number of dates; a date in no pair is a group of its own.
    """
    parent = list(range(n_dates))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in pairs:
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for k in range(n_dates):
        groups.setdefault(root(k), []).append(k)
    return sorted(groups.values())


def design_matrix(pairs: Sequence[tuple[int, int]], n_dates: int) -> np.ndarray:
    """SBAS design matrix (P, n_dates): +1 at the secondary, -1 at the reference date."""
    matrix = np.zeros((len(pairs), n_dates))
    for row, (i, j) in enumerate(pairs):
        matrix[row, j] += 1.0
        matrix[row, i] -= 1.0
    return matrix


def _solve_group(a: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Least-squares solution (npix, n) of ``a x = y`` for y (npix, P), weights w (npix, P)."""
    if w is None:
        return np.linalg.lstsq(a, y.T, rcond=None)[0].T
    out = np.empty((y.shape[0], a.shape[1]))
    for start in range(0, y.shape[0], _PIXEL_BLOCK):
        sw = np.sqrt(w[start : start + _PIXEL_BLOCK])
        aw = sw[:, :, None] * a[None]
        out[start : start + _PIXEL_BLOCK] = np.einsum(
            "nkp,np->nk", np.linalg.pinv(aw), sw * y[start : start + _PIXEL_BLOCK]
        )
    return out


def invert_network(
    ifgs: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    n_dates: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel SBAS least-squares inversion of interferograms into a time series.

    Parameters
    ----------
    ifgs : ndarray (P, H, W)
        Interferograms, any displacement unit (the output has the same unit); NaN = no data.
        Pair ``(i, j)`` measures ``d[j] - d[i]``.
    pairs : sequence of (int, int)
        Reference and secondary date index of each interferogram.
    n_dates : int
        Number of dates T.
    weights : ndarray (P, H, W), optional
        Non-negative weights (inverse variances); 0 or NaN drops a pair at a pixel.

    Returns
    -------
    ndarray (T, H, W)
        float64 displacement relative to date 0 (0 there); NaN where a date is not
        connected to date 0 by the pixel's valid pairs.
    """
    ifgs = np.asarray(ifgs)
    n_pairs, height, width = ifgs.shape
    if len(pairs) != n_pairs:
        raise InputError(f"invert_network: {len(pairs)} pairs for {n_pairs} interferograms")
    flat = ifgs.reshape(n_pairs, -1).T.astype(np.float64)
    valid = np.isfinite(flat)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).reshape(n_pairs, -1).T
        valid &= np.isfinite(w) & (w > 0)
    a_full = design_matrix(pairs, n_dates)
    out = np.full((flat.shape[0], n_dates), np.nan)
    patterns, inverse = np.unique(valid, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inverse.ravel()))[:-1])
    for pattern, pixels in zip(patterns, groups, strict=True):
        used = [p for p, ok in zip(pairs, pattern, strict=True) if ok]
        reached = next(g for g in network_components(used, n_dates) if 0 in g)
        if len(reached) == 1:
            continue
        rows = np.flatnonzero(pattern)
        rows = rows[[pairs[r][0] in reached for r in rows]]
        a = a_full[np.ix_(rows, reached[1:])]
        y = flat[np.ix_(pixels, rows)]
        out[np.ix_(pixels, reached[1:])] = _solve_group(
            a, y, None if w is None else w[np.ix_(pixels, rows)]
        )
        out[pixels, 0] = 0.0
    return out.T.reshape(n_dates, height, width)


def coherence_weights(coherence: np.ndarray) -> np.ndarray:
    """Inverse phase variance ``2 c^2 / (1 - c^2)`` from coherence clipped to [0.01, 0.99].

    (Hanssen 2001, eq. 4.2.24, the single-look Cramér-Rao bound, as LiCSBAS' WLS uses it.)
    NaN coherence stays NaN (the pair is dropped at that pixel).
    """
    c = np.clip(np.asarray(coherence, dtype=np.float64), 0.01, 0.99)
    return 2.0 * c**2 / (1.0 - c**2)


def grid_coords(transform: Affine, height: int, width: int) -> dict[str, np.ndarray]:
    """Pixel-centre ``y`` and ``x`` coordinates of a north-up grid."""
    return {
        "y": transform.f + (np.arange(height) + 0.5) * transform.e,
        "x": transform.c + (np.arange(width) + 0.5) * transform.a,
    }


def _read_pairs(files: list[str], pairs_pattern: str | None, what: str) -> dict:
    """Pixels (NaN for nodata), tags and pair of each file, all on one grid."""
    metas = [probe(f) for f in files]
    for meta in metas:
        if meta.count != 1:
            raise InputError(f"{meta.path}: has {meta.count} bands; one {what} per file")
        check_same_grid(meta, metas[0])
    pairs = [pair_of_file(f, pairs_pattern) for f in files]
    seen: dict[tuple[datetime, datetime], str] = {}
    for pair, path in zip(pairs, files, strict=True):
        if pair in seen:
            raise DateError(
                f"{path}: pair {pair[0]:%Y-%m-%d}/{pair[1]:%Y-%m-%d} also in {seen[pair]}"
            )
        seen[pair] = path
    data = []
    for f in files:
        with rasterio.open(f) as src:
            band = src.read(1, masked=True).astype(np.float64)
            data.append(band.filled(np.nan))
    return {"metas": metas, "pairs": pairs, "data": np.stack(data)}


def _units_and_wavelength(metas: list, units: str | None, wavelength_mm: float | None):
    """The common unit of the files (radians by default) and the wavelength (mm)."""
    stated = set()
    for meta in metas:
        unit = meta.tags.get("DATA_UNITS") or meta.units[0]
        if unit is None and meta.path.endswith("_unw_phase.tif"):
            unit = "rad"
        stated.add(None if unit is None else str(unit).lower())
    if units is None:
        stated.discard(None)
        if len(stated) > 1:
            raise UnitsError(f"{metas[0].path}: interferograms disagree on units {sorted(stated)}")
        units = stated.pop() if stated else "rad"
    if wavelength_mm is None:
        tagged = {m.tags.get("WAVELENGTH_METRES") for m in metas} - {None}
        if len(tagged) > 1:
            raise UnitsError(f"{metas[0].path}: interferograms disagree on WAVELENGTH_METRES")
        wavelength_mm = 1000.0 * float(tagged.pop()) if tagged else SENTINEL1_WAVELENGTH_MM
    return units, float(wavelength_mm)


def open_interferograms(
    paths_or_glob: str | Path | Sequence[str | Path],
    *,
    dem: str | Path | xr.DataArray | None = None,
    pairs_pattern: str | None = None,
    units: str | None = None,
    wavelength_mm: float | None = None,
    coherence: str | Path | Sequence[str | Path] | None = None,
) -> xr.Dataset:
    """Read unwrapped interferograms and invert them into a canonical displacement Dataset.

    Parameters
    ----------
    paths_or_glob : str, Path or sequence
        Single-band rasters (or glob patterns), one interferogram each, on one grid.
    dem : str, Path or DataArray, optional
        Elevation (m); a file is resampled onto the grid when its grid differs.
    pairs_pattern : str, optional
        Name template such as ``'{ref}_{sec}'`` (see ``parse_pair_name``).
    units : str, optional
        Units of the files (``rad``, ``mm``, ``cm``, ``m``); default from ``DATA_UNITS`` tags
        or band units, else radians.
    wavelength_mm : float, optional
        Radar wavelength (mm); default the ``WAVELENGTH_METRES`` tag, else Sentinel-1.
    coherence : str, Path or sequence, optional
        Coherence rasters (0–1) for the same pairs (matched by their dates); they weight the
        inversion by ``coherence_weights``.

    Returns
    -------
    xarray.Dataset
        ``displacement (time, y, x)`` float32 mm LOS relative to the first date (positive
        towards the satellite), ``valid (y, x)`` (solved on some date), ``dem (y, x)`` when
        given; CRS and transform of the files.

    Raises
    ------
    InputError
        Unreadable files, grids that differ, a disconnected network (the groups of dates are
        named), or coherence files that do not match the pairs.
    """
    files = expand_paths(paths_or_glob)
    read = _read_pairs(files, pairs_pattern, "interferogram")
    meta = read["metas"][0]
    if meta.crs is None:
        raise InputError(f"{files[0]}: interferograms have no CRS; geocode them first")
    unit, wave_mm = _units_and_wavelength(read["metas"], units, wavelength_mm)
    unit = normalize_units(unit, files[0])
    data = read["data"]
    if unit == "rad":
        data[data == 0] = np.nan
    data *= scale_to_mm(unit, wave_mm)
    days = sorted({d for pair in read["pairs"] for d in pair})
    index = {d: k for k, d in enumerate(days)}
    pairs = [(index[r], index[s]) for r, s in read["pairs"]]
    used = [p for p, band in zip(pairs, data, strict=True) if np.isfinite(band).any()]
    groups = network_components(used, len(days))
    if len(groups) > 1:
        named = " | ".join(",".join(f"{days[k]:%Y-%m-%d}" for k in g) for g in groups)
        raise InputError(
            f"{files[0]}: interferogram network is disconnected into {len(groups)} groups of "
            f"dates ({named}); add pairs linking them or process each group alone"
        )
    weights = None
    if coherence is not None:
        coh = _read_pairs(expand_paths(coherence), pairs_pattern, "coherence")
        by_pair = dict(zip(coh["pairs"], coh["data"], strict=True))
        missing = [f for f, p in zip(files, read["pairs"], strict=True) if p not in by_pair]
        if missing or coh["data"].shape[1:] != data.shape[1:]:
            raise InputError(f"{missing[0] if missing else coherence}: no coherence on its grid")
        weights = coherence_weights(np.stack([by_pair[p] for p in read["pairs"]]))
    log.info("inverting %d interferograms into %d dates", len(pairs), len(days))
    series = invert_network(data, pairs, len(days), weights).astype(np.float32)
    coords = grid_coords(meta.transform, meta.height, meta.width)
    coords["time"] = np.array(days, dtype="datetime64[ns]")
    disp = xr.DataArray(series, dims=("time", "y", "x"), coords=coords).rio.write_crs(meta.crs)
    disp = disp.rio.write_transform(meta.transform)
    # solved on at least one date; how many dates a pixel needs is the engine's choice
    valid = xr.DataArray(np.isfinite(series).any(axis=0), dims=("y", "x"))
    grid = None
    if dem is not None:
        grid = np.asarray(dem if isinstance(dem, xr.DataArray) else open_dem(dem, disp))
        if grid.shape != series.shape[1:]:
            raise DemError(f"dem: shape {grid.shape} differs from the grid {series.shape[1:]}")
        grid = xr.DataArray(grid.astype(np.float32), dims=("y", "x"))
    ds = canonical_dataset(
        disp,
        unit="mm",
        unit_from="file" if units is None else "override",
        wavelength_mm=wave_mm,
        source_files=files + ([] if coherence is None else expand_paths(coherence)),
        label=files[0],
        valid=valid,
        dem=grid,
    )
    ds.attrs.update(input_units=unit, wavelength_mm=wave_mm, n_interferograms=len(pairs))
    return ds


__all__ = [
    "coherence_weights",
    "design_matrix",
    "invert_network",
    "is_interferogram_stack",
    "network_components",
    "open_interferograms",
    "parse_pair_name",
]
