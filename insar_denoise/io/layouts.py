"""Recognise the layout of the inputs and open them as the canonical Dataset.

Layouts: a MintPy ``timeseries*.h5``, a LiCSBAS ``cum*.h5``, a stack of unwrapped
interferograms (date pairs in names or tags), or a displacement stack (GeoTIFFs per date, a
multi-band GeoTIFF, NetCDF/Zarr). ``run``, ``info``, ``batch`` and the demo use this.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from insar_denoise.errors import InputError
from insar_denoise.io.licsbas import is_licsbas_file, open_licsbas
from insar_denoise.io.mintpy import is_mintpy_file, open_mintpy
from insar_denoise.io.netcdf import is_zarr
from insar_denoise.io.network import is_interferogram_stack, open_interferograms
from insar_denoise.io.stack import NETCDF_SUFFIXES, open_stack
from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM

LAYOUTS = ("mintpy", "licsbas", "interferograms", "stack")


def _single_h5(paths: list[str]) -> str | None:
    if len(paths) == 1 and Path(paths[0]).suffix.lower() in (".h5", ".he5", ".hdf5"):
        return paths[0]
    return None


def detect_layout(inputs: Sequence[str | Path], pairs_pattern: str | None = None) -> str:
    """Name the layout of ``inputs``: ``mintpy``, ``licsbas``, ``interferograms`` or ``stack``."""
    paths = [str(p) for p in inputs]
    h5 = _single_h5(paths)
    if h5 is not None and Path(h5).is_file():
        if is_mintpy_file(h5):
            return "mintpy"
        if is_licsbas_file(h5):
            return "licsbas"
    if len(paths) == 1 and (is_zarr(paths[0]) or Path(paths[0]).suffix.lower() in NETCDF_SUFFIXES):
        return "stack"  # NetCDF/Zarr (also insar-denoise's own output), never interferograms
    if pairs_pattern is not None or (paths and is_interferogram_stack(paths)):
        return "interferograms"
    return "stack"


def load_inputs(
    inputs: Sequence[str | Path] | str | Path,
    *,
    dem: str | Path | None = None,
    units: str | None = None,
    wavelength_mm: float | None = None,
    variable: str | None = None,
    pairs_pattern: str | None = None,
    require_dem: bool = True,
) -> tuple[xr.Dataset, str]:
    """Open ``inputs`` in whatever supported layout they are, as the canonical Dataset.

    Returns the Dataset and the layout name (see :func:`detect_layout`). With
    ``require_dem``, a missing DEM is an :class:`InputError`.
    """
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not paths:
        raise InputError("no input files given")
    layout = detect_layout(paths, pairs_pattern)
    if layout == "mintpy":
        ds = open_mintpy(paths[0], geometry=dem)
    elif layout == "licsbas":
        ds = open_licsbas(paths[0], height=dem)
    elif layout == "interferograms":
        ds = open_interferograms(
            paths, dem=dem, pairs_pattern=pairs_pattern, units=units, wavelength_mm=wavelength_mm
        )
    else:
        ds = open_stack(
            paths,
            dem=dem,
            units=units,
            wavelength_mm=wavelength_mm or SENTINEL1_WAVELENGTH_MM,
            variable=variable,
        )
    if require_dem and "dem" not in ds.data_vars:
        first = paths[0]
        raise InputError(f"{first}: no DEM; pass --dem (elevation in metres, any GDAL format)")
    return ds, layout
