"""MintPy time series: read ``timeseries*.h5`` (+ geometry) and write results back.

Layout (MintPy ``mintpy/objects/stack.py`` class ``timeseries``, ``utils/readfile.py``):

- ``/timeseries`` (T, H, W) float32 LOS displacement in ``UNIT`` (metres), relative to
  ``REF_DATE`` in time and to the pixel ``REF_Y``/``REF_X`` in space;
- ``/date`` (T,) bytes ``YYYYMMDD`` (optionally ``YYYYMMDDTHHMM``); ``/bperp`` (T,) float32 m;
- root attributes, all strings: ``FILE_TYPE='timeseries'``, ``UNIT``, ``LENGTH``, ``WIDTH``,
  ``X_FIRST``, ``Y_FIRST``, ``X_STEP``, ``Y_STEP``, ``X_UNIT``, ``Y_UNIT``, ``EPSG`` or
  ``UTM_ZONE``, ``REF_DATE``, ``WAVELENGTH``, ...
- ``geometryGeo.h5`` / ``geometryRadar.h5`` (usually in ``inputs/``): ``/height`` (H, W) m.

Georeference: in geocoded MintPy files ``X_FIRST``/``Y_FIRST`` are the outer corner of the
upper-left pixel (``utils0.get_lat_lon`` adds half a step for pixel centres), so the affine
transform is ``(X_STEP, 0, X_FIRST, 0, Y_STEP, Y_FIRST)``. CRS: ``EPSG``, else ``UTM_ZONE``
(``'11N'`` → EPSG:32611), else WGS 84 when ``X_UNIT`` is degrees. Radar-coordinate files are
refused (geocode them with MintPy's ``geocode.py`` first).

Units and sign: MintPy's LOS displacement is positive towards the satellite, as ours, so
reading is ``mm = 1000 * m`` and the series is re-referenced to its first date; writing
divides by 1000, sets ``REF_DATE`` to the first date and keeps every other attribute.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import xarray as xr
from affine import Affine
from rasterio.crs import CRS

from insar_denoise.errors import DateError, DemError, InputError, OutputError
from insar_denoise.io.network import grid_coords
from insar_denoise.io.stack import canonical_dataset
from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM, scale_to_mm
from insar_denoise.io.writers import atomic_output, pick_array

GEOMETRY_NAMES = ("geometryGeo.h5", "inputs/geometryGeo.h5", "geometryRadar.h5",
                  "inputs/geometryRadar.h5")  # fmt: skip
"""Where ``open_mintpy`` looks for the geometry file, relative to the time-series folder."""


def _text(value) -> str:
    """An HDF5 attribute (bytes, numpy scalar or str) as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def is_mintpy_file(path: str | Path) -> bool:
    """True for an HDF5 file with MintPy's ``timeseries`` and ``date`` datasets."""
    try:
        with h5py.File(path, "r") as f:
            kind = _text(f.attrs.get("FILE_TYPE", "timeseries"))
            return "timeseries" in f and "date" in f and kind == "timeseries"
    except (OSError, ValueError):
        return False


def _parse_dates(raw, path: str) -> list[datetime]:
    """MintPy ``date`` strings (``YYYYMMDD[THHMM[SS]]``) as datetimes."""
    out = []
    for item in raw:
        text = _text(item)
        fmt = {8: "%Y%m%d", 13: "%Y%m%dT%H%M", 15: "%Y%m%dT%H%M%S"}.get(len(text))
        try:
            out.append(datetime.strptime(text, fmt or ""))
        except ValueError:
            raise DateError(f"{path}: date {text!r} is not YYYYMMDD[THHMM]") from None
    return out


def mintpy_crs(attrs: dict[str, str], path: str = "attributes") -> CRS:
    """The CRS of a geocoded MintPy file from ``EPSG``, ``UTM_ZONE`` or degree units."""
    if attrs.get("EPSG"):
        return CRS.from_epsg(int(float(attrs["EPSG"])))
    if attrs.get("UTM_ZONE"):
        zone = attrs["UTM_ZONE"].strip().upper()
        return CRS.from_epsg((32600 if zone.endswith("N") else 32700) + int(zone[:-1]))
    if attrs.get("X_UNIT", "degrees").lower().startswith("deg"):
        return CRS.from_epsg(4326)
    raise InputError(f"{path}: no EPSG or UTM_ZONE attribute for X_UNIT={attrs['X_UNIT']}")


