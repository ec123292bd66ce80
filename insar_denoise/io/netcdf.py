"""Lazy reader for CF NetCDF, HDF5-NetCDF and Zarr stacks with a time dimension."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from insar_denoise.errors import DateError, InputError
from insar_denoise.io.geotiff import one_line

_RENAME = {"lat": "y", "latitude": "y", "lon": "x", "longitude": "x"}
_VALID_NAMES = ("valid", "mask")
_DEM_NAMES = ("dem", "height", "elevation")
OWN_SERIES = "deformation"
"""The variable read from insar-denoise's own NetCDF/Zarr output (the denoised series)."""


def is_zarr(path: str | Path) -> bool:
    """True for a ``.zarr`` store (a folder or a name ending in ``.zarr``)."""
    path = Path(path)
    return (
        path.suffix.lower() == ".zarr"
        or (path / ".zgroup").exists()
        or (path / "zarr.json").exists()
    )


def _open(path: str) -> xr.Dataset:
    """Open lazily (no pixels read), decoding CF times and grid mappings."""
    if not Path(path).exists():
        raise InputError(f"{path}: file does not exist")
    try:
        engine = "zarr" if is_zarr(path) else None
        return xr.open_dataset(path, engine=engine, chunks=None, decode_coords="all")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise InputError(f"{path}: not a readable NetCDF/Zarr file ({one_line(exc)})") from None


def _time_dim(da: xr.DataArray) -> str | None:
    """The dimension of ``da`` holding dates (datetime64 coordinate, or named time)."""
    for dim in da.dims:
        if dim in da.coords and np.issubdtype(da[dim].dtype, np.datetime64):
            return str(dim)
    return next((str(d) for d in da.dims if str(d).lower() in ("time", "date")), None)


def _pick_variable(ds: xr.Dataset, path: str, variable: str | None) -> str:
    """The displacement variable: ``variable``, else ``deformation`` in insar-denoise's own
    output, else the only 3-D variable with a time dimension."""
    if variable is not None:
        if variable not in ds.data_vars:
            raise InputError(
                f"{path}: no variable {variable!r} (has {', '.join(map(str, ds.data_vars))})"
            )
        return variable
    candidates = [str(name) for name, da in ds.data_vars.items() if da.ndim == 3 and _time_dim(da)]
    if OWN_SERIES in candidates and any(str(k).startswith("insar_denoise_") for k in ds.attrs):
        return OWN_SERIES  # insar-denoise's own output: its denoised series
    if len(candidates) != 1:
        found = ", ".join(candidates) or "none"
        raise InputError(
            f"{path}: cannot tell the displacement variable (3-D variables with a time "
            f"dimension: {found}); pass variable="
        )
    return candidates[0]


def read_netcdf(
    path: str | Path, variable: str | None, chunks: dict[str, int]
) -> tuple[xr.DataArray, str | None, xr.DataArray | None, xr.DataArray | None]:
    """A lazy (time, y, x) stack from a CF NetCDF or Zarr store.

    Parameters
    ----------
    path : str or Path
        ``.nc``/``.h5`` file or ``.zarr`` store.
    variable : str, optional
        The displacement variable; auto-detected when the file has one 3-D variable
        with a time dimension.
    chunks : dict
        Dask chunk sizes (pixels) for ``y`` and ``x`` (and ``time``; default the file's
        own time chunk, or 1 for contiguous variables).

    Returns
    -------
    (DataArray with CRS, its ``units`` attribute or None, the 2-D ``valid``/``mask``
    variable or None, the 2-D ``dem``/``height``/``elevation`` variable (m) or None)
    """
    path = str(path)
    ds = _open(path)
    name = _pick_variable(ds, path, variable)
    da = ds[name]
    time_dim = _time_dim(da)
    if da.ndim != 3 or time_dim is None:
        raise InputError(f"{path}: variable {name!r} is not 3-D with a time dimension")
    if not np.issubdtype(da[time_dim].dtype, np.datetime64):
        raise DateError(
            f"{path}: time coordinate {time_dim!r} of {name!r} is not decodable as dates "
            "(CF 'units: days since ...' expected)"
        )
    rename = {d: _RENAME[str(d).lower()] for d in da.dims if str(d).lower() in _RENAME}
    rename.update({time_dim: "time"} if time_dim != "time" else {})
    da = da.rename(rename)
    spatial = [d for d in da.dims if d != "time"]
    if set(spatial) != {"y", "x"}:
        raise InputError(
            f"{path}: variable {name!r} has dimensions {da.dims}; expected time plus y/x or lat/lon"
        )
    native = da.encoding.get("preferred_chunks", {})
    time_chunk = chunks.get("time", native.get(time_dim, 1))
    da = da.transpose("time", "y", "x").chunk(
        {"time": time_chunk, "y": chunks["y"], "x": chunks["x"]}
    )
    if da.rio.crs is None:
        if not any(str(d).lower() in _RENAME for d in ds[name].dims):
            raise InputError(
                f"{path}: variable {name!r} has no CRS (no grid_mapping / spatial_ref "
                "variable); write one with rioxarray or CF grid_mapping"
            )
        da = da.rio.write_crs("EPSG:4326")
    da = da.rio.set_spatial_dims(x_dim="x", y_dim="y")
    valid = _grid_variable(ds, _VALID_NAMES, rename)
    dem = _grid_variable(ds, _DEM_NAMES, rename)
    return (
        da,
        da.attrs.get("units"),
        None if valid is None else valid.astype(bool),
        None if dem is None else dem.astype("float32"),
    )


def _grid_variable(
    ds: xr.Dataset, names: tuple[str, ...], rename: dict[str, str]
) -> xr.DataArray | None:
    """The first 2-D variable of ``ds`` called one of ``names``, as (y, x), in memory."""
    for name in names:
        if name in ds.data_vars and ds[name].ndim == 2:
            var = ds[name].rename({k: v for k, v in rename.items() if k in ds[name].dims})
            if set(var.dims) == {"y", "x"}:
                return var.transpose("y", "x").compute()
    return None
