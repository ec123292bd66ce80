"""Physical units of displacement inputs and their conversion to mm of LOS.

Inside insar-denoise displacement is millimetres along the line of sight (LOS),
positive = towards the satellite (MintPy's convention).

Unwrapped phase in radians converts with (MintPy, ``ifgram_stack``; Hanssen 2001, eq. 2.4.5)::

    d_mm = -phase_rad * wavelength_mm / (4 * pi)

A positive phase is an increase of range (motion away from the satellite), hence the minus.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from insar_denoise.errors import UnitsError

SENTINEL1_WAVELENGTH_MM = 55.465763
"""Sentinel-1 C-band radar wavelength (mm)."""

SIGN_CONVENTION = "LOS displacement, positive towards the satellite (MintPy)"

_ALIASES = {
    "mm": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "cm": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "m": ("m", "meter", "meters", "metre", "metres"),
    "rad": ("rad", "radian", "radians"),
}
_LOOKUP = {alias: unit for unit, aliases in _ALIASES.items() for alias in aliases}
_SCALE_TO_MM = {"mm": 1.0, "cm": 10.0, "m": 1000.0}

KNOWN_UNITS = tuple(_ALIASES)


def normalize_units(units: str, source: str = "units") -> str:
    """The canonical name (``mm``, ``cm``, ``m`` or ``rad``) of a unit string.

    Parameters
    ----------
    units : str
        A unit as written by a user or a file (case and spaces ignored).
    source : str
        What the unit came from (a file name or ``--units``), for the error message.

    Raises
    ------
    UnitsError
        For any other unit.
    """
    key = str(units).strip().lower()
    if key not in _LOOKUP:
        raise UnitsError(
            f"{source}: unknown displacement units {units!r}; "
            f"use one of {', '.join(KNOWN_UNITS)} (override with units=)"
        )
    return _LOOKUP[key]


def scale_to_mm(units: str, wavelength_mm: float = SENTINEL1_WAVELENGTH_MM) -> float:
    """Factor that turns a value in ``units`` into mm of LOS, positive towards the satellite.

    Parameters
    ----------
    units : str
        ``mm``, ``cm``, ``m`` or ``rad`` (aliases accepted).
    wavelength_mm : float
        Radar wavelength (mm), used for ``rad`` only. Default Sentinel-1 C band.

    Returns
    -------
    float
        1, 10, 1000, or ``-wavelength_mm / (4 pi)`` for radians.
    """
    unit = normalize_units(units)
    if unit == "rad":
        if not wavelength_mm or not math.isfinite(wavelength_mm) or wavelength_mm <= 0:
            raise UnitsError(f"wavelength: {wavelength_mm!r} mm is not a positive wavelength")
        return -float(wavelength_mm) / (4.0 * math.pi)
    return _SCALE_TO_MM[unit]


def to_mm(
    da: xr.DataArray, units: str, wavelength_mm: float = SENTINEL1_WAVELENGTH_MM
) -> xr.DataArray:
    """A float32 copy of ``da`` in mm of LOS (lazy when ``da`` is dask-backed).

    Parameters
    ----------
    da : xarray.DataArray
        Displacement or unwrapped phase.
    units : str
        Units of ``da``: ``mm``, ``cm``, ``m`` or ``rad``.
    wavelength_mm : float
        Radar wavelength (mm) for ``rad``.
    """
    factor = scale_to_mm(units, wavelength_mm)
    out = da.astype("float32")
    if factor != 1.0:
        out = out * np.float32(factor)
    return out.assign_attrs(units="mm")
