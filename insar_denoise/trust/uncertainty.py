"""Per-pixel uncertainty (mm) of the cumulative deformation: two calibrated bands.

Features (maps, mm): the local RMS of what the model removed from the raw cumulative map
(the atmosphere it saw), the local RMS and the magnitude of the recovered signal (misses
scale with the signal), a floor, and optionally the spread of test-time copies (the 8 flips
/ 90-degree rotations of the grid, times the sign flip, each transformed back and de-planed:
``augment``) and the 1-sigma map of a variance head (:mod:`.sigma_head`). A band is
``sqrt(sum_k (c_k f_k)^2)``.

The model is conservative, so its large errors are signals it leaves out: the error
distribution is a mixture, heavier-tailed than any Gaussian with a per-pixel sigma (a sigma
whose +/-1 band holds 68 % holds about 85 %, not 95 %, within +/-2). So two bands are fitted,
each on its own (:func:`fit_band`: quantile regression for the shape, then a split-conformal
factor), on the simulated benchmark scenes of ``evaluate`` (truth known): the 68.27 %
half-width (reported as 1 sigma) and the 95.45 % half-width. The coverage on scenes of a fresh
seed is stored with them in ``<model>.calibration.json`` (tied to the model's sha256) and
read by :func:`load_calibration`; without one, sigma is the raw TTA spread and the 95 % band
is 2 sigma (a warning is logged). The calibration also records whether it is for the model's
single run (what ``run`` writes; the default) or the mean of the test-time copies, and
:func:`predict_with_uncertainty` follows it. Window shifts and reference-date changes are
not used as augmentations: inference already averages every window (stride 1) and
re-references each window to its first date.

This module predicts the bands of a scene (:func:`predict_with_uncertainty`) and writes them
(:func:`write_uncertainty`); the test-time copies are in :mod:`.tta`, the band model (features,
fit, scores) in :mod:`.bands`, the calibration and its files in :mod:`.calibration` (their
public names are importable from here too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from insar_denoise.inference import denoise_dataset
from insar_denoise.io.dataset import dataset_from_arrays
from insar_denoise.models.normalization import deplane_np
from insar_denoise.models.registry import LoadedModel, ModelLike, as_model

# The band model, the test-time copies and the calibration live in their own modules
# (:mod:`.bands`, :mod:`.tta`, :mod:`.calibration`); names imported from here are re-exported.
from insar_denoise.trust.bands import TERMS, combine, features, fit_band, head_feature  # noqa: F401
from insar_denoise.trust.calibration import (  # noqa: F401
    _residuals,
    benchmark_uncertainty,
    calibrate,
    calibration_path,
    load_calibration,
    load_sigma_head,
    save_calibration,
    scene_residuals,
)
from insar_denoise.trust.tta import DIHEDRAL, _forward, _inverse, augmentations, tta_batch  # noqa: F401


def _band_models(
    model: LoadedModel,
    factor: float | None,
    coefficients: dict[str, float] | None,
    augment: bool | None,
) -> tuple[dict[str, float], dict[str, float] | None, bool]:
    """The 1-sigma and 95 % coefficients (None: 2 sigma) and whether to run the test-time
    copies: from ``factor``, ``coefficients`` or else the model's calibration."""
    cal_augment, coefficients_95 = True, None
    if factor is not None:
        coefficients = {"spread": float(factor)}
    elif coefficients is None:
        cal = load_calibration(model)
        coefficients, cal_augment = cal["coefficients"], bool(cal.get("augment", True))
        coefficients_95 = cal.get("coefficients_95")
    augment = cal_augment if augment is None else bool(augment)
    return coefficients, coefficients_95, augment


