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

#: ``denoise_dataset`` options that also shape the uncertainty's model runs
_TTA_KWARGS = ("tile", "overlap", "window", "stride", "device", "batch_size", "chunk")


#: reference options of ``denoise`` (see :func:`insar_denoise.reference.resolve_reference`)
_REF_KWARGS = ("ref_yx", "ref_lalo", "ref_area")


def _denoise(ds: xr.Dataset, model: Any, uncertainty: bool, kwargs: dict) -> xr.Dataset:
    """``denoise_dataset``, plus the calibrated 1-sigma map as ``uncertainty`` if asked, then
    referred to ``ref_yx`` / ``ref_lalo`` / ``ref_area`` / ``reference="auto"`` if given."""
    from insar_denoise.inference.engine import denoise_dataset
    from insar_denoise.reference import apply_reference, resolve_reference

    refs = {k: kwargs.pop(k) for k in _REF_KWARGS if kwargs.get(k) is not None}
    auto = kwargs.pop("reference", None)
    if auto not in (None, "auto"):
        raise InputError(f"reference={auto!r}: use 'auto', or ref_yx / ref_lalo / ref_area")
    ref = resolve_reference(ds, **refs) if refs or auto == "auto" else None

    if uncertainty and kwargs.get("method", "model") != "model":
        raise InputError("uncertainty=True needs method='model' (test-time augmentation)")
    if uncertainty and (model is None or isinstance(model, str)):
        from insar_denoise.models import load_model

        model = load_model("default" if model is None else model)
    out = denoise_dataset(ds, model, **kwargs)
    if uncertainty and "uncertainty" not in out:  # whole-stack models predict their own
        from insar_denoise.trust.uncertainty import predict_with_uncertainty

        tta = {k: v for k, v in kwargs.items() if k in _TTA_KWARGS}
        _, sigma, half = predict_with_uncertainty(
            ds, model, estimate=out["cumulative_deformation"], **tta
        )
        out["uncertainty"] = sigma.assign_coords(y=out["y"], x=out["x"])
        out["uncertainty_95"] = half.assign_coords(y=out["y"], x=out["x"])
    return out if ref is None else apply_reference(out, ref)


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
        self, dem: Any = None, model: Any = None, uncertainty: bool = False, **kwargs: Any
    ) -> xr.Dataset:
        """Denoise; see :func:`insar_denoise.inference.denoise_dataset` for ``kwargs``.

        Parameters
        ----------
        dem : optional elevation ``(y, x)`` in m replacing/adding the Dataset's ``dem``.
        model : None (packaged default), name, path or loaded model.
        uncertainty : also return ``uncertainty``, the calibrated 1-sigma (mm, the 68 %
            half-width) of the cumulative map, and ``uncertainty_95``, its 95 % half-width
            (:func:`insar_denoise.trust.predict_with_uncertainty`, as ``run --uncertainty``).
        **kwargs : passed to :func:`insar_denoise.inference.denoise_dataset`, and
            ``ref_yx=(row, col)``, ``ref_lalo=(lat, lon)``, ``ref_area=(row0, row1, col0,
            col1)`` or ``reference="auto"`` (the input's own, else the valid-area median, as
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
        model: Any = None,
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
        **kwargs : passed to :func:`insar_denoise.inference.denoise_dataset`.
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
