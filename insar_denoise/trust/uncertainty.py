"""Per-pixel uncertainty (1 sigma, mm) of the cumulative deformation by test-time augmentation.

The model is run on transformed copies of the input that the training distribution treats
as equally likely: the 8 flips / 90-degree rotations of the grid and, optionally, the sign
flip of the displacement (sources and atmosphere have random signs in training). Each output
is transformed back and its least-squares plane removed (the model's output is defined up to
offset and ramp); the spread (std over the copies) times a calibration factor is the 1-sigma
uncertainty, and their mean is the returned estimate.

Calibration (:func:`calibrate`): on the simulated benchmark scenes of ``evaluate`` (truth
known, :func:`insar_denoise.evaluation.benchmark.generate`), the factor ``s`` is the 68th
percentile of ``|truth - mean| / spread`` pooled over pixels (both de-planed, as the
evaluation's target), so that 68 % of the pixels fall within ``s x spread``; the coverage of
+/-1 sigma and +/-2 sigma is then measured on scenes of a different seed. The factor is stored
next to the model file as ``<model>.calibration.json`` (with the model's sha256) and read by
:func:`load_calibration`; without one, the factor is 1 (uncalibrated spread) and a warning
is logged. Window shifts and reference-date changes are not used: inference already
averages every window (stride 1) and re-references each window to its first date, so both
would leave the output unchanged.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from insar_denoise.inference import denoise_dataset
from insar_denoise.models.normalization import deplane

log = logging.getLogger(__name__)

#: the 8 elements of the dihedral group of the square: (number of 90-degree turns, flip)
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))
#: coverage levels (multiples of sigma) of the calibration curve
CURVE_LEVELS = np.round(np.arange(0.25, 3.01, 0.25), 2)


def augmentations(sign: bool = True) -> list[tuple[int, bool, float]]:
    """``(turns, flip, sign)`` of every test-time copy (8 or 16)."""
    return [(k, f, s) for s in ((1.0, -1.0) if sign else (1.0,)) for k, f in DIHEDRAL]


def _forward(a: np.ndarray | torch.Tensor, turns: int, flip: bool):
    """Apply a dihedral transform on the last two axes (numpy or torch)."""
    if isinstance(a, torch.Tensor):
        a = torch.flip(a, dims=(-1,)) if flip else a
        return torch.rot90(a, turns, dims=(-2, -1))
    a = a[..., ::-1] if flip else a
    return np.rot90(a, turns, axes=(-2, -1))


def _inverse(a: np.ndarray | torch.Tensor, turns: int, flip: bool):
    if isinstance(a, torch.Tensor):
        a = torch.rot90(a, -turns, dims=(-2, -1))
        return torch.flip(a, dims=(-1,)) if flip else a
    a = np.rot90(a, -turns, axes=(-2, -1))
    return a[..., ::-1] if flip else a


def _deplane_np(maps: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``(K, H, W)`` maps with their plane over ``ok`` removed (NaN outside ``ok``)."""
    t = torch.from_numpy(np.where(ok, maps, 0.0).astype(np.float64))
    mask = torch.from_numpy(np.broadcast_to(ok, maps.shape).copy())
    return deplane(t, mask).numpy()


