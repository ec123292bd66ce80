"""Writers: GeoTIFF (optionally COG), CF NetCDF and Zarr, each written atomically."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import dask.array
import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr

from insar_denoise._version import __version__
from insar_denoise.errors import OutputError
from insar_denoise.io.dates import iso
from insar_denoise.io.targets import (  # noqa: F401  (re-exported: callers import them here)
    _remove,
    atomic_output,
    check_folder,
    check_target,
    remove_stale_partials,
    stale_partials,
)

log = logging.getLogger(__name__)

AUX_NAMES = ("dem", "valid")
"""Variables never chosen as 'the' array to write when a Dataset holds several."""
_ROWS = 1024


def pick_array(obj: xr.Dataset | xr.DataArray) -> xr.DataArray:
    """The one array of ``obj`` to write as raster bands.

    A DataArray is returned as is; a Dataset gives ``displacement``, else its only data
    variable other than ``dem``/``valid``.
    """
    if isinstance(obj, xr.DataArray):
        return obj
    if "displacement" in obj.data_vars:
        return obj["displacement"]
    names = [str(n) for n in obj.data_vars if n not in AUX_NAMES]
    if len(names) != 1:
        names = names or [str(n) for n in obj.data_vars]
        if len(names) != 1:
            raise OutputError(
                f"dataset: holds {', '.join(names) or 'no variables'}; write one variable "
                "(ds[name]) per GeoTIFF"
            )
    return obj[names[0]]


def _transform(da: xr.DataArray):
    """The affine transform from the coordinates (cached one for 1-pixel grids)."""
    try:
        return da.rio.transform(recalc=True)
    except Exception:  # rioxarray cannot recalc on a 1-pixel axis
        return da.rio.transform()


def default_tags(tags: dict | None = None, attrs: dict | None = None) -> dict[str, str]:
    """File tags: package version, model id, command line, units, plus ``tags``."""
    attrs = attrs or {}
    out = {
        "INSAR_DENOISE_VERSION": __version__,
        "MODEL_ID": str(attrs.get("model_id", "")),
        "COMMAND_LINE": " ".join(sys.argv),
        "UNITS": str(attrs.get("units", "")),
        "SIGN_CONVENTION": str(attrs.get("sign_convention", "")),
    }
    out.update({str(k).upper(): str(v) for k, v in (tags or {}).items()})
    return {k: v for k, v in out.items() if v}


def _write_gtiff(da: xr.DataArray, path: Path, tags: dict[str, str]) -> None:
    """Write a (band, y, x) or (y, x) array to a tiled, deflate-compressed GeoTIFF."""
    if da.ndim == 2:
        da = da.expand_dims("band")
    band_dim = da.dims[0]
    da = da.transpose(band_dim, "y", "x")
    count, height, width = da.shape
    if band_dim == "time":
        descriptions = iso(da["time"].values)
    elif band_dim in da.coords and da[band_dim].dtype.kind in "UO":
        descriptions = [str(v) for v in da[band_dim].values]
    else:
        descriptions = [str(da.name or "")] * count
    block = 256 if max(height, width) > 256 else 16 * ((max(height, width) + 15) // 16)
    profile = {
        "driver": "GTiff",
        "count": count,
        "height": height,
        "width": width,
        "dtype": "float32",
        "nodata": np.nan,
        "crs": da.rio.crs,
        "transform": _transform(da),
        "tiled": True,
        "interleave": "band",
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        "predictor": 3,
        "BIGTIFF": "IF_SAFER",
    }
    unit = str(da.attrs.get("units", tags.get("UNITS", "")))
    with rasterio.open(path, "w", **profile) as dst:
        dst.update_tags(**tags)
        for band in range(count):
            dst.set_band_description(band + 1, descriptions[band])
            if unit:
                dst.set_band_unit(band + 1, unit)
            if band_dim == "time":
                dst.update_tags(band + 1, DATE=descriptions[band])
        data = da.data if da.chunks is not None else da.chunk({band_dim: 1, "y": _ROWS}).data
        dask.array.store(data, _WindowWriter(dst), lock=threading.Lock())


class _WindowWriter:
    """A ``dask.array.store`` target writing (band, row, col) blocks into an open raster."""

    def __init__(self, dst: rasterio.io.DatasetWriter) -> None:
        self.dst = dst

    def __setitem__(self, key: tuple[slice, slice, slice], block: np.ndarray) -> None:
        bands, rows, cols = key
        window = rasterio.windows.Window(
            cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start
        )
        indexes = list(range(bands.start + 1, bands.stop + 1))
        self.dst.write(np.asarray(block, dtype="float32"), indexes, window=window)


def write_geotiff(
    da_or_ds: xr.DataArray | xr.Dataset,
    path: str | Path,
    *,
    overwrite: bool = False,
    cog: bool = False,
    tags: dict | None = None,
) -> Path:
    """Write a (time, y, x) or (y, x) array as a float32 GeoTIFF.

    Tiled 256 x 256, deflate with the floating-point predictor, nodata NaN, CRS and
    transform from rioxarray, one band per date with the ISO date as band description
    (and a ``DATE`` band tag), band unit from ``attrs["units"]``, file tags with the
    package version, model id, command line and any ``tags``. Blocks are written as dask
    computes them (``dask.array.store``; NumPy arrays go by one band and 1024 rows), so
    the whole stack is never in memory.

    Parameters
    ----------
    da_or_ds : xarray.DataArray or xarray.Dataset
        The array, or a Dataset holding ``displacement`` or a single other variable.
    path : str or Path
        Output ``.tif``.
    overwrite : bool
        Replace an existing file.
    cog : bool
        Write a Cloud Optimized GeoTIFF (GDAL COG driver, with overviews).
    tags : dict, optional
        Extra file tags (keys upper-cased), e.g. ``{"model_id": "default-v1"}``.

    Returns
    -------
    Path
        The written file.
    """
    da = pick_array(da_or_ds)
    attrs = {**getattr(da_or_ds, "attrs", {}), **da.attrs}
    if da.ndim not in (2, 3):
        raise OutputError(f"{path}: can write 2-D or 3-D arrays, not dims {da.dims}")
    file_tags = default_tags(tags, attrs)
    with atomic_output(path, overwrite) as tmp:
        if not cog:
            _write_gtiff(da, tmp, file_tags)
        else:
            plain = tmp.with_name(f"{tmp.stem}-plain.tif")
            try:
                _write_gtiff(da, plain, file_tags)
                rasterio.shutil.copy(
                    plain,
                    tmp,
                    driver="COG",
                    COMPRESS="DEFLATE",
                    PREDICTOR="YES",
                    BIGTIFF="IF_SAFER",
                )
            finally:
                _remove(plain)
    return Path(path)


def _netcdf_ready(obj: xr.Dataset | xr.DataArray) -> xr.Dataset:
    """A copy with fresh encodings, CF attributes and list/bool attrs made portable."""
    ds = obj.to_dataset(name=obj.name or "data") if isinstance(obj, xr.DataArray) else obj.copy()
    for name in ds.variables:
        ds[name].encoding = {}
    attrs = {}
    for key, value in ds.attrs.items():
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, list | tuple):
            value = [str(v) for v in value]
        if value is not None:
            attrs[key] = value
    attrs.update(
        Conventions="CF-1.8",
        insar_denoise_version=__version__,
        history=" ".join(sys.argv),
    )
    ds.attrs = attrs
    if ds.rio.crs is not None:
        ds = ds.rio.write_crs(ds.rio.crs).rio.write_coordinate_system()
    return ds


def write_netcdf(
    ds: xr.Dataset | xr.DataArray, path: str | Path, *, overwrite: bool = False
) -> Path:
    """Write a Dataset to CF-1.8 NetCDF-4 with a ``spatial_ref`` grid mapping.

    Float variables are zlib-compressed (level 4) with ``_FillValue`` NaN; dask-backed
    variables are written chunk by chunk.

    Parameters
    ----------
    ds : xarray.Dataset or xarray.DataArray
        Typically the canonical Dataset or the inference output.
    path : str or Path
        Output ``.nc``.
    overwrite : bool
        Replace an existing file.
    """
    out = _netcdf_ready(ds)
    compress = {"zlib": True, "complevel": 4, "_FillValue": np.float32(np.nan)}
    encoding = {
        str(name): {**var.encoding, **compress, "chunksizes": _file_chunks(var)}
        for name, var in out.data_vars.items()
        if np.issubdtype(var.dtype, np.floating) and var.ndim >= 2
    }
    encoding.update({str(d): {"_FillValue": None} for d in ("x", "y") if d in out.coords})
    with atomic_output(path, overwrite) as tmp:
        out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return Path(path)


def _file_chunks(var: xr.DataArray) -> tuple[int, ...]:
    """NetCDF chunk shape: the dask chunks (so each block is written once), else one date
    by up to 1024 x 1024 pixels."""
    if var.chunks is not None:
        return tuple(int(sizes[0]) for sizes in var.chunks)
    return tuple(1 if d == "time" else min(n, _ROWS) for d, n in var.sizes.items())


def write_zarr(ds: xr.Dataset | xr.DataArray, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write a Dataset to a Zarr v2 store, consolidated (CF attributes as :func:`write_netcdf`)."""
    out = _netcdf_ready(ds)
    sizes = {"time": 1} if "time" in out.dims else {}
    out = out.chunk(sizes | _spatial(out))
    with atomic_output(path, overwrite) as tmp:
        out.to_zarr(tmp, mode="w", zarr_format=2, consolidated=True)
    return Path(path)


def _spatial(ds: xr.Dataset) -> dict[str, int]:
    """Spatial chunk sizes for Zarr: 1024 pixels, or the whole axis when smaller."""
    return {d: min(1024, ds.sizes[d]) for d in ("y", "x") if d in ds.dims}


def write_output(
    obj: xr.Dataset | xr.DataArray,
    path: str | Path,
    *,
    overwrite: bool = False,
    cog: bool = False,
    tags: dict | None = None,
) -> Path:
    """Write ``obj`` in the format chosen by the extension of ``path``.

    ``.tif``/``.tiff`` → :func:`write_geotiff` (``cog`` and ``tags`` apply), ``.nc`` →
    :func:`write_netcdf`, ``.zarr`` → :func:`write_zarr`.

    Raises
    ------
    OutputError
        Any other extension.
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".tif", ".tiff"):
        return write_geotiff(obj, path, overwrite=overwrite, cog=cog, tags=tags)
    if suffix in (".nc", ".nc4"):
        return write_netcdf(obj, path, overwrite=overwrite)
    if suffix == ".zarr":
        return write_zarr(obj, path, overwrite=overwrite)
    raise OutputError(f"{path}: unknown output format {suffix!r}; use .tif, .nc or .zarr")
