"""LiCSBAS time series: read ``cum*.h5`` (+ height) and write results back.

Layout (LiCSBAS ``bin/LiCSBAS13_sb_inv.py``, ``LiCSBAS16_filt_ts.py``, ``LiCSBAS_plot_ts.py``):

- ``/cum`` (T, H, W) float32 cumulative LOS displacement in **mm**, 0 at the first date,
  relative to the reference area ``/refarea`` (text ``'x1:x2/y1:y2'``, pixels);
- ``/imdates`` (T,) int32 ``YYYYMMDD``; ``/bperp`` (T,) m (absent when dummy);
- ``/vel`` (H, W) mm/yr and ``/vintercept`` (H, W) mm (linear fit), ``/gap`` (T-1, H, W);
- geocoded files: scalars ``/corner_lat``, ``/corner_lon`` (degrees) and ``/post_lat``
  (negative), ``/post_lon`` (degrees per pixel), WGS 84 (EPSG:4326);
- LiCSBAS16 adds scalars such as ``/filtwidth_km``, ``/filtwidth_yr``, ``/deramp_flag``.

Georeference: ``corner_lat``/``corner_lon`` come from GAMMA's ``EQA.dem_par`` and are the
**centre** of the upper-left pixel (grid registration): ``LiCSBAS_flt2geotiff.py`` shifts them
by half a post to get the GeoTIFF corner. So the transform is
``(post_lon, 0, corner_lon - post_lon/2, 0, post_lat, corner_lat - post_lat/2)``.

Height: the float32 little-endian binary ``hgt`` (H*W values, metres) of LiCSBAS, looked for
in ``results/hgt``, ``hgt``, the sibling ``GEOCml*/hgt`` of a ``TS_GEOCml*`` folder, or a
GeoTIFF ``hgt.tif`` / ``*.geo.hgt.tif`` (LiCSAR), resampled onto the grid when it differs.

Units and sign: LiCSBAS converts phase with ``-wavelength / (4 pi)`` so ``cum`` is positive
for LOS decrease (towards the satellite, uplift): the same as ours, read and written as is
(mm). Scalar datasets (``refarea``, filter widths, flags) are kept in the ``licsbas_metadata``
attribute (JSON) and written back; ``vel``/``vintercept`` are refitted to the written series.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import rasterio
import rasterio.errors
import xarray as xr
from affine import Affine

from insar_denoise.errors import DateError, DemError, InputError, OutputError
from insar_denoise.io.dem import open_dem
from insar_denoise.io.mintpy import series_to_write
from insar_denoise.io.network import grid_coords
from insar_denoise.io.stack import canonical_dataset
from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM
from insar_denoise.io.writers import atomic_output

_GEO_KEYS = ("corner_lat", "corner_lon", "post_lat", "post_lon")
_HEIGHT_NAMES = ("results/hgt", "hgt", "hgt.tif")


def is_licsbas_file(path: str | Path) -> bool:
    """True for an HDF5 file with LiCSBAS' ``cum`` and ``imdates`` datasets."""
    try:
        with h5py.File(path, "r") as f:
            return "cum" in f and "imdates" in f
    except (OSError, ValueError):
        return False


def _scalar(value):
    """A 0-d HDF5 value as a JSON-ready Python scalar (bytes decoded)."""
    value = value.item() if isinstance(value, np.generic | np.ndarray) else value
    return value.decode("utf-8") if isinstance(value, bytes) else value


def licsbas_transform(meta: dict, path: str = "file") -> Affine:
    """Affine transform (EPSG:4326) from the pixel-centre ``corner_lat/lon`` and posts."""
    if not all(k in meta for k in _GEO_KEYS):
        raise InputError(f"{path}: in radar coordinates (no corner_lat/lon); geocode it first")
    lat, lon, dlat, dlon = (float(meta[k]) for k in _GEO_KEYS)
    return Affine(dlon, 0.0, lon - dlon / 2, 0.0, dlat, lat - dlat / 2)


