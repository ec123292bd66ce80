"""``open_stack``: any supported input to the canonical Dataset (see ``insar_denoise.io``)."""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr

from insar_denoise.errors import DateError, InputError
from insar_denoise.io.dem import open_dem
from insar_denoise.io.geotiff import (
    common_unit,
    probe,
    read_multiband_file,
    read_single_band_files,
)
from insar_denoise.io.netcdf import is_zarr, read_netcdf
from insar_denoise.io.units import (
    SENTINEL1_WAVELENGTH_MM,
    SIGN_CONVENTION,
    normalize_units,
    to_mm,
)

log = logging.getLogger(__name__)

DEFAULT_CHUNKS = {"y": 1024, "x": 1024}
"""Dask chunk sizes (pixels) used when ``chunks`` is None; time keeps one chunk per file."""

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".h5", ".hdf5", ".he5")
_GLOB_CHARS = set("*?[")

StackInput = str | Path | Iterable[str | Path] | xr.Dataset | xr.DataArray


def resolve_inputs(inputs: str | Path | Iterable[str | Path]) -> list[str]:
    """Expand globs into a list of paths.

    Parameters
    ----------
    inputs : str, Path or iterable of them
        Files, ``.zarr`` stores or glob patterns (``data/*.tif``).

    Raises
    ------
    InputError
        A glob that matches nothing, a plain folder, or no inputs at all.
    """
    items = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    paths: list[str] = []
    for item in items:
        text = str(item)
        if _GLOB_CHARS & set(text) and not Path(text).exists():
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputError(f"{text}: no file matches this pattern")
            paths.extend(matches)
        elif Path(text).is_dir() and not is_zarr(text):
            raise InputError(f"{text}: is a folder; give files or a glob such as {text}/*.tif")
        else:
            paths.append(text)
    if not paths:
        raise InputError("inputs: no input file given")
    return paths


def _resolve_chunks(chunks: dict[str, int] | int | None) -> dict[str, int]:
    """Chunk sizes per dimension; an int is the spatial size."""
    if chunks is None:
        return dict(DEFAULT_CHUNKS)
    if isinstance(chunks, int):
        return {"y": chunks, "x": chunks}
    return {**DEFAULT_CHUNKS, **chunks}


def _units(
    override: str | None, stated: list[str | None], sources: list[str], label: str
) -> tuple[str, str]:
    """The unit to convert from and where it came from (override, file or default)."""
    if override is not None:
        return normalize_units(override, "units"), "override"
    unit = common_unit(stated, sources)
    if unit is None:
        log.warning("%s: no unit in the input; assuming mm (pass units= to say)", label)
        return "mm", "default"
    return normalize_units(unit, label), "file"


def _check_not_all_nan(disp: xr.DataArray, label: str) -> None:
    """Raise InputError when no date has a finite pixel; reads one date at a time."""
    for index in range(disp.sizes["time"]):
        if bool(np.isfinite(disp.isel(time=index)).any()):
            return
    raise InputError(f"{label}: every pixel of every date is NaN or nodata; nothing to denoise")


def _check_times(disp: xr.DataArray, label: str) -> xr.DataArray:
    """Sort by time and refuse duplicated dates."""
    values = disp["time"].values
    if not np.issubdtype(values.dtype, np.datetime64):
        raise DateError(f"{label}: time coordinate is not datetime64")
    unique, counts = np.unique(values, return_counts=True)
    if (counts > 1).any():
        raise DateError(f"{label}: duplicate date {str(unique[counts > 1][0])[:19]}")
    disp = disp.sortby("time")
    return disp.assign_coords(time=disp["time"].values.astype("datetime64[ns]"))


def canonical_dataset(
    disp: xr.DataArray,
    *,
    unit: str,
    unit_from: str,
    wavelength_mm: float,
    source_files: list[str],
    label: str,
    valid: xr.DataArray | None = None,
    dem: xr.DataArray | None = None,
) -> xr.Dataset:
    """Assemble the canonical Dataset from a (time, y, x) array with a rioxarray CRS.

    Parameters
    ----------
    disp : xarray.DataArray
        Displacement or phase, dims (time, y, x), in ``unit``.
    unit : str
        ``mm``, ``cm``, ``m`` or ``rad``.
    unit_from : str
        ``override``, ``file`` or ``default`` (recorded in attrs).
    wavelength_mm : float
        Radar wavelength (mm), used when ``unit`` is ``rad``.
    source_files : list of str
        Files the stack came from.
    label : str
        Name of the input for error messages.
    valid, dem : xarray.DataArray, optional
        ``valid(y, x)`` mask and ``dem(y, x)`` in metres on the same grid.
    """
    crs = disp.rio.crs
    if crs is None:
        raise InputError(f"{label}: displacement has no CRS; write one with ds.rio.write_crs")
    disp = _check_times(disp.transpose("time", "y", "x"), label)
    converted = to_mm(disp, unit, wavelength_mm)
    converted.attrs = {"units": "mm", "long_name": "LOS displacement, positive towards satellite"}
    converted.encoding = {}
    data = {"displacement": converted}
    if dem is not None:
        data["dem"] = dem.astype("float32").assign_attrs(units="m")
    if valid is not None:
        data["valid"] = valid.astype(bool)
    ds = xr.Dataset(data)
    if ds.sizes["y"] > 1 and ds["y"].values[0] < ds["y"].values[-1]:
        ds = ds.isel(y=slice(None, None, -1))
    ds = ds.rio.write_crs(crs).rio.write_coordinate_system()
    ds.attrs = {
        "units": "mm",
        "sign_convention": SIGN_CONVENTION,
        "source_files": list(source_files),
        "input_units": unit,
        "input_units_from": unit_from,
    }
    if unit == "rad":
        ds.attrs["wavelength_mm"] = float(wavelength_mm)
    _check_not_all_nan(ds["displacement"], label)
    return ds


