"""The canonical Dataset built from numpy arrays (simulated scenes, test stacks, mosaics)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from insar_denoise.io.units import SIGN_CONVENTION


def dataset_from_arrays(
    displacement: Any,
    dem: Any = None,
    *,
    times: Any,
    valid: Any = None,
    spacing: float = 1.0,
    origin: tuple[float, float] = (0.0, 0.0),
    half_pixel: bool = True,
    crs: str | None = None,
    extra: dict[str, Any] | None = None,
) -> xr.Dataset:
    """Canonical Dataset of ``displacement (time, y, x)`` in mm and ``dem (y, x)`` in metres.

    Coordinates: ``x = origin[0] + (j + o) * spacing`` and ``y = origin[1] - (i + o) * spacing``
    (north up) with ``o = 0.5`` (pixel centres, ``origin`` = upper-left corner) if
    ``half_pixel`` else 0; ``time`` as ``datetime64[ns]``. Arrays keep their dtype (numpy or
    dask).

    Parameters
    ----------
    displacement, dem : array
        ``(T, H, W)`` mm and ``(H, W)`` m (``dem`` optional).
    times : array of datetime64
        The ``T`` dates.
    valid : array, optional
        ``(H, W)`` bool mask.
    spacing, origin, half_pixel : see above.
    crs : str, optional
        Written with rioxarray when given.
    extra : dict, optional
        More mm variables by name (``(T, H, W)`` or ``(H, W)``), placed after ``displacement``.
    """
    _, height, width = displacement.shape
    offset = 0.5 if half_pixel else 0.0
    mm = {"units": "mm"}
    data = {"displacement": (("time", "y", "x"), displacement, mm)}
    for name, values in (extra or {}).items():
        data[name] = ((("time",) if values.ndim == 3 else ()) + ("y", "x"), values, mm)
    if dem is not None:
        data["dem"] = (("y", "x"), dem, {"units": "m"})
    if valid is not None:
        data["valid"] = (("y", "x"), valid)
    ds = xr.Dataset(
        data,
        coords={
            "time": np.asarray(times).astype("datetime64[ns]"),
            "y": origin[1] - (np.arange(height) + offset) * spacing,
            "x": origin[0] + (np.arange(width) + offset) * spacing,
        },
        attrs={"units": "mm", "sign_convention": SIGN_CONVENTION},
    )
    if crs is not None:
        import rioxarray  # noqa: F401  (registers .rio)

        ds = ds.rio.write_crs(crs)
    return ds
