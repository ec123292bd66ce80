"""``stack_info``: a plain-dict summary of a canonical Dataset (the ``info`` command)."""

from __future__ import annotations

import numpy as np
import xarray as xr
from pyproj import Geod

from insar_denoise.io.dates import iso

_GEOD = Geod(ellps="WGS84")


def _spacing_m(ds: xr.Dataset, dx: float, dy: float) -> list[float]:
    """Pixel spacing (m) along x and y at the centre of a geographic grid (WGS84)."""
    left, bottom, right, top = ds.rio.bounds()
    lon, lat = (left + right) / 2, (bottom + top) / 2
    crs = ds.rio.crs
    if crs.is_geographic and crs.to_epsg() != 4326:
        lon, lat = crs_to_4326(crs, lon, lat)
    _, _, east = _GEOD.inv(lon, lat, lon + dx, lat)
    _, _, north = _GEOD.inv(lon, lat, lon, lat + dy)
    return [round(float(east), 3), round(float(north), 3)]


def crs_to_4326(crs, lon: float, lat: float) -> tuple[float, float]:
    """A point of a geographic CRS in EPSG:4326 degrees."""
    from rasterio.warp import transform

    xs, ys = transform(crs, "EPSG:4326", [lon], [lat])
    return xs[0], ys[0]


def human_bytes(n: float) -> str:
    """A byte count as ``12.3 MiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def stack_info(ds: xr.Dataset) -> dict:
    """Summary of a canonical Dataset, JSON-serialisable.

    Reads the stack once, chunk by chunk, for the NaN fraction of each date.

    Parameters
    ----------
    ds : xarray.Dataset
        As returned by :func:`insar_denoise.io.open_stack`.

    Returns
    -------
    dict
        ``dates`` (ISO), ``n_dates``, ``shape`` (time, y, x), ``crs``, ``crs_is_geographic``,
        ``bounds`` (left, bottom, right, top; CRS units), ``pixel_spacing`` (x, y; CRS
        units), ``pixel_spacing_m`` (x, y; metres, at the grid centre when geographic),
        ``units``, ``input_units``, ``input_units_from``, ``sign_convention``,
        ``nan_fraction`` (per date, 0–1), ``memory_bytes`` and ``memory`` (in-memory size
        of the float32 arrays), ``source_files``, and ``dem`` (None, or ``covers_stack``,
        ``nan_fraction``, ``min_m``, ``max_m``).
    """
    disp = ds["displacement"]
    crs = ds.rio.crs
    res_x, res_y = (abs(float(r)) for r in ds.rio.resolution())
    geographic = bool(crs is not None and crs.is_geographic)
    spacing_m = _spacing_m(ds, res_x, res_y) if geographic else [res_x, res_y]
    dates = iso(ds["time"].values)
    nan_fraction = disp.isnull().mean(dim=("y", "x")).compute().values
    n_bytes = sum(int(v.size) * v.dtype.itemsize for v in ds.data_vars.values())
    dem = None
    if "dem" in ds.data_vars:
        elevation = ds["dem"].values
        finite = elevation[np.isfinite(elevation)]
        dem = {
            "covers_stack": True,
            "nan_fraction": round(float(1 - finite.size / elevation.size), 4),
            "min_m": round(float(finite.min()), 1) if finite.size else None,
            "max_m": round(float(finite.max()), 1) if finite.size else None,
        }
    return {
        "source_files": [str(f) for f in np.atleast_1d(ds.attrs.get("source_files", []))],
        "n_dates": len(dates),
        "dates": dates,
        "shape": {"time": disp.sizes["time"], "y": disp.sizes["y"], "x": disp.sizes["x"]},
        "crs": None if crs is None else crs.to_string(),
        "crs_is_geographic": geographic,
        "bounds": [float(b) for b in ds.rio.bounds()],
        "pixel_spacing": [res_x, res_y],
        "pixel_spacing_m": spacing_m,
        "units": ds.attrs.get("units", disp.attrs.get("units")),
        "input_units": ds.attrs.get("input_units"),
        "input_units_from": ds.attrs.get("input_units_from"),
        "sign_convention": ds.attrs.get("sign_convention"),
        "nan_fraction": {d: round(float(f), 4) for d, f in zip(dates, nan_fraction, strict=True)},
        "memory_bytes": n_bytes,
        "memory": human_bytes(n_bytes),
        "dem": dem,
    }
