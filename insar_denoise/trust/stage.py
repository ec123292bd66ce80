"""The trust stage of a product: the one entry the products call (:func:`assess`).

It runs the out-of-distribution checks (:func:`.qc.qc_checks`, and
:func:`.qc.unwrapping_findings` on the unwrapping errors the engine removed,
:func:`.qc.relief_findings` on its relief check, :func:`.qc.creep_model_findings` and
:func:`.qc.fault_trace_findings` on its creep model and fault-trace step,
:func:`.date_correlation.date_correlation_findings` on what the run left in the stack),
raises their findings as ``OutOfDistributionWarning`` and records them in the
``insar_denoise_qc_warnings`` attribute, and adds the calibrated uncertainty of a window model
when asked (whole-stack models predict their own, :func:`.uncertainty.predict_with_uncertainty`
otherwise).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import xarray as xr

from insar_denoise.errors import ConfigError
from insar_denoise.models.registry import LoadedModel
from insar_denoise.options import RunOptions
from insar_denoise.trust.date_correlation import date_correlation_findings
from insar_denoise.trust.qc import (
    QCWarning,
    creep_model_findings,
    emit_warnings,
    fault_trace_findings,
    qc_checks,
    relief_findings,
    unwrapping_findings,
)

#: result attribute holding the QC findings (a JSON list of ``code``/``message``/``value``)
QC_ATTR = "insar_denoise_qc_warnings"


def assess(
    ds: xr.Dataset, result: xr.Dataset, model: LoadedModel | None, options: RunOptions
) -> xr.Dataset:
    """Trust stage of :func:`insar_denoise.product.denoise` (``result`` is modified in place).

    Parameters
    ----------
    ds : the input Dataset; ``result`` : ``denoise_dataset``'s output on it (unreferenced).
    model : the model used (None for a classical method).
    options : ``uncertainty``: add ``uncertainty`` and ``uncertainty_95`` (mm).

    Returns
    -------
    ``result`` with the QC attribute (when anything was found) and the uncertainty.
    """
    found = qc_checks(ds, None if model is None else model.metadata)
    found += unwrapping_findings(result.attrs)
    found += relief_findings(result.attrs) + creep_model_findings(result)
    found += fault_trace_findings(result)
    if model is not None:  # the engine's noise maps judge its detections
        found += date_correlation_findings(ds, result)
    emit_warnings(found, stacklevel=3)
    if found:
        result.attrs[QC_ATTR] = json.dumps([asdict(w) for w in found], default=float)
    if options.uncertainty and "uncertainty" not in result:
        if model is None:
            raise ConfigError("--uncertainty needs --method model")
        from insar_denoise.trust.uncertainty import predict_with_uncertainty

        _, sigma, half = predict_with_uncertainty(
            ds, model, estimate=result["cumulative_deformation"], **options.tta_kwargs()
        )
        result["uncertainty"] = sigma.assign_coords(y=result["y"], x=result["x"])
        result["uncertainty_95"] = half.assign_coords(y=result["y"], x=result["x"])
    return result


def qc_findings(result: xr.Dataset) -> list[QCWarning]:
    """The QC findings :func:`assess` recorded on ``result`` (empty when none)."""
    return [QCWarning(**item) for item in json.loads(result.attrs.get(QC_ATTR, "[]"))]