def _copies(
    ds: xr.Dataset,
    model: LoadedModel,
    disp: np.ndarray,
    dem: np.ndarray,
    sign: bool,
    augment: bool,
    estimate: xr.DataArray | None,
    denoise_kwargs: dict[str, Any],
) -> list[np.ndarray]:
    """The model's cumulative maps ``(H, W)`` on the input grid: each test-time copy run and
    transformed back (without ``augment``: the single run, ``estimate`` when given)."""
    valid = None if "valid" not in ds else np.asarray(ds["valid"].values, bool)
    outs = []
    if not augment:
        if estimate is None:
            kw = {"progress": False, "return_noise": False, **denoise_kwargs}
            estimate = denoise_dataset(ds, model, **kw)["cumulative_deformation"]
        outs.append(np.asarray(estimate.transpose("y", "x").values, np.float64))
    for turns, flip, s in augmentations(sign, augment)[len(outs) :]:
        d = np.ascontiguousarray(_forward(disp, turns, flip)) * s
        z = np.ascontiguousarray(_forward(dem, turns, flip))
        v = None if valid is None else np.ascontiguousarray(_forward(valid, turns, flip))
        origin = (0.0, d.shape[1] - 1.0)  # y = h-1 .. 0, x = 0 .. w-1 (unit pixels)
        aug = dataset_from_arrays(
            d, z, times=ds["time"].values, valid=v, origin=origin, half_pixel=False
        )
        res = denoise_dataset(aug, model, progress=False, return_noise=False, **denoise_kwargs)
        outs.append(
            s * _inverse(np.asarray(res["cumulative_deformation"].values, np.float64), turns, flip)
        )
    return outs


def _feature_maps(
    ds: xr.Dataset,
    model: LoadedModel,
    outs: list[np.ndarray],
    disp: np.ndarray,
    dem: np.ndarray,
    uses_head: bool,
) -> tuple[np.ndarray, np.ndarray, dict[str, torch.Tensor]]:
    """Valid pixels, the mean of the de-planed copies and the :data:`TERMS` features (and
    the variance head's map when a band uses it) of one scene."""
    stack = np.stack(outs)
    ok = np.isfinite(stack).all(0)
    stack = deplane_np(stack.astype(np.float64), ok)
    mean = stack.mean(0)
    spread = stack.std(0, ddof=1) if len(stack) > 1 else np.zeros_like(mean)
    raw = deplane_np((disp[-1] - disp[0]).astype(np.float64), ok)
    t_ok = torch.from_numpy(ok & np.isfinite(raw))[None]
    head_map = None
    if uses_head:
        from insar_denoise.inference.engine import times_in_days

        head, _ = load_sigma_head(model, required=True)
        head_map = head_feature(
            head, mean, disp, times_in_days(ds["time"].values), dem, ok & np.isfinite(raw)
        )
        head_map = torch.from_numpy(np.nan_to_num(head_map))[None]
    feats = features(
        torch.from_numpy(np.nan_to_num(spread))[None],
        torch.from_numpy(np.nan_to_num(raw - mean))[None],
        torch.from_numpy(np.nan_to_num(mean))[None],
        t_ok,
        head_map,
    )
    return ok, mean, feats


