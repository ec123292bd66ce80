"""``ds.insar`` / ``da.insar``: an xarray accessor, a thin door onto ``product.denoise``.

Importing this module registers the accessors; it imports neither torch nor the engine
(those load on the first ``denoise`` call). The input is never modified: a new Dataset is
returned, as the CLI's ``run`` would produce (:func:`insar_denoise.product.denoise`, the
same in-memory product; ``reference="auto"`` refers it as ``run`` does).

Examples
--------
>>> import insar_denoise.accessor  # noqa: F401 (done by ``import insar_denoise``)
>>> out = ds.insar.denoise()                        # Dataset with displacement and dem
>>> out = ds.displacement.insar.denoise(dem=ds.dem, device="cpu")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import xarray as xr

from insar_denoise.errors import ConfigError, InputError
from insar_denoise.options import RunOptions

if TYPE_CHECKING:
    from insar_denoise.models.registry import ModelLike


def _denoise(ds: xr.Dataset, model: ModelLike, uncertainty: bool, kwargs: dict) -> xr.Dataset:
    """:func:`insar_denoise.product.denoise` with ``kwargs`` as
    :class:`~insar_denoise.options.RunOptions` (without a reference option the outputs are
    left as the engine gives them: ``reference="none"``)."""
    from insar_denoise.product import denoise

    kwargs = {"reference": "none", **kwargs, "uncertainty": uncertainty}
    if kwargs["reference"] is None:
        kwargs["reference"] = "none"
    try:
        options = RunOptions.from_kwargs("denoise", **kwargs)
    except ConfigError as exc:
        raise InputError(str(exc)) from None
    if options.reference not in ("auto", "none"):
        raise InputError(
            f"reference={options.reference!r}: use 'auto', or ref_yx / ref_lalo / ref_area"
        )
    if uncertainty and options.method != "model":
        raise InputError("uncertainty=True needs method='model' (test-time augmentation)")
    return denoise(ds, model, options)


def _as_dem(dem: Any, like: xr.DataArray) -> xr.DataArray:
    if isinstance(dem, xr.DataArray):
        return dem
    return xr.DataArray(dem, dims=("y", "x"), coords={"y": like["y"], "x": like["x"]})


@xr.register_dataset_accessor("insar")
class InsarDatasetAccessor:
    """``ds.insar``: denoise a canonical Dataset (``displacement``, ``dem``, ``valid``)."""

    def __init__(self, xarray_obj: xr.Dataset) -> None:
        self._obj = xarray_obj

    def denoise(
        self, dem: Any = None, model: ModelLike = None, uncertainty: bool = False, **kwargs: Any
    ) -> xr.Dataset:
        """Denoise (:func:`insar_denoise.product.denoise`); ``kwargs`` are
        :class:`~insar_denoise.options.RunOptions` fields.

        Parameters
        ----------
        dem : optional elevation ``(y, x)`` in m replacing/adding the Dataset's ``dem``.
        model : None (packaged default), name, path or a ``LoadedModel``.
        uncertainty : also return ``uncertainty``, the calibrated 1-sigma (mm, the 68 %
            half-width) of the cumulative map, and ``uncertainty_95``, its 95 % half-width
            (:func:`insar_denoise.trust.predict_with_uncertainty`, as ``run --uncertainty``).
        **kwargs : :class:`~insar_denoise.options.RunOptions` fields (``tile``, ``stride``,
            ``method``, ``detection``, ...), including ``ref_yx=(row, col)``,
            ``ref_lalo=(lat, lon)``, ``ref_area=(row0, row1, col0, col1)`` or
            ``reference="auto"`` (the input's own, else the valid-area median, as
            ``run``): the outputs are referred to it (:mod:`insar_denoise.reference`). Without
            them the outputs are as the engine gives them.

        Returns
        -------
        New Dataset with ``cumulative_deformation``, ``deformation`` and ``noise`` in mm (and
        ``uncertainty``, ``uncertainty_95``).
        """
        ds = self._obj
        if dem is not None:
            ds = ds.assign(dem=_as_dem(dem, ds["displacement"]))
        return _denoise(ds, model, uncertainty, kwargs)


@xr.register_dataarray_accessor("insar")
class InsarDataArrayAccessor:
    """``da.insar``: denoise a ``displacement(time, y, x)`` DataArray in mm."""

    def __init__(self, xarray_obj: xr.DataArray) -> None:
        self._obj = xarray_obj

    def denoise(
        self,
        dem: Any = None,
        model: ModelLike = None,
        valid: Any = None,
        uncertainty: bool = False,
        **kwargs: Any,
    ) -> xr.Dataset:
        """Denoise this displacement stack with elevation ``dem`` ``(y, x)`` in m.

        Parameters
        ----------
        dem : elevation ``(y, x)`` in m (DataArray or array); required for the model.
        model : None (packaged default), name, path or loaded model.
        valid : optional ``(y, x)`` bool mask of usable pixels.
        uncertainty : also return ``uncertainty`` and ``uncertainty_95`` (mm), as for
            ``ds.insar.denoise``.
        **kwargs : :class:`~insar_denoise.options.RunOptions` fields, as for ``ds.insar``.
        """
        da = self._obj
        if set(da.dims) != {"time", "y", "x"}:
            raise InputError(f"displacement must have dims (time, y, x), got {da.dims}")
        ds = xr.Dataset(coords=da.coords, attrs=dict(da.attrs))
        ds["displacement"] = da.variable
        if dem is not None:
            ds["dem"] = _as_dem(dem, da)
        if valid is not None:
            ds["valid"] = _as_dem(valid, da)
        return _denoise(ds, model, uncertainty, kwargs)
