"""Lazy GeoTIFF readers: one single-band file per date, or one multi-band file.

Every file is opened once with rasterio at the door to check that it is a raster, that
its grid (CRS, shape, transform) matches the first file, and to find its date and unit;
the pixels are then read lazily (dask) through ``rioxarray.open_rasterio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import rasterio
import rasterio.errors
import rasterio.windows
import rioxarray
import xarray as xr
from affine import Affine

from insar_denoise.errors import DateError, GridMismatchError, InputError, UnitsError
from insar_denoise.io.dates import check_unique, date_from_file, parse_date_text, to_datetime64

_UNIT_TAGS = ("units", "UNITS", "unit", "UNIT")
_DATE_TAGS = ("date", "DATE", "time", "TIME", "datetime", "DATETIME", "acquisition_date")


def one_line(exc: BaseException) -> str:
    """An exception message squeezed onto one line."""
    return " ".join(str(exc).split())


@dataclass(frozen=True)
class RasterMeta:
    """What the readers need to know about one raster file (no pixels).

    Attributes
    ----------
    path : str
        The file.
    crs : rasterio.crs.CRS or None
        Its coordinate reference system.
    transform : affine.Affine
        Pixel-to-CRS transform (CRS units per pixel).
    height, width, count : int
        Rows, columns and bands.
    units : tuple of str or None
        Unit of each band (GDAL unit type, else a ``units`` band or file tag).
    tags : dict
        File-level tags (e.g. ``TIFFTAG_DATETIME``).
    band_dates : tuple of str or None
        Per band: its description, else a date-like band tag.
    """

    path: str
    crs: rasterio.crs.CRS | None
    transform: Affine
    height: int
    width: int
    count: int
    units: tuple[str | None, ...]
    tags: dict
    band_dates: tuple[str | None, ...]


def probe(path: str | Path) -> RasterMeta:
    """Open a raster's header and its last block; raise InputError when that fails.

    Parameters
    ----------
    path : str or Path
        Any GDAL-readable raster.
    """
    path = str(path)
    if not Path(path).exists():
        raise InputError(f"{path}: file does not exist")
    try:
        with rasterio.open(path) as src:
            file_tags = src.tags()
            units, band_dates = [], []
            for band in src.indexes:
                band_tags = src.tags(band)
                unit = src.units[band - 1] or next(
                    (band_tags[k] for k in _UNIT_TAGS if band_tags.get(k)), None
                )
                unit = unit or next((file_tags[k] for k in _UNIT_TAGS if file_tags.get(k)), None)
                units.append(unit)
                described = src.descriptions[band - 1]
                band_dates.append(
                    described or next((band_tags[k] for k in _DATE_TAGS if band_tags.get(k)), None)
                )
            if src.count == 0:
                raise InputError(f"{path}: holds no raster band (a container of sub-datasets?)")
            rows, cols = src.block_shapes[0]
            last = rasterio.windows.Window(
                (src.width - 1) // cols * cols,
                (src.height - 1) // rows * rows,
                min(cols, src.width - (src.width - 1) // cols * cols),
                min(rows, src.height - (src.height - 1) // rows * rows),
            )
            src.read(src.count, window=last)
            return RasterMeta(
                path=path,
                crs=src.crs,
                transform=src.transform,
                height=src.height,
                width=src.width,
                count=src.count,
                units=tuple(units),
                tags=file_tags,
                band_dates=tuple(band_dates),
            )
    except rasterio.errors.RasterioError as exc:
        raise InputError(f"{path}: not a readable raster ({one_line(exc)})") from None


def check_same_grid(meta: RasterMeta, ref: RasterMeta) -> None:
    """Raise GridMismatchError when ``meta``'s CRS, shape or transform differ from ``ref``."""
    if meta.crs != ref.crs:
        raise GridMismatchError(
            f"{meta.path}: CRS {meta.crs} differs from {ref.crs} of {ref.path}; "
            "reproject all dates to one grid"
        )
    if (meta.height, meta.width) != (ref.height, ref.width):
        raise GridMismatchError(
            f"{meta.path}: shape {meta.height}x{meta.width} differs from "
            f"{ref.height}x{ref.width} of {ref.path}"
        )
    tolerance = 1e-6 * max(abs(ref.transform.a), abs(ref.transform.e))
    if not meta.transform.almost_equals(ref.transform, precision=tolerance):
        raise GridMismatchError(
            f"{meta.path}: transform {tuple(meta.transform)[:6]} differs from "
            f"{tuple(ref.transform)[:6]} of {ref.path}"
        )