def _from_memory(
    obj: xr.Dataset | xr.DataArray, units: str | None, wavelength_mm: float, variable: str | None
) -> xr.Dataset:
    """Canonicalise a Dataset or DataArray already in memory (or already lazy)."""
    label = "dataset"
    ds = obj.to_dataset(name=obj.name or "displacement") if isinstance(obj, xr.DataArray) else obj
    name = variable or ("displacement" if "displacement" in ds.data_vars else None)
    if name is None:
        three_d = [str(n) for n, v in ds.data_vars.items() if v.ndim == 3]
        if len(three_d) != 1:
            raise InputError(f"{label}: cannot tell the displacement variable; pass variable=")
        name = three_d[0]
    if name not in ds.data_vars:
        raise InputError(f"{label}: no variable {name!r}")
    disp = ds[name]
    if set(disp.dims) != {"time", "y", "x"}:
        raise InputError(f"{label}: {name!r} has dims {disp.dims}; expected (time, y, x)")
    stated = disp.attrs.get("units") or ds.attrs.get("units")
    unit, unit_from = _units(units, [stated], [label], label)
    sources = ds.attrs.get("source_files", [])
    crs = disp.rio.crs or ds.rio.crs
    return canonical_dataset(
        disp if crs is None else disp.rio.write_crs(crs),
        unit=unit,
        unit_from=unit_from,
        wavelength_mm=wavelength_mm,
        source_files=[sources] if isinstance(sources, str) else list(sources),
        label=label,
        valid=ds["valid"] if "valid" in ds.data_vars else None,
        dem=ds["dem"] if "dem" in ds.data_vars else None,
    )


def open_stack(
    inputs: StackInput,
    *,
    dem: str | Path | None = None,
    units: str | None = None,
    wavelength_mm: float = SENTINEL1_WAVELENGTH_MM,
    variable: str | None = None,
    chunks: dict[str, int] | int | None = None,
) -> xr.Dataset:
    """Open a displacement time series lazily as the canonical Dataset.

    Parameters
    ----------
    inputs : str, Path, list of them, xarray.Dataset or xarray.DataArray
        Single-band GeoTIFFs (one per date; paths or globs), one multi-band GeoTIFF whose
        band descriptions are dates, one NetCDF/HDF5/Zarr store with a time dimension, or
        an xarray object with dims (time, y, x) and a rioxarray CRS.
    dem : str or Path, optional
        DEM in any GDAL format and CRS (metres); resampled bilinearly onto the stack grid.
    units : str, optional
        ``mm``, ``cm``, ``m`` or ``rad``; beats the unit stated by the files. When neither
        says, mm is assumed (with a warning).
    wavelength_mm : float
        Radar wavelength (mm) for ``rad`` inputs. Default Sentinel-1 C band, 55.465763 mm.
    variable : str, optional
        NetCDF/Zarr variable; auto-detected when there is one 3-D variable with a time.
    chunks : dict or int, optional
        Dask chunk sizes (pixels) per dimension (``time``, ``y``, ``x``); an int sets ``y``
        and ``x``. Default 1024 x 1024 pixels, one date per chunk for GeoTIFFs.

    Returns
    -------
    xarray.Dataset
        ``displacement(time, y, x)`` float32 mm (dask-backed), ``dem(y, x)`` float32 m when
        a DEM is given, CRS through rioxarray.

    Raises
    ------
    InputError
        Or a subclass (GridMismatchError, DateError, UnitsError, DemError) naming the file.
    """
    sizes = _resolve_chunks(chunks)
    if isinstance(inputs, xr.Dataset | xr.DataArray):
        ds = _from_memory(inputs, units, wavelength_mm, variable)
        if chunks is not None:
            ds = ds.chunk(sizes)
    else:
        ds = _from_files(resolve_inputs(inputs), units, wavelength_mm, variable, sizes)
        ds = ds.chunk(sizes)
    if dem is not None:
        ds["dem"] = open_dem(dem, ds)
    log.info("opened %d dates of %dx%d pixels", ds.sizes["time"], ds.sizes["y"], ds.sizes["x"])
    return ds


def _from_files(
    paths: list[str],
    units: str | None,
    wavelength_mm: float,
    variable: str | None,
    sizes: dict[str, int],
) -> xr.Dataset:
    """Read files of one of the supported kinds into the canonical Dataset."""
    first = paths[0]
    netcdf = [p for p in paths if is_zarr(p) or Path(p).suffix.lower() in NETCDF_SUFFIXES]
    if netcdf and len(paths) > 1:
        raise InputError(f"{netcdf[0]}: give one NetCDF/Zarr store on its own, not in a list")
    valid = dem = None
    if netcdf:
        disp, stated, valid, dem = read_netcdf(first, variable, sizes)
        stated_list, sources, files = [stated], [first], [first]
    elif len(paths) == 1 and probe(first).count > 1:
        disp, stated_list, sources = read_multiband_file(first, sizes)
        files = [first]
    else:
        disp, stated_list, sources = read_single_band_files(paths, sizes)
        files = sources
    label = first if len(files) == 1 else f"{first} (+{len(files) - 1} files)"
    unit, unit_from = _units(units, stated_list, sources, label)
    return canonical_dataset(
        disp,
        unit=unit,
        unit_from=unit_from,
        wavelength_mm=wavelength_mm,
        source_files=files,
        label=label,
        valid=valid,
        dem=dem,
    )