def _height_candidates(folder: Path) -> list[Path]:
    found = [folder / name for name in _HEIGHT_NAMES]
    if folder.name.startswith("TS_"):
        found.append(folder.parent / folder.name[3:] / "hgt")
    found += sorted(folder.glob("*.geo.hgt.tif"))
    return [p for p in found if p.is_file()]


def _read_height(path: Path, like: xr.DataArray) -> np.ndarray:
    """Height (m, float32) from a raw LiCSBAS ``hgt`` file or a raster, on ``like``'s grid."""
    shape = like.shape[-2:]
    if not path.is_file():
        raise DemError(f"{path}: height file does not exist")
    if path.stat().st_size == 4 * shape[0] * shape[1] and path.suffix.lower() != ".tif":
        return np.fromfile(path, dtype="<f4").reshape(shape)
    try:
        with rasterio.open(path) as src:
            same = src.shape == shape and (src.crs is None or src.crs == like.rio.crs)
            if same:
                return src.read(1, masked=True).astype(np.float32).filled(np.nan)
    except rasterio.errors.RasterioError:
        raise DemError(
            f"{path}: neither a {shape[0]}x{shape[1]} float32 hgt file nor a raster"
        ) from None
    return open_dem(path, like).values


def open_licsbas(cum_h5: str | Path, *, height: str | Path | None = None) -> xr.Dataset:
    """Read a LiCSBAS ``cum*.h5`` as the canonical Dataset.

    Parameters
    ----------
    cum_h5 : str or Path
        ``cum.h5`` or ``cum_filt.h5`` in geographic coordinates.
    height : str or Path, optional
        Height file (raw float32 ``hgt`` or a raster, metres); by default the LiCSBAS
        locations next to the file are tried (see the module docstring).

    Returns
    -------
    xarray.Dataset
        ``displacement (time, y, x)`` float32 mm relative to the first date, positive towards
        the satellite; ``dem (y, x)`` when a height file is found; EPSG:4326; attrs
        ``licsbas_metadata`` (JSON of the scalar datasets).
    """
    path = Path(cum_h5)
    if not is_licsbas_file(path):
        raise InputError(f"{path}: not a LiCSBAS cum HDF5 file (cum + imdates)")
    with h5py.File(path, "r") as f:
        cum = f["cum"][()].astype(np.float32)
        imdates = [str(int(d)) for d in f["imdates"][()]]
        meta = {k: _scalar(f[k][()]) for k in f if f[k].ndim == 0}
        bperp = f["bperp"][()].astype(np.float32) if "bperp" in f else None
    try:
        times = [datetime.strptime(d, "%Y%m%d") for d in imdates]
    except ValueError:
        raise DateError(f"{path}: imdates {imdates[:3]}... are not YYYYMMDD integers") from None
    if cum.ndim != 3 or cum.shape[0] != len(times):
        raise InputError(f"{path}: cum shape {cum.shape} does not match {len(times)} imdates")
    transform = licsbas_transform(meta, str(path))
    coords = grid_coords(transform, *cum.shape[1:])
    coords["time"] = np.array(times, dtype="datetime64[ns]")
    disp = xr.DataArray(cum - cum[0], dims=("time", "y", "x"), coords=coords)
    disp = disp.rio.write_crs("EPSG:4326").rio.write_transform(transform)
    found = [Path(height)] if height is not None else _height_candidates(path.parent)
    dem = None
    if found:
        dem = xr.DataArray(_read_height(found[0], disp[0]), dims=("y", "x"))
    ds = canonical_dataset(
        disp,
        unit="mm",
        unit_from="file",
        wavelength_mm=SENTINEL1_WAVELENGTH_MM,
        source_files=[str(path)] + [str(p) for p in found[:1]],
        label=str(path),
        dem=dem,
    )
    if bperp is not None and bperp.shape == (len(times),):
        ds = ds.assign_coords(bperp=("time", bperp))
        ds["bperp"].attrs["units"] = "m"
    ds.attrs.update(input_units="mm", licsbas_metadata=json.dumps(meta))
    return ds


