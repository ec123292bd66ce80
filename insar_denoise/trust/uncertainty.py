"""Per-pixel uncertainty (1 sigma, mm) of the cumulative deformation by test-time augmentation.

The model is run on transformed copies of the input that the training distribution treats
as equally likely: the 8 flips / 90-degree rotations of the grid and, optionally, the sign
flip of the displacement (sources and atmosphere have random signs in training). Each output
is transformed back and its least-squares plane removed (the model's output is defined up to
offset and ramp); the spread (std over the copies) times a calibration factor is the 1-sigma
uncertainty, and their mean is the returned estimate.

Calibration (:func:`calibrate`): the TTA spread alone under-covers the large errors (the
model is nearly equivariant, so its copies agree even where all of them are wrong). The
1-sigma map is therefore ``sqrt(sum_k (c_k f_k)^2)`` over the features ``f`` of :data:`TERMS`:
the spread, the local RMS of what the model removed from the raw cumulative map (the
atmosphere it saw), the local RMS and the magnitude of the recovered signal (misses scale
with the signal), and a floor (mm). The coefficients ``c`` are fitted on the simulated
benchmark scenes of ``evaluate`` (truth known) so that the shares of pixels inside +/-1 and
+/-2 sigma are as close as possible to 68.27 % and 95.45 % (seeded random search, then
refinement), and the coverage curve is measured on scenes of a different seed. They are
stored next to the model as ``<model>.calibration.json`` (with its sha256) and read by
:func:`load_calibration`; without one, sigma is the raw spread and a warning is logged.
Window shifts and reference-date changes are not used: inference already
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
#: Gaussian window (std, pixels) of the local RMS features
NOISE_WINDOW_PX = 8.0
#: features of the 1-sigma model, in the order of its coefficients
TERMS = ("spread", "noise", "signal_rms", "signal", "floor")
#: search box of each coefficient (the floor in mm)
COEF_RANGES = {
    "spread": (0.1, 30.0),
    "noise": (0.005, 1.0),
    "signal_rms": (0.01, 5.0),
    "signal": (0.01, 5.0),
    "floor": (0.01, 3.0),
}
ONE_SIGMA = math.erf(1.0 / math.sqrt(2.0))
TWO_SIGMA = math.erf(2.0 / math.sqrt(2.0))


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


def local_noise(removed: torch.Tensor, ok: torch.Tensor, window_px: float = NOISE_WINDOW_PX):
    """Local RMS (mm) of ``removed`` ``(B, H, W)`` over ``ok`` pixels, Gaussian-weighted."""
    from insar_denoise.baselines import gaussian_filter_nan

    sq = torch.where(ok, removed.double() ** 2, torch.nan)
    local = gaussian_filter_nan(sq, window_px, keep_nan=False)
    overall = torch.nanmean(sq.flatten(1), dim=1).nan_to_num(0.0).view(-1, 1, 1)
    return torch.where(torch.isfinite(local), local, overall).sqrt()


def features(
    spread: torch.Tensor, removed: torch.Tensor, mean: torch.Tensor, ok: torch.Tensor
) -> dict[str, torch.Tensor]:
    """The :data:`TERMS` maps ``(B, H, W)`` from the TTA spread and mean and the removed noise."""
    zero = torch.zeros((), dtype=torch.float64)
    mean = torch.where(ok, mean.double(), zero)
    return {
        "spread": spread.double(),
        "noise": local_noise(torch.where(ok, removed.double(), zero), ok),
        "signal_rms": local_noise(mean, ok),
        "signal": mean.abs(),
        "floor": torch.ones_like(mean),
    }


def combine(feats: dict, coefs: dict[str, float]):
    """1-sigma map ``sqrt(sum_k (c_k f_k)^2)`` (numpy or torch features)."""
    total = feats["spread"] * 0.0
    for name, c in coefs.items():
        total = total + (float(c) * feats[name]) ** 2
    return total**0.5


def predict_with_uncertainty(
    ds: xr.Dataset,
    model: Any = None,
    *,
    factor: float | None = None,
    coefficients: dict[str, float] | None = None,
    sign: bool = True,
    **denoise_kwargs: Any,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Mean cumulative deformation and its calibrated 1-sigma uncertainty (mm).

    Parameters
    ----------
    ds : canonical Dataset (see :func:`~insar_denoise.inference.denoise_dataset`).
    model : as for ``denoise_dataset``.
    factor : sigma = factor x spread (the other terms off); with ``coefficients`` None too,
        the model's calibration is read with :func:`load_calibration`.
    coefficients : coefficients of :data:`TERMS` (as a calibration file holds).
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
    if factor is not None:
        coefficients = {"spread": float(factor)}
    elif coefficients is None:
        coefficients = load_calibration(model)["coefficients"]
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
    spread = stack.std(0, ddof=1)
    raw = _deplane_np((disp[-1] - disp[0]).astype(np.float64)[None], ok)[0]
    t_ok = torch.from_numpy(ok & np.isfinite(raw))[None]
    feats = features(
        torch.from_numpy(np.nan_to_num(spread))[None],
        torch.from_numpy(np.nan_to_num(raw - mean))[None],
        torch.from_numpy(np.nan_to_num(mean))[None],
        t_ok,
    )
    sigma = np.where(ok, combine(feats, coefficients)[0].numpy(), np.nan)
    template = ds["dem"].transpose("y", "x")
    attrs = {
        "units": "mm",
        "calibration_factor": float(coefficients.get("spread", 0.0)),
        "sigma_model": json.dumps(coefficients),
        "n_augmentations": len(outs),
    }
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


def _residuals(model: Any, n: int, seed: int, size: int, sign: bool) -> tuple[np.ndarray, dict]:
    """Pooled ``|truth - mean|`` and the :data:`TERMS` features over the scenes of ``seed``."""
    from insar_denoise.evaluation import benchmark as bm

    window = int(model.metadata["window"])
    scenes = bm.generate(n, seed, size=size, n_dates=window)
    outs = tta_batch(model, scenes.displacement, scenes.dem, sign)
    mask = scenes.valid & torch.isfinite(scenes.cumulative) & torch.isfinite(outs).all(0)
    truth = deplane(scenes.cumulative.double(), mask)
    dep = torch.stack([deplane(o.double(), mask) for o in outs])
    mean = dep.mean(0)
    disp = scenes.displacement.double()
    raw = deplane(torch.nan_to_num(disp[:, -1] - disp[:, 0]), mask)
    feats = features(dep.std(0, unbiased=True), raw - mean, mean, mask)
    resid = (truth - mean).abs()[mask].numpy()
    return resid, {k: v[mask].numpy() for k, v in feats.items()}


def coverage(resid: np.ndarray, sigma: np.ndarray, z: float = 1.0) -> float:
    """Share of pixels with ``|truth - mean| <= z x sigma``."""
    return float(np.mean(resid <= z * sigma))


def _misfit(resid: np.ndarray, feats: dict, coefs: dict[str, float]) -> float:
    """Worst distance of the +/-1 and +/-2 sigma coverage from 68.27 % and 95.45 %."""
    sigma = combine(feats, coefs)
    return max(
        abs(coverage(resid, sigma, 1.0) - ONE_SIGMA), abs(coverage(resid, sigma, 2.0) - TWO_SIGMA)
    )


def fit_coefficients(
    resid: np.ndarray, feats: dict, n_random: int = 600, seed: int = 0
) -> dict[str, float]:
    """Coefficients of :data:`TERMS` minimising :func:`_misfit` (random search + refinement)."""
    rng = np.random.default_rng(seed)
    lo = np.log([COEF_RANGES[t][0] for t in TERMS])
    hi = np.log([COEF_RANGES[t][1] for t in TERMS])
    best, best_err = {"spread": 1.0}, _misfit(resid, feats, {"spread": 1.0})
    for _ in range(n_random):
        c = np.exp(rng.uniform(lo, hi))
        c[rng.random(len(TERMS)) < 0.3] = 0.0
        coefs = dict(zip(TERMS, c.tolist(), strict=True))
        err = _misfit(resid, feats, coefs)
        if err < best_err:
            best, best_err = coefs, err
    for step in (1.5, 1.2, 1.05):  # coordinate refinement in log steps
        for _ in range(3):
            for name in TERMS:
                for mult in (step, 1.0 / step):
                    trial = {**best, name: best.get(name, 0.0) * mult}
                    err = _misfit(resid, feats, trial)
                    if err < best_err:
                        best, best_err = trial, err
    return {t: float(best.get(t, 0.0)) for t in TERMS}


def calibrate(
    model: Any,
    n: int = 10,
    seed: int = 0,
    *,
    test_seed: int | None = None,
    size: int = 64,
    sign: bool = True,
    fit_seeds: int = 3,
) -> dict[str, Any]:
    """Fit the sigma model on the benchmark scenes of ``seed``; measure coverage on a fresh seed.

    Parameters
    ----------
    model : a ``LoadedModel`` (or anything with ``metadata["window"]`` and a
        ``(displacement, dem) -> cumulative`` call).
    n : benchmark scenes per amplitude level (0-20 mm); a multiple of 12 gives every
        stratum (source x DEM x noise level) the same share, smaller values leave some out.
    seed : the fitting scenes use seeds ``seed ... seed + fit_seeds - 1`` (pooled);
        ``test_seed`` (default ``seed + 100``) gives the fresh test scenes.
    size : scene side (px).
    sign : use the sign-flipped copies as well.

    Returns
    -------
    dict with ``coefficients`` (of :data:`TERMS`), ``factor`` (the spread's), the fit and fresh-seed
    coverages ``coverage_1sigma(_fit)`` and ``coverage_2sigma(_fit)``,
    ``curve`` (levels, observed, expected; fresh seed), seeds, ``n_pixels`` and the model's
    ``model_id`` / ``sha256``.
    """
    test_seed = int(seed) + 100 if test_seed is None else int(test_seed)
    parts = [_residuals(model, n, int(seed) + i, size, sign) for i in range(max(1, fit_seeds))]
    resid = np.concatenate([p[0] for p in parts])
    feats = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    coefs = fit_coefficients(resid, feats, seed=seed)
    resid_t, feats_t = _residuals(model, n, test_seed, size, sign)
    sigma_fit, sigma_t = combine(feats, coefs), combine(feats_t, coefs)
    observed = [coverage(resid_t, sigma_t, z) for z in CURVE_LEVELS]
    meta = getattr(model, "metadata", {}) or {}
    return {
        "factor": coefs["spread"],
        "coefficients": coefs,
        "window_px": NOISE_WINDOW_PX,
        "seed": int(seed),
        "fit_seeds": int(max(1, fit_seeds)),
        "test_seed": test_seed,
        "n_per_amplitude": int(n),
        "size_px": int(size),
        "n_augmentations": len(augmentations(sign)),
        "n_pixels": int(resid_t.size),
        "coverage_1sigma_fit": coverage(resid, sigma_fit, 1.0),
        "coverage_2sigma_fit": coverage(resid, sigma_fit, 2.0),
        "coverage_1sigma": coverage(resid_t, sigma_t, 1.0),
        "coverage_2sigma": coverage(resid_t, sigma_t, 2.0),
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

    Returns ``{"coefficients": {"spread": 1.0}, "calibrated": False}`` (and logs a
    warning) when there is no file next to the model or its sha256 differs from the model's.
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
                cal.setdefault("coefficients", {"spread": float(cal.get("factor", 1.0))})
                return {**cal, "calibrated": True, "path": str(cal_path)}
            log.warning("%s: calibration is for another model (sha256 differs)", cal_path)
    log.warning("no uncertainty calibration for this model: sigma is the raw TTA spread")
    return {"factor": 1.0, "coefficients": {"spread": 1.0}, "calibrated": False}


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
    tags["sigma_model"] = sigma.attrs["sigma_model"]
    return write_output(sigma, path, overwrite=overwrite, tags=tags)