def _as_maps(
    template: xr.DataArray,
    maps: tuple[np.ndarray, np.ndarray, np.ndarray],
    coefficients: dict[str, float],
    coefficients_95: dict[str, float] | None,
    n_copies: int,
    augment: bool,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """The mean, 1-sigma and 95 % half-width maps as float32 DataArrays on ``template``'s
    grid, with the band models in their attributes."""
    attrs = {
        "units": "mm",
        "calibration_factor": float(coefficients.get("spread", 0.0)),
        "sigma_model": json.dumps(coefficients),
        "halfwidth_95_model": json.dumps(coefficients_95 or {"sigma": 2.0}),
        "n_augmentations": n_copies,
    }
    name = (
        "mean of test-time augmented cumulative deformation"
        if augment
        else "cumulative deformation"
    )
    long_names = (
        f"{name} (de-planed)",
        "1-sigma uncertainty of the cumulative deformation (68 % half-width)",
        "95 % half-width of the cumulative deformation",
    )
    return tuple(  # type: ignore[return-value]
        template.copy(data=m.astype(np.float32)).assign_attrs(attrs, long_name=ln)
        for m, ln in zip(maps, long_names, strict=True)
    )


def predict_with_uncertainty(
    ds: xr.Dataset,
    model: ModelLike = None,
    *,
    factor: float | None = None,
    coefficients: dict[str, float] | None = None,
    sign: bool = True,
    augment: bool | None = None,
    estimate: xr.DataArray | None = None,
    **denoise_kwargs: Any,
) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """Mean cumulative deformation and its calibrated 1-sigma uncertainty (mm).

    Parameters
    ----------
    ds : canonical Dataset (see :func:`~insar_denoise.inference.denoise_dataset`).
    model : as for ``denoise_dataset``.
    factor : sigma = factor x spread (the other terms off); with ``coefficients`` None too,
        the model's calibration is read with :func:`load_calibration`.
    coefficients : coefficients of :data:`TERMS` (as a calibration file holds).
    sign : also use the sign-flipped copies (16 runs instead of 8).
    augment : run the test-time copies (default: as the calibration was fitted; with
        ``factor``: yes). Without, sigma is that of the model's own (single-run) output.
    estimate : without ``augment``: the model's cumulative map if already computed (e.g. by
        ``run``), so that the model is not run again.
    **denoise_kwargs : passed on (``tile``, ``overlap``, ``stride``, ``device``, ...).

    Returns
    -------
    (cumulative, sigma, halfwidth_95) : ``(y, x)`` float32 DataArrays in mm on the input
    grid; the cumulative map is the mean of the de-planed test-time copies (the de-planed
    model output without ``augment``); ``sigma`` is the half-width of the 68 % interval and
    ``halfwidth_95`` that of the 95 % interval (calibrated separately: the errors are
    heavier-tailed than a Gaussian, so it is wider than 2 sigma; ``2 sigma`` without a
    calibration).
    """
    model = as_model(model)
    coefficients, coefficients_95, augment = _band_models(model, factor, coefficients, augment)
    uses_head = bool(coefficients.get("head") or (coefficients_95 or {}).get("head"))
    disp_da = ds["displacement"].transpose("time", "y", "x")
    if not (augment or uses_head):  # only the first and last dates are read
        disp_da = disp_da.isel(time=[0, -1])
    disp = np.asarray(disp_da.values, np.float32)
    dem = np.asarray(ds["dem"].transpose("y", "x").values, np.float32)
    outs = _copies(ds, model, disp, dem, sign, augment, estimate, denoise_kwargs)
    ok, mean, feats = _feature_maps(ds, model, outs, disp, dem, uses_head)
    sigma = np.where(ok, combine(feats, coefficients)[0].numpy(), np.nan)
    if coefficients_95 is None:  # Gaussian reading: the 95 % half-width is 2 sigma
        half = 2.0 * sigma
    else:
        half = np.where(ok, combine(feats, coefficients_95)[0].numpy(), np.nan)
    template = ds["dem"].transpose("y", "x")
    return _as_maps(
        template, (mean, sigma, half), coefficients, coefficients_95, len(outs), augment
    )


#: band names of the uncertainty GeoTIFF
UNCERTAINTY_BANDS = ("sigma_68", "halfwidth_95")


def write_uncertainty(
    ds: xr.Dataset,
    result: xr.Dataset,
    path: str | Path,
    *,
    overwrite: bool = False,
    tags: dict | None = None,
) -> Path:
    """Write ``result``'s ``uncertainty`` and ``uncertainty_95`` (mm, float32, input grid and
    CRS; :func:`insar_denoise.product.denoise` with ``uncertainty``): band 1 ``sigma_68``
    (1 sigma, the 68 % half-width), band 2 ``halfwidth_95``.
    """
    from insar_denoise.io import write_output
    from insar_denoise.io.units import SIGN_CONVENTION

    sigma, half = result["uncertainty"], result["uncertainty_95"]
    if "n_augmentations" not in sigma.attrs:  # whole-stack models predict their own
        # one run of the model, no test-time copies (as the window model's single run)
        sigma = sigma.assign_attrs(n_augmentations=1, sigma_model="model head")
        sigma.attrs["halfwidth_95_model"] = half.attrs.get("calibration", "")
    bands = xr.concat([sigma, half], dim="band").assign_coords(band=list(UNCERTAINTY_BANDS))
    bands = bands.assign_attrs(
        units="mm", sign_convention=ds.attrs.get("sign_convention", SIGN_CONVENTION)
    )
    if ds.rio.crs is not None:
        bands = bands.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())
    tags = {
        **(tags or {}),
        "uncertainty": "band 1: 1-sigma (68 % half-width), band 2: 95 % half-width; mm, "
        "calibrated on the simulated benchmark",
        "n_augmentations": str(sigma.attrs["n_augmentations"]),
        "sigma_model": sigma.attrs["sigma_model"],
        "halfwidth_95_model": sigma.attrs["halfwidth_95_model"],
    }
    return write_output(bands, path, overwrite=overwrite, tags=tags)