def linear_rate(series_mm: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NaN-aware per-pixel least-squares line ``v t + c`` (LiCSBAS ``vel``, ``vintercept``).

    Parameters
    ----------
    series_mm : ndarray (T, H, W)
        Displacement (mm).
    times : ndarray (T,) datetime64
        Dates; ``t`` is in years of 365.25 days since the first date.

    Returns
    -------
    (vel, vintercept) : ndarrays (H, W), float32
        mm/yr and mm; NaN where fewer than two dates are finite.
    """
    t_years = (times - times[0]) / np.timedelta64(1, "D") / 365.25
    ok = np.isfinite(series_mm)
    t = np.where(ok, t_years[:, None, None], 0.0)
    y = np.where(ok, series_mm, 0.0)
    n = ok.sum(axis=0)
    st, sy, stt, sty = t.sum(0), y.sum(0), (t * t).sum(0), (t * y).sum(0)
    det = n * stt - st**2
    with np.errstate(invalid="ignore", divide="ignore"):
        vel = np.where((n >= 2) & (det > 0), (n * sty - st * sy) / det, np.nan)
        intercept = np.where(np.isfinite(vel), (sy - vel * st) / n, np.nan)
    return vel.astype(np.float32), intercept.astype(np.float32)


def write_licsbas(
    ds_or_da: xr.Dataset | xr.DataArray,
    path: str | Path,
    *,
    template: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a (time, y, x) mm series as a LiCSBAS ``cum`` HDF5 file, atomically.

    Parameters
    ----------
    ds_or_da : xarray.Dataset or xarray.DataArray
        Canonical Dataset (its ``displacement``, or only data variable) or a DataArray, mm
        LOS positive towards the satellite, on an EPSG:4326 north-up grid.
    path : str or Path
        Output, e.g. ``cum_denoised.h5``.
    template : dict, optional
        Scalar datasets to write as well (default: the input's ``licsbas_metadata``, e.g.
        ``refarea``); the grid scalars always come from the array's transform.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file: ``cum`` (mm, 0 at the first date), ``imdates``, ``vel``, ``vintercept``,
        ``corner_lat``/``corner_lon``/``post_lat``/``post_lon``, ``bperp`` when known.
    """
    da = series_to_write(ds_or_da, str(path))
    if da.rio.crs is None or da.rio.crs.to_epsg() != 4326:
        raise OutputError(f"{path}: LiCSBAS files are in EPSG:4326; reproject first")
    if template is None:
        stored = da.attrs.get("licsbas_metadata") or ds_or_da.attrs.get("licsbas_metadata")
        template = json.loads(stored) if stored else {}
    t = da.rio.transform()
    scalars = {k: v for k, v in template.items() if k not in _GEO_KEYS}
    scalars.update(corner_lat=t.f + t.e / 2, corner_lon=t.c + t.a / 2, post_lat=t.e, post_lon=t.a)
    cum = np.asarray(da.values, dtype=np.float32)
    cum = cum - cum[0]
    times = da["time"].values.astype("datetime64[D]")
    vel, intercept = linear_rate(cum, times)
    imdates = np.array([int(str(d).replace("-", "")) for d in times], dtype=np.int32)
    with atomic_output(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("cum", data=cum, chunks=True)
        f.create_dataset("imdates", data=imdates)
        f.create_dataset("vel", data=vel)
        f.create_dataset("vintercept", data=intercept)
        if "bperp" in da.coords:
            f.create_dataset("bperp", data=np.asarray(da["bperp"].values, dtype=np.float32))
        for key, value in scalars.items():
            f.create_dataset(key, data=value)
    return Path(path)


__all__ = ["is_licsbas_file", "linear_rate", "open_licsbas", "write_licsbas"]