def mintpy_transform(attrs: dict[str, str], path: str = "attributes") -> Affine:
    """Affine transform from ``X_FIRST``/``Y_FIRST`` (upper-left corner) and steps."""
    try:
        keys = ("X_STEP", "X_FIRST", "Y_STEP", "Y_FIRST")
        x_step, x_first, y_step, y_first = (float(attrs[k]) for k in keys)
    except KeyError:
        raise InputError(
            f"{path}: in radar coordinates (no X_FIRST/Y_FIRST); geocode it with MintPy "
            "geocode.py first"
        ) from None
    return Affine(x_step, 0.0, x_first, 0.0, y_step, y_first)


def _geometry_height(path: Path, geometry: str | Path | None, shape: tuple[int, int]):
    """``height`` (m) from the given or a neighbouring geometry file, or None."""
    found = [Path(geometry)] if geometry is not None else [
        path.parent / name for name in GEOMETRY_NAMES if (path.parent / name).is_file()
    ]  # fmt: skip
    for candidate in found:
        try:
            with h5py.File(candidate, "r") as f:
                height = f["height"][()] if "height" in f else None
        except OSError:
            raise DemError(f"{candidate}: not a readable MintPy geometry file") from None
        if height is not None and height.shape == shape:
            return np.asarray(height, dtype=np.float32), str(candidate)
        if geometry is not None:
            raise DemError(f"{candidate}: no 'height' dataset of shape {shape}")
    return None, None


def open_mintpy(timeseries_h5: str | Path, *, geometry: str | Path | None = None) -> xr.Dataset:
    """Read a MintPy time series as the canonical Dataset.

    Parameters
    ----------
    timeseries_h5 : str or Path
        ``timeseries*.h5`` in geographic coordinates.
    geometry : str or Path, optional
        ``geometryGeo.h5`` holding ``height`` (m); by default ``GEOMETRY_NAMES`` next to the
        file are tried and the first of the right shape is used.

    Returns
    -------
    xarray.Dataset
        ``displacement (time, y, x)`` float32 mm relative to the first date, positive towards
        the satellite; ``dem (y, x)`` when a geometry file is found; ``bperp (time)``
        coordinate (m); attrs ``mintpy_metadata`` (JSON of the file's attributes).
    """
    path = Path(timeseries_h5)
    if not is_mintpy_file(path):
        raise InputError(f"{path}: not a MintPy timeseries HDF5 file (timeseries + date)")
    with h5py.File(path, "r") as f:
        attrs = {k: _text(v) for k, v in f.attrs.items()}
        data = f["timeseries"][()].astype(np.float64)
        times = _parse_dates(f["date"][()], str(path))
        bperp = f["bperp"][()].astype(np.float32) if "bperp" in f else np.zeros(len(times))
    if data.ndim != 3 or data.shape[0] != len(times):
        raise InputError(f"{path}: timeseries shape {data.shape} does not match {len(times)} dates")
    transform = mintpy_transform(attrs, str(path))
    scale = scale_to_mm(attrs.get("UNIT", "m"))
    order = np.argsort(np.array(times, dtype="datetime64[ns]"), kind="stable")
    data = (data[order] - data[order[0]]) * scale
    coords = grid_coords(transform, *data.shape[1:])
    coords["time"] = np.array(times, dtype="datetime64[ns]")[order]
    disp = xr.DataArray(data.astype(np.float32), dims=("time", "y", "x"), coords=coords)
    disp = disp.rio.write_crs(mintpy_crs(attrs, str(path))).rio.write_transform(transform)
    height, height_file = _geometry_height(path, geometry, data.shape[1:])
    ds = canonical_dataset(
        disp,
        unit="mm",
        unit_from="file",
        wavelength_mm=SENTINEL1_WAVELENGTH_MM,
        source_files=[str(path)] + ([height_file] if height_file else []),
        label=str(path),
        dem=None if height is None else xr.DataArray(height, dims=("y", "x")),
    )
    ds = ds.assign_coords(bperp=("time", np.asarray(bperp, dtype=np.float32)[order]))
    ds["bperp"].attrs["units"] = "m"
    ds.attrs.update(input_units=attrs.get("UNIT", "m"), mintpy_metadata=json.dumps(attrs))
    return ds


