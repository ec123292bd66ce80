"""``ds.insar`` / ``da.insar``: an xarray accessor, a thin door onto ``denoise_dataset``.

Importing this module registers the accessors; it imports neither torch nor the engine
(those load on the first ``denoise`` call). The input is never modified: a new Dataset is
returned, as the CLI's ``run`` would produce.

Examples
--------
>>> import insar_denoise.accessor  # noqa: F401 (done by ``import insar_denoise``)
>>> out = ds.insar.denoise()                        # Dataset with displacement and dem
>>> out = ds.displacement.insar.denoise(dem=ds.dem, device="cpu")
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from insar_denoise.errors import InputError


def _as_dem(dem: Any, like: xr.DataArray) -> xr.DataArray:
    if isinstance(dem, xr.DataArray):
        return dem
    return xr.DataArray(dem, dims=("y", "x"), coords={"y": like["y"], "x": like["x"]})


@xr.register_dataset_accessor("insar")
class InsarDatasetAccessor:
    """``ds.insar``: denoise a canonical Dataset (``displacement``, ``dem``, ``valid``)."""

    def __init__(self, xarray_obj: xr.Dataset) -> None:
        self._obj = xarray_obj

    def denoise(self, dem: Any = None, model: Any = None, **kwargs: Any) -> xr.Dataset:
        """Denoise; see :func:`insar_denoise.inference.denoise_dataset` for ``kwargs``.

        Parameters
        ----------
        dem : optional elevation ``(y, x)`` in m replacing/adding the Dataset's ``dem``.
        model : None (packaged default), name, path or loaded model.

        Returns
        -------
        New Dataset with ``cumulative``, ``deformation`` and ``noise`` in mm.
        """
        from insar_denoise.inference.engine import denoise_dataset

        ds = self._obj
        if dem is not None:
            ds = ds.assign(dem=_as_dem(dem, ds["displacement"]))
        return denoise_dataset(ds, model, **kwargs)


@xr.register_dataarray_accessor("insar")
class InsarDataArrayAccessor:
    """``da.insar``: denoise a ``displacement(time, y, x)`` DataArray in mm."""

    def __init__(self, xarray_obj: xr.DataArray) -> None:
        self._obj = xarray_obj

    def denoise(
        self, dem: Any = None, model: Any = None, valid: Any = None, **kwargs: Any
    ) -> xr.Dataset:
        """Denoise this displacement stack with elevation ``dem`` ``(y, x)`` in m.

        Parameters
        ----------
        dem : elevation ``(y, x)`` in m (DataArray or array); required for the model.
        model : None (packaged default), name, path or loaded model.
        valid : optional ``(y, x)`` bool mask of usable pixels.
        **kwargs : passed to :func:`insar_denoise.inference.denoise_dataset`.
        """
        from insar_denoise.inference.engine import denoise_dataset

        da = self._obj
        if set(da.dims) != {"time", "y", "x"}:
            raise InputError(f"displacement must have dims (time, y, x), got {da.dims}")
        ds = xr.Dataset(coords=da.coords, attrs=dict(da.attrs))
        ds["displacement"] = da.variable
        if dem is not None:
            ds["dem"] = _as_dem(dem, da)
        if valid is not None:
            ds["valid"] = _as_dem(valid, da)
        return denoise_dataset(ds, model, **kwargs)