def predict_with_uncertainty(
    ds: xr.Dataset,
    model: Any = None,
    *,
    factor: float | None = None,
    sign: bool = True,
    **denoise_kwargs: Any,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean cumulative deformation and its calibrated 1-sigma uncertainty (mm).

    Parameters
    ----------
    ds : canonical Dataset (see :func:`~insar_denoise.inference.denoise_dataset`).
    model : as for ``denoise_dataset``.
    factor : calibration factor; None reads it with :func:`load_calibration` (1 if none).
    sign : also use the sign-flipped copies (16 runs instead of 8).
    **denoise_kwargs : passed on (``tile``, ``overlap``, ``device``, ``batch_size``, ...).

    Returns
    -------
    (cumulative, sigma) : ``(y, x)`` float32 DataArrays in mm on the input grid; the
    cumulative map is the mean of the de-planed test-time copies.
    """
    if model is None or isinstance(model, str | Path):
        from insar_denoise.models import load_model

        model = load_model("default" if model is None else str(model))
    if factor is None:
        factor = float(load_calibration(model)["factor"])
    disp = np.asarray(ds["displacement"].transpose("time", "y", "x").values, np.float32)
    dem = np.asarray(ds["dem"].transpose("y", "x").values, np.float32)
    valid = None if "valid" not in ds else np.asarray(ds["valid"].values, bool)
    outs = []
    for turns, flip, s in augmentations(sign):
        d = np.ascontiguousarray(_forward(disp, turns, flip)) * s
        z = np.ascontiguousarray(_forward(dem, turns, flip))
        _, h, w = d.shape
        data = {"displacement": (("time", "y", "x"), d), "dem": (("y", "x"), z)}
        if valid is not None:
            data["valid"] = (("y", "x"), np.ascontiguousarray(_forward(valid, turns, flip)))
        aug = xr.Dataset(
            data,
            coords={
                "time": ds["time"].values,
                "y": np.arange(h, dtype=float)[::-1],
                "x": np.arange(w, dtype=float),
            },
        )
        res = denoise_dataset(aug, model, progress=False, return_noise=False, **denoise_kwargs)
        outs.append(s * _inverse(np.asarray(res["cumulative"].values, np.float64), turns, flip))
    stack = np.stack(outs)
    ok = np.isfinite(stack).all(0)
    stack = _deplane_np(stack, ok)
    mean = stack.mean(0)
    sigma = factor * stack.std(0, ddof=1)
    template = ds["dem"].transpose("y", "x")
    attrs = {"units": "mm", "calibration_factor": float(factor), "n_augmentations": len(outs)}
    cum = template.copy(data=mean.astype(np.float32)).assign_attrs(
        attrs, long_name="mean of test-time augmented cumulative deformation (de-planed)"
    )
    sig = template.copy(data=sigma.astype(np.float32)).assign_attrs(
        attrs, long_name="1-sigma uncertainty of the cumulative deformation"
    )
    return cum, sig


def tta_batch(
    model: Any, displacement: torch.Tensor, dem: torch.Tensor, sign: bool = True, batch: int = 16
) -> torch.Tensor:
    """``(K, B, H, W)`` outputs of ``model`` on the test-time copies of a batch of windows."""
    from insar_denoise.training.validation import predict_in_batches

    outs = []
    for turns, flip, s in augmentations(sign):
        d = _forward(displacement, turns, flip) * s
        z = _forward(dem, turns, flip)
        out = predict_in_batches(model, d.contiguous(), z.contiguous(), batch)
        outs.append(s * _inverse(out, turns, flip))
    return torch.stack(outs)


def _residuals(model: Any, n: int, seed: int, size: int, sign: bool) -> tuple[np.ndarray, ...]:
    """Pooled ``|truth - mean|`` and spread (mm) over the benchmark scenes of ``seed``."""
    from insar_denoise.evaluation import benchmark as bm

    window = int(model.metadata["window"])
    scenes = bm.generate(n, seed, size=size, n_dates=window)
    outs = tta_batch(model, scenes.displacement, scenes.dem, sign)
    mask = scenes.valid & torch.isfinite(scenes.cumulative) & torch.isfinite(outs).all(0)
    truth = deplane(scenes.cumulative.double(), mask)
    dep = torch.stack([deplane(o.double(), mask) for o in outs])
    resid = (truth - dep.mean(0)).abs()[mask].numpy()
    spread = dep.std(0, unbiased=True)[mask].numpy()
    return resid, spread


def coverage(resid: np.ndarray, spread: np.ndarray, factor: float, z: float = 1.0) -> float:
    """Share of pixels with ``|truth - mean| <= z x factor x spread``."""
    return float(np.mean(resid <= z * factor * spread))


def calibrate(
    model: Any,
    n: int = 10,
    seed: int = 0,
    *,
    test_seed: int | None = None,
    size: int = 64,
    sign: bool = True,
) -> dict[str, Any]:
    """Fit the factor on the benchmark scenes of ``seed`` and measure coverage on a fresh seed.

    Parameters
    ----------
    model : a ``LoadedModel`` (or anything with ``metadata["window"]`` and a
        ``(displacement, dem) -> cumulative`` call).
    n : benchmark scenes per amplitude level (6 levels, 0-10 mm, two noise levels).
    seed : seed of the fitting scenes; ``test_seed`` (default ``seed + 1``) of the test ones.
    size : scene side (px).
    sign : use the sign-flipped copies as well.

    Returns
    -------
    dict with ``factor``, ``coverage_1sigma_fit``, ``coverage_1sigma``, ``coverage_2sigma``
    (fresh seed), ``curve`` (levels, observed, expected), seeds, ``n_pixels`` and the model's
    ``model_id`` / ``sha256``.
    """
    test_seed = int(seed) + 1 if test_seed is None else int(test_seed)
    resid, spread = _residuals(model, n, seed, size, sign)
    ratio = resid / np.maximum(spread, 1e-9)
    factor = float(np.percentile(ratio, 100.0 * math.erf(1.0 / math.sqrt(2.0))))
    resid_t, spread_t = _residuals(model, n, test_seed, size, sign)
    observed = [coverage(resid_t, spread_t, factor, z) for z in CURVE_LEVELS]
    meta = getattr(model, "metadata", {}) or {}
    return {
        "factor": factor,
        "seed": int(seed),
        "test_seed": test_seed,
        "n_per_amplitude": int(n),
        "size_px": int(size),
        "n_augmentations": len(augmentations(sign)),
        "n_pixels": int(resid_t.size),
        "coverage_1sigma_fit": coverage(resid, spread, factor),
        "coverage_1sigma": coverage(resid_t, spread_t, factor, 1.0),
        "coverage_2sigma": coverage(resid_t, spread_t, factor, 2.0),
        "curve": {
            "levels_sigma": [float(z) for z in CURVE_LEVELS],
            "observed": observed,
            "expected": [math.erf(z / math.sqrt(2.0)) for z in CURVE_LEVELS],
        },
        "model_id": meta.get("model_id"),
        "sha256": meta.get("sha256"),
    }


def calibration_path(model_path: str | Path) -> Path:
    """``<dir>/<stem>.calibration.json`` next to a model file."""
    p = Path(model_path)
    return p.with_name(f"{p.stem}.calibration.json")


def save_calibration(
    calibration: dict[str, Any], path: str | Path, overwrite: bool = False
) -> Path:
    """Write the calibration JSON (and ``<path>.png``: the calibration curve) atomically."""
    from insar_denoise.io import atomic_output
    from insar_denoise.trust.figures import calibration_figure

    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(calibration, indent=1))
    curve = calibration["curve"]
    calibration_figure(
        np.asarray(curve["levels_sigma"]),
        np.asarray(curve["observed"]),
        path.with_suffix(".png"),
        overwrite,
    )
    return path


def load_calibration(model: Any = None) -> dict[str, Any]:
    """The stored calibration of ``model`` (None/name/path/``LoadedModel``).

    Returns ``{"factor": 1.0, "calibrated": False}`` (and logs a warning) when there is no
    file next to the model or its sha256 differs from the model's.
    """
    from insar_denoise.models.registry import resolve

    path = getattr(model, "path", None)
    if path is None and (model is None or isinstance(model, str | Path)):
        path = resolve("default" if model is None else model)
    meta = getattr(model, "metadata", None)
    if path is not None:
        cal_path = calibration_path(path)
        if cal_path.is_file():
            cal = json.loads(cal_path.read_text())
            sha = (meta or {}).get("sha256")
            if sha is None or cal.get("sha256") in (None, sha):
                return {**cal, "calibrated": True, "path": str(cal_path)}
            log.warning("%s: calibration is for another model (sha256 differs)", cal_path)
    log.warning("no uncertainty calibration for this model: sigma is the raw TTA spread")
    return {"factor": 1.0, "calibrated": False}


def write_uncertainty(
    ds: xr.Dataset,
    model: Any,
    path: str | Path,
    *,
    method: str = "model",
    overwrite: bool = False,
    tags: dict | None = None,
    **denoise_kwargs: Any,
) -> Path:
    """Write the 1-sigma map (mm, float32, input grid and CRS) of
    :func:`predict_with_uncertainty`."""
    from insar_denoise.errors import ConfigError
    from insar_denoise.io import write_output

    if method != "model":
        raise ConfigError(
            "--uncertainty needs --method model (test-time augmentation of the model)"
        )
    _, sigma = predict_with_uncertainty(ds, model, **denoise_kwargs)
    if ds.rio.crs is not None:
        sigma = sigma.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())
    tags = {**(tags or {}), "uncertainty": "1-sigma, mm, test-time augmentation, calibrated"}
    tags["calibration_factor"] = str(sigma.attrs["calibration_factor"])
    return write_output(sigma, path, overwrite=overwrite, tags=tags)