def _georef_attrs(da: xr.DataArray) -> dict[str, str]:
    """MintPy ``X_FIRST``... ``EPSG`` attributes of a north-up grid with a CRS."""
    crs = da.rio.crs
    if crs is None:
        raise OutputError("dataset: has no CRS; MintPy files need a geocoded grid")
    t = da.rio.transform()
    geographic = crs.is_geographic
    out = {
        "X_FIRST": repr(t.c), "Y_FIRST": repr(t.f), "X_STEP": repr(t.a), "Y_STEP": repr(t.e),
        "X_UNIT": "degrees" if geographic else "meters",
        "Y_UNIT": "degrees" if geographic else "meters",
    }  # fmt: skip
    epsg = crs.to_epsg()
    if epsg is not None:
        out["EPSG"] = str(epsg)
        if 32601 <= epsg <= 32760 and epsg % 100 <= 60:
            out["UTM_ZONE"] = f"{epsg % 100}{'N' if epsg < 32700 else 'S'}"
    return out


def _date_strings(times: np.ndarray) -> list[str]:
    """``YYYYMMDD``, or ``YYYYMMDDTHHMM`` for all when any date has a time of day."""
    stamps = [datetime.fromisoformat(str(t)[:19]) for t in np.asarray(times, "datetime64[s]")]
    timed = any(t.hour or t.minute for t in stamps)
    return [t.strftime("%Y%m%dT%H%M" if timed else "%Y%m%d") for t in stamps]


def series_to_write(obj: xr.Dataset | xr.DataArray, what: str) -> xr.DataArray:
    """The (time, y, x) mm array of ``obj`` (``displacement`` or its only data variable)."""
    da = pick_array(obj)
    if set(da.dims) != {"time", "y", "x"}:
        raise OutputError(f"{what}: array {da.name!r} has dims {da.dims}; need (time, y, x)")
    units = da.attrs.get("units") or getattr(obj, "attrs", {}).get("units", "mm")
    if units != "mm":
        raise OutputError(f"{what}: array is in {units!r}; expected mm")
    da = da.transpose("time", "y", "x").sortby("time")
    if da.rio.crs is None and isinstance(obj, xr.Dataset) and obj.rio.crs is not None:
        da = da.rio.write_crs(obj.rio.crs)
    return da


def write_mintpy(
    ds_or_da: xr.Dataset | xr.DataArray,
    path: str | Path,
    *,
    template_attrs: dict[str, str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a (time, y, x) mm series as a MintPy ``timeseries`` HDF5 file, atomically.

    Parameters
    ----------
    ds_or_da : xarray.Dataset or xarray.DataArray
        Canonical Dataset (its ``displacement``, or its only data variable) or a DataArray,
        mm LOS positive towards the satellite, with a CRS.
    path : str or Path
        Output, e.g. ``timeseries_denoised.h5``.
    template_attrs : dict, optional
        Attributes to carry over (default: the ``mintpy_metadata`` attrs of the input, as
        ``open_mintpy`` stores them); grid, unit and date attributes are always rewritten.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        The file written: ``timeseries`` in metres relative to the first date, ``date``,
        ``bperp`` (the ``bperp`` coordinate, else zeros).
    """
    da = series_to_write(ds_or_da, str(path))
    if template_attrs is None:
        stored = da.attrs.get("mintpy_metadata") or ds_or_da.attrs.get("mintpy_metadata")
        template_attrs = json.loads(stored) if stored else {}
    dates = _date_strings(da["time"].values)
    values = np.asarray(da.values, dtype=np.float32)
    values = (values - values[0]) / np.float32(1000.0)
    bperp = da["bperp"].values if "bperp" in da.coords else np.zeros(len(dates))
    attrs = {str(k): str(v) for k, v in template_attrs.items()}
    attrs.update(_georef_attrs(da))
    wavelength_mm = getattr(ds_or_da, "attrs", {}).get("wavelength_mm")
    if "WAVELENGTH" not in attrs and wavelength_mm:
        attrs["WAVELENGTH"] = repr(float(wavelength_mm) / 1000.0)
    attrs.update(
        FILE_TYPE="timeseries", UNIT="m", LENGTH=str(values.shape[1]), WIDTH=str(values.shape[2]),
        REF_DATE=dates[0], START_DATE=dates[0], END_DATE=dates[-1],
        DATA_TYPE="float32", PROCESSOR=attrs.get("PROCESSOR", "insar-denoise"),
    )  # fmt: skip
    with atomic_output(path, overwrite) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("timeseries", data=values, chunks=True)
        f.create_dataset("date", data=np.array(dates, dtype=np.bytes_))
        f.create_dataset("bperp", data=np.asarray(bperp, dtype=np.float32))
        for key, value in attrs.items():
            f.attrs[key] = value
    return Path(path)


__all__ = ["is_mintpy_file", "open_mintpy", "write_mintpy"]