def common_unit(units: list[str | None], sources: list[str]) -> str | None:
    """The one unit stated by the inputs that state one (None when none does).

    Raises
    ------
    UnitsError
        When two inputs state different units.
    """
    stated = {u.strip().lower(): s for u, s in zip(units, sources, strict=True) if u}
    if len(stated) > 1:
        pairs = ", ".join(f"{s}: {u}" for u, s in stated.items())
        raise UnitsError(f"{sources[0]}: inputs disagree on units ({pairs}); pass units=")
    return next(iter(stated), None)


def _lazy_band_stack(path: str, chunks: dict[str, int]) -> xr.DataArray:
    """All bands of ``path`` as a dask-backed (band, y, x) array, nodata as NaN."""
    da = rioxarray.open_rasterio(
        path,
        chunks={"band": 1, "y": chunks["y"], "x": chunks["x"]},
        mask_and_scale=True,
    )
    return da.drop_vars("band").rename(band="time")


def read_single_band_files(
    paths: list[str], chunks: dict[str, int]
) -> tuple[xr.DataArray, list[str | None], list[str]]:
    """A (time, y, x) stack from single-band files, one per date, sorted by date.

    Parameters
    ----------
    paths : list of str
        The files; the date comes from each name or its ``TIFFTAG_DATETIME``.
    chunks : dict
        Dask chunk sizes (pixels) for ``y`` and ``x``.

    Returns
    -------
    (DataArray, unit stated by each file or None, file list), all sorted by date
    """
    metas = [probe(p) for p in paths]
    for meta in metas:
        if meta.count != 1:
            raise InputError(
                f"{meta.path}: has {meta.count} bands; a list of files needs single-band "
                "files (give a multi-band file on its own)"
            )
        check_same_grid(meta, metas[0])
    times = [date_from_file(m.path, m.tags) for m in metas]
    check_unique(times, [m.path for m in metas])
    order = sorted(range(len(metas)), key=times.__getitem__)
    metas = [metas[i] for i in order]
    times = [times[i] for i in order]
    arrays = [_lazy_band_stack(m.path, chunks) for m in metas]
    stack = xr.concat(arrays, dim="time", coords="minimal", compat="override", join="override")
    stack = stack.assign_coords(time=to_datetime64(times))
    return stack, [m.units[0] for m in metas], [m.path for m in metas]


def band_times(meta: RasterMeta) -> list[datetime]:
    """The date of each band of a multi-band file, from descriptions or band tags."""
    times = []
    for band, text in enumerate(meta.band_dates, start=1):
        when = parse_date_text(text)
        if when is None:
            raise DateError(
                f"{meta.path}: band {band} description/tag {text!r} is not a date; "
                "set band descriptions to YYYY-MM-DD"
            )
        times.append(when)
    check_unique(times, [f"{meta.path} band {b}" for b in range(1, meta.count + 1)])
    return times


def read_multiband_file(
    path: str, chunks: dict[str, int]
) -> tuple[xr.DataArray, list[str | None], list[str]]:
    """A (time, y, x) stack from one multi-band file whose bands are dates.

    Parameters
    ----------
    path : str
        The file; band descriptions (or a ``date`` band tag) hold the dates.
    chunks : dict
        Dask chunk sizes (pixels) for ``y`` and ``x``.
    """
    meta = probe(path)
    times = band_times(meta)
    stack = _lazy_band_stack(path, chunks).assign_coords(time=to_datetime64(times))
    sources = [f"{path} band {b}" for b in range(1, meta.count + 1)]
    return stack.sortby("time"), list(meta.units), sources
