"""Writers: GeoTIFF (optionally COG), CF NetCDF and Zarr, each written atomically."""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dask.array
import numpy as np
import rasterio
import rasterio.shutil
import xarray as xr

from insar_denoise._version import __version__
from insar_denoise.errors import OutputError
from insar_denoise.io.dates import iso

log = logging.getLogger(__name__)

AUX_NAMES = ("dem", "valid")
"""Variables never chosen as 'the' array to write when a Dataset holds several."""
_ROWS = 1024


def _remove(path: Path) -> None:
    """Remove a file or a folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def check_folder(folder: str | Path, label: str | Path | None = None) -> Path:
    """Fail fast when files cannot be created in ``folder`` (or, while it does not exist
    yet, in its nearest existing ancestor, where it would be created); return it.

    Creates and removes a hidden probe file, so the answer holds for root and read-only
    mounts alike. ``label`` (default ``folder``) starts the error message.

    Raises
    ------
    OutputError
        A path component is a file, or the folder is not writable.
    """
    folder = Path(folder)
    label = folder if label is None else label
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{label}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".insar-denoise-probe-", dir=existing)
    except OSError as exc:
        raise OutputError(
            f"{label}: cannot write in folder {existing} ({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return folder


def check_target(path: str | Path, overwrite: bool = False, *, create_parent: bool = False) -> Path:
    """Fail fast when ``path`` cannot be written; return it as a Path.

    ``create_parent``: a missing folder is fine when its own parent exists (the caller
    creates it before writing, e.g. with :func:`make_parent`).

    Raises
    ------
    OutputError
        The output exists and ``overwrite`` is False, its folder does not exist (or is a
        file), or files cannot be created there.
    """
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputError(f"{path}: already exists (pass overwrite=True)")
    folder = path.parent
    if not folder.is_dir():
        if folder.exists():
            raise OutputError(f"{path}: {folder} is a file, not a folder")
        if not (create_parent and folder.parent.is_dir()):
            raise OutputError(f"{path}: folder {folder} does not exist")
    check_folder(folder, path)
    return path


def stale_partials(path: str | Path) -> list[Path]:
    """Hidden files or folders that an interrupted write of ``path`` left beside it.

    :func:`atomic_output` writes ``.<stem>.partial-<8 hex><suffix>`` (plus GDAL's
    ``.aux.xml`` and the COG writer's ``-plain`` copy) and, replacing a folder such as
    ``.zarr``, moves the old one to ``.<stem>.old-<8 hex><suffix>``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(
        rf"\.{re.escape(path.stem)}\.(?:partial|old)-[0-9a-f]{{8}}(?:-plain)?"
        rf"{re.escape(path.suffix)}(?:\.aux\.xml)?"
    )
    candidates = path.parent.glob(f".{glob.escape(path.stem)}.*")
    return sorted(p for p in candidates if pattern.fullmatch(p.name))


def remove_stale_partials(path: str | Path) -> list[Path]:
    """Remove the :func:`stale_partials` of ``path``; log one warning line naming them."""
    found = stale_partials(path)
    for stale in found:
        _remove(stale)
    if found:
        names = ", ".join(p.name for p in found)
        log.warning("%s: removed stale partial output(s) of an interrupted run: %s", path, names)
    return found


@contextmanager
def atomic_output(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only on success.

    The temporary name keeps the suffix (drivers that go by extension work) and lives in
    the target folder, so the final ``os.replace`` is atomic for files. On any exception
    the temporary file or folder is removed and the exception propagates; partial files
    that a killed earlier write left are removed first (:func:`remove_stale_partials`).

    Parameters
    ----------
    path : str or Path
        The final output (file or folder such as ``.zarr``).
    overwrite : bool
        Replace an existing output.

    Raises
    ------
    OutputError
        ``path`` exists and ``overwrite`` is False, its folder is missing, or the body
        wrote nothing.
    """
    path = check_target(path, overwrite)
    remove_stale_partials(path)
    tmp = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    aux = Path(f"{tmp}.aux.xml")
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(f"{path}: nothing was written")
        check_target(path, overwrite)
    except BaseException:
        _remove(tmp)
        _remove(aux)
        raise
    if path.is_dir() and not path.is_symlink():
        old = path.with_name(f".{path.stem}.old-{uuid.uuid4().hex[:8]}{path.suffix}")
        os.replace(path, old)
        os.replace(tmp, path)
        _remove(old)
    else:
        os.replace(tmp, path)
    if aux.exists():
        os.replace(aux, f"{path}.aux.xml")
    log.info("wrote %s", path)


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
