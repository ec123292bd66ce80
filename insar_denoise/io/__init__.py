"""Reading and writing InSAR stacks: the only package of insar-denoise that touches files.

Canonical Dataset
-----------------
Every reader returns, and every later stage takes, one ``xarray.Dataset``:

``displacement(time, y, x)``
    float32, millimetres of line-of-sight (LOS) displacement, positive = towards the
    satellite (MintPy's convention). NaN where there is no data. Dask-backed (lazy) when
    read from files. Values are as in the input (time series are usually relative to
    their first date; the model only uses differences between dates).
``dem(y, x)``
    float32, metres, on the same grid (present when a DEM was given); NaN = DEM nodata.
``valid(y, x)``
    optional bool mask (True = pixel to use).
``time``
    ``datetime64[ns]``, strictly ascending (duplicates are refused).
``y``, ``x`` and ``spatial_ref``
    pixel-centre coordinates, ``y`` descending (north-up), CRS and transform through
    rioxarray (``ds.rio.crs``, ``ds.rio.transform()``).
attrs
    ``units="mm"``, ``sign_convention``, ``source_files`` (list of str),
    ``input_units`` (``mm``/``cm``/``m``/``rad``) and ``input_units_from``
    (``override``/``file``/``default``), and ``wavelength_mm`` for radian inputs.

Conversions: cm x 10, m x 1000, radians: ``d_mm = -phase * wavelength_mm / (4 pi)`` (a
positive phase is an increase of range, i.e. motion away from the satellite, as in MintPy).

Public API
----------
:func:`load_inputs` (any supported layout), :func:`open_stack`, :func:`open_interferograms`,
:func:`open_mintpy`, :func:`open_licsbas`, :func:`open_dem`, :func:`stack_info`,
:func:`write_geotiff`,
:func:`write_netcdf`, :func:`write_zarr`, :func:`write_output`, :func:`write_mintpy`,
:func:`write_licsbas`, :func:`atomic_output`.
All failures on bad input raise a subclass of :class:`insar_denoise.errors.InputError`
with one line naming the file; output problems raise
:class:`insar_denoise.errors.OutputError`.
"""

from __future__ import annotations

from insar_denoise.io.dem import open_dem
from insar_denoise.io.info import stack_info
from insar_denoise.io.layouts import LAYOUTS, detect_layout, load_inputs
from insar_denoise.io.licsbas import is_licsbas_file, open_licsbas, write_licsbas
from insar_denoise.io.mintpy import is_mintpy_file, open_mintpy, write_mintpy
from insar_denoise.io.network import (
    invert_network,
    is_interferogram_stack,
    open_interferograms,
    parse_pair_name,
)
from insar_denoise.io.stack import open_stack
from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM, SIGN_CONVENTION
from insar_denoise.io.writers import (
    atomic_output,
    write_geotiff,
    write_netcdf,
    write_output,
    write_zarr,
)

__all__ = [
    "LAYOUTS",
    "SENTINEL1_WAVELENGTH_MM",
    "SIGN_CONVENTION",
    "atomic_output",
    "detect_layout",
    "invert_network",
    "is_interferogram_stack",
    "is_licsbas_file",
    "is_mintpy_file",
    "load_inputs",
    "open_dem",
    "open_interferograms",
    "open_licsbas",
    "open_mintpy",
    "open_stack",
    "parse_pair_name",
    "stack_info",
    "write_geotiff",
    "write_licsbas",
    "write_mintpy",
    "write_netcdf",
    "write_output",
    "write_zarr",
]
