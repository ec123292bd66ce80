"""Interferogram networks: reading unwrapped interferograms into a canonical Dataset.

Recognised inputs and how their dates are found: :mod:`insar_denoise.io.pairs`.

Units and sign: unwrapped phase (radians; the default when nothing says otherwise) becomes
LOS displacement with ``d_mm = -phase * wavelength_mm / (4 pi)`` (MintPy's convention:
positive = towards the satellite). The wavelength comes from ``wavelength_mm``, else the
``WAVELENGTH_METRES`` tag, else Sentinel-1 (55.465763 mm). In radians files the declared
nodata and exact zeros are no data (NaN), as in PyRate and LiCSBAS.

Inversion: :mod:`insar_denoise.io.sbas`.
"""

from __future__ import annotations

import logging
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
from insar_denoise.io.pairs import (
    expand_paths,
    is_interferogram_stack,
    pair_of_file,
    parse_pair_name,
)
from insar_denoise.io.sbas import (
    coherence_weights,
    design_matrix,
    invert_network,
    network_components,
)
from insar_denoise.io.stack import canonical_dataset
from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM, normalize_units, scale_to_mm

log = logging.getLogger(__name__)


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
    days, pairs = _connected_dates(read["pairs"], data, files[0])
    weights = None
    if coherence is not None:
        weights = _coherence_weights(coherence, pairs_pattern, files, read["pairs"], data)
    log.info("inverting %d interferograms into %d dates", len(pairs), len(days))
    series = invert_network(data, pairs, len(days), weights).astype(np.float32)
    coords = grid_coords(meta.transform, meta.height, meta.width)
    coords["time"] = np.array(days, dtype="datetime64[ns]")
    disp = xr.DataArray(series, dims=("time", "y", "x"), coords=coords).rio.write_crs(meta.crs)
    disp = disp.rio.write_transform(meta.transform)
    # solved on at least one date; how many dates a pixel needs is the engine's choice
    valid = xr.DataArray(np.isfinite(series).any(axis=0), dims=("y", "x"))
    ds = canonical_dataset(
        disp,
        unit="mm",
        unit_from="file" if units is None else "override",
        wavelength_mm=wave_mm,
        source_files=files + ([] if coherence is None else expand_paths(coherence)),
        label=files[0],
        valid=valid,
        dem=None if dem is None else _dem_on_grid(dem, disp),
    )
    ds.attrs.update(input_units=unit, wavelength_mm=wave_mm, n_interferograms=len(pairs))
    return ds


def _connected_dates(
    file_pairs: list[tuple[datetime, datetime]], data: np.ndarray, label: str
) -> tuple[list[datetime], list[tuple[int, int]]]:
    """The sorted dates and each file's pair as date indices; ``InputError`` when the pairs
    holding data split the dates into several groups."""
    days = sorted({d for pair in file_pairs for d in pair})
    index = {d: k for k, d in enumerate(days)}
    pairs = [(index[r], index[s]) for r, s in file_pairs]
    used = [p for p, band in zip(pairs, data, strict=True) if np.isfinite(band).any()]
    groups = network_components(used, len(days))
    if len(groups) > 1:
        named = " | ".join(",".join(f"{days[k]:%Y-%m-%d}" for k in g) for g in groups)
        raise InputError(
            f"{label}: interferogram network is disconnected into {len(groups)} groups of "
            f"dates ({named}); add pairs linking them or process each group alone"
        )
    return days, pairs


def _coherence_weights(
    coherence: str | Path | Sequence[str | Path],
    pairs_pattern: str | None,
    files: list[str],
    file_pairs: list[tuple[datetime, datetime]],
    data: np.ndarray,
) -> np.ndarray:
    """Inversion weights from the coherence rasters of the same pairs, in ``files`` order."""
    coh = _read_pairs(expand_paths(coherence), pairs_pattern, "coherence")
    by_pair = dict(zip(coh["pairs"], coh["data"], strict=True))
    missing = [f for f, p in zip(files, file_pairs, strict=True) if p not in by_pair]
    if missing or coh["data"].shape[1:] != data.shape[1:]:
        raise InputError(f"{missing[0] if missing else coherence}: no coherence on its grid")
    return coherence_weights(np.stack([by_pair[p] for p in file_pairs]))


def _dem_on_grid(dem: str | Path | xr.DataArray, disp: xr.DataArray) -> xr.DataArray:
    """The DEM (m, float32) on the grid of ``disp`` (a file is resampled onto it)."""
    grid = np.asarray(dem if isinstance(dem, xr.DataArray) else open_dem(dem, disp))
    if grid.shape != disp.shape[1:]:
        raise DemError(f"dem: shape {grid.shape} differs from the grid {disp.shape[1:]}")
    return xr.DataArray(grid.astype(np.float32), dims=("y", "x"))


__all__ = [
    "coherence_weights",
    "design_matrix",
    "invert_network",
    "is_interferogram_stack",
    "network_components",
    "open_interferograms",
    "parse_pair_name",
]
