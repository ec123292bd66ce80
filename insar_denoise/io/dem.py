"""Read a DEM in any GDAL format and CRS, and resample it onto the stack grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rioxarray
import xarray as xr
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from insar_denoise.errors import DemError, InputError
from insar_denoise.io.geotiff import probe


def _template(like: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """A 2-D array carrying the target grid (no pixels are read)."""
    da = like["displacement"] if isinstance(like, xr.Dataset) else like
    while da.ndim > 2:
        da = da.isel({da.dims[0]: 0})
    if da.rio.crs is None:
        raise DemError("stack: has no CRS, so a DEM cannot be placed on its grid")
    return da


def check_coverage(path: str, dem: xr.DataArray, target: xr.DataArray) -> None:
    """Raise DemError when the DEM's extent does not contain the stack's.

    Parameters
    ----------
    path : str
        The DEM file, for the message.
    dem : xarray.DataArray
        The DEM in its own CRS.
    target : xarray.DataArray
        A 2-D array on the stack grid.

    Notes
    -----
    The stack bounds are transformed into the DEM CRS (densified edges); one DEM pixel
    of slack is allowed on each side.
    """
    left, bottom, right, top = transform_bounds(
        target.rio.crs, dem.rio.crs, *target.rio.bounds(), densify_pts=21
    )
    d_left, d_bottom, d_right, d_top = dem.rio.bounds()
    res_x, res_y = (abs(r) for r in dem.rio.resolution())
    if (
        left < d_left - res_x
        or right > d_right + res_x
        or bottom < d_bottom - res_y
        or top > d_top + res_y
    ):
        raise DemError(
            f"{path}: DEM does not cover the stack (stack bounds in the DEM CRS "
            f"{left:.6g}, {bottom:.6g}, {right:.6g}, {top:.6g}; DEM bounds "
            f"{d_left:.6g}, {d_bottom:.6g}, {d_right:.6g}, {d_top:.6g})"
        )


def open_dem(path: str | Path, like: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """A DEM resampled (bilinear) onto the grid of ``like``.

    Parameters
    ----------
    path : str or Path
        Any single-band GDAL-readable raster with a CRS; elevations in metres.
    like : xarray.Dataset or xarray.DataArray
        The stack (or any array with a rioxarray CRS and grid) to match.

    Returns
    -------
    xarray.DataArray
        ``dem(y, x)`` float32 metres, in memory, on the stack grid; DEM nodata is NaN.

    Raises
    ------
    DemError
        Unreadable file, no CRS, several bands, or an extent that misses the stack.
    """
    path = str(path)
    try:
        meta = probe(path)
    except InputError as exc:
        raise DemError(str(exc)) from None
    if meta.crs is None:
        raise DemError(f"{path}: DEM has no CRS; assign one (e.g. gdal_edit.py -a_srs EPSG:4326)")
    if meta.count != 1:
        raise DemError(f"{path}: DEM has {meta.count} bands; give a single-band elevation raster")
    target = _template(like)
    dem = rioxarray.open_rasterio(path, masked=True, chunks={"y": 2048, "x": 2048})
    dem = dem.squeeze("band", drop=True)
    check_coverage(path, dem, target)
    bounds = transform_bounds(target.rio.crs, dem.rio.crs, *target.rio.bounds(), densify_pts=21)
    res_x, res_y = (abs(r) for r in dem.rio.resolution())
    left, bottom, right, top = bounds
    dem = dem.rio.clip_box(
        left - 2 * res_x, bottom - 2 * res_y, right + 2 * res_x, top + 2 * res_y
    ).astype("float32")
    dem = dem.rio.write_nodata(np.nan, encoded=False).compute()
    out = dem.rio.reproject_match(target, resampling=Resampling.bilinear, nodata=np.nan)
    out = out.assign_coords(x=target["x"].values, y=target["y"].values)
    out = out.astype("float32").rename("dem")
    out.attrs = {"units": "m", "long_name": "elevation", "source_file": path}
    out.encoding = {}
    return out
