"""Calibration of the uncertainty bands on the simulated benchmark scenes (truth known):
the residuals and features of a model on those scenes, :func:`calibrate` (fit on some seeds,
coverage on a fresh one), :func:`benchmark_uncertainty` (``evaluate``'s scoring of the stored
bands), and the files next to a model: ``<model>.calibration.json``
(:func:`save_calibration`, :func:`load_calibration`) and the variance head
(:func:`load_sigma_head`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from insar_denoise.models.normalization import deplane
from insar_denoise.models.registry import LoadedModel, ModelLike
from insar_denoise.trust.bands import (
    NOISE_WINDOW_PX,
    ONE_SIGMA,
    TWO_SIGMA,
    combine,
    coverage,
    coverage_report,
    features,
    fit_band,
    head_feature,
)
from insar_denoise.trust.tta import augmentations, tta_batch

log = logging.getLogger(__name__)


def _residuals(
    model: LoadedModel,
    n: int,
    seed: int,
    size: int,
    sign: bool,
    head: Any = None,
    augment: bool = True,
) -> tuple[np.ndarray, dict, dict]:
    """Pooled ``|truth - mean|``, the :data:`~.bands.TERMS` features (and ``"head"`` with a
    variance head) and each pixel's scene labels (``amplitude`` in mm, turbulence ``noise``
    level) over the benchmark scenes of ``seed``."""
    from insar_denoise.scoring import benchmark_scenes as scn

    window = int(model.metadata["window"])
    scenes = scn.generate(n, seed, size=size, n_dates=window)
    outs = tta_batch(model, scenes.displacement, scenes.dem, sign, augment=augment)
    return scene_residuals(scenes, outs, head)


def scene_residuals(
    scenes: Any, outs: torch.Tensor, head: Any = None
) -> tuple[np.ndarray, dict, dict]:
    """:func:`_residuals` for given benchmark ``scenes`` and model outputs ``(K, S, H, W)``
    (the test-time copies, or one run)."""
    mask = scenes.valid & torch.isfinite(scenes.cumulative) & torch.isfinite(outs).all(0)
    truth = deplane(scenes.cumulative.double(), mask)
    dep = torch.stack([deplane(o.double(), mask) for o in outs])
    mean = dep.mean(0)
    disp = scenes.displacement.double()
    raw = deplane(torch.nan_to_num(disp[:, -1] - disp[:, 0]), mask)
    head_map = None
    if head is not None:
        maps = [
            head_feature(head, m, d, scenes.times_days, z, ok)
            for m, d, z, ok in zip(
                mean.numpy(), disp.numpy(), scenes.dem.numpy(), mask.numpy(), strict=True
            )
        ]
        head_map = torch.from_numpy(np.stack(maps))
    spread = dep.std(0, unbiased=True) if len(dep) > 1 else torch.zeros_like(mean)
    feats = features(spread, raw - mean, mean, mask, head_map)
    resid = (truth - mean).abs()[mask].numpy()
    scene_of_pixel = torch.arange(len(scenes)).view(-1, 1, 1).expand_as(mask)[mask].numpy()
    labels = {
        "amplitude": np.asarray(scenes.amplitude_mm)[scene_of_pixel],
        "noise": np.asarray(scenes.noise)[scene_of_pixel],
    }
    return resid, {k: v[mask].numpy() for k, v in feats.items()}, labels


def _fit_pixels(
    model: LoadedModel,
    n: int,
    seeds: range,
    size: int,
    sign: bool,
    head: Any,
    augment: bool,
    terms: tuple[str, ...] | None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Pooled residuals and the features the bands use over the scenes of ``seeds`` (the
    spread only with ``augment``; only ``terms`` when given; the head first: the search never
    switches it off)."""
    parts = [_residuals(model, n, s, size, sign, head, augment) for s in seeds]
    resid = np.concatenate([p[0] for p in parts])
    feats = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    if not augment:
        feats.pop("spread")
    if terms is not None:
        feats = {k: v for k, v in feats.items() if k in terms}
    if "head" in feats:
        feats = {"head": feats.pop("head"), **feats}
    return resid, feats


def calibrate(
    model: LoadedModel,
    n: int = 10,
    seed: int = 0,
    *,
    test_seed: int | None = None,
    size: int = 64,
    sign: bool = True,
    fit_seeds: int = 3,
    head: Any = "auto",
    augment: bool = False,
    terms: tuple[str, ...] | None = None,
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
    head : the variance head (``"auto"``: the one stored next to the model, if any; None:
        none); with a head its 1-sigma map is one more feature (``"head"``).
    augment : calibrate the mean of the test-time copies (else the model's single run, and
        the spread is not a feature); :func:`predict_with_uncertainty` follows the choice.
    terms : use only these features (e.g. ``("floor",)``: a constant band, the reference).

    Returns
    -------
    dict with ``coefficients`` (of :data:`~.bands.TERMS`), ``factor`` (the spread's), the fit
    and fresh-seed coverages ``coverage_1sigma(_fit)`` and ``coverage_2sigma(_fit)``,
    ``curve`` (levels, observed, expected; fresh seed), seeds, ``n_pixels`` and the model's
    ``model_id`` / ``sha256``.
    """
    test_seed = int(seed) + 100 if test_seed is None else int(test_seed)
    head_meta: dict[str, Any] = {}
    if isinstance(head, str) and head == "auto":
        head, head_meta = load_sigma_head(model)
    seeds = range(int(seed), int(seed) + max(1, fit_seeds))
    resid, feats = _fit_pixels(model, n, seeds, size, sign, head, augment, terms)
    coefs = fit_band(resid, feats, ONE_SIGMA, seed=seed)
    coefs95 = fit_band(resid, feats, TWO_SIGMA, seed=seed)
    resid_t, feats_t, labels_t = _residuals(model, n, test_seed, size, sign, head, augment)
    fresh = coverage_report(
        resid_t, feats_t, labels_t, {"coefficients": coefs, "coefficients_95": coefs95}
    )
    meta = getattr(model, "metadata", {}) or {}
    return {
        "factor": coefs.get("spread", 0.0),
        "coefficients": coefs,
        "coefficients_95": coefs95,
        "window_px": NOISE_WINDOW_PX,
        "seed": int(seed),
        "fit_seeds": int(max(1, fit_seeds)),
        "test_seed": test_seed,
        "n_per_amplitude": int(n),
        "size_px": int(size),
        "augment": bool(augment),
        "n_augmentations": len(augmentations(sign, augment)),
        "sigma_head": head_meta.get("sha256") if head is not None else None,
        "coverage_1sigma_fit": coverage(resid, combine(feats, coefs), 1.0),
        "coverage_95_fit": coverage(resid, combine(feats, coefs95), 1.0),
        "coverage_2sigma_fit": coverage(resid, combine(feats, coefs), 2.0),
        **fresh,
        "model_id": meta.get("model_id"),
        "sha256": meta.get("sha256"),
    }


def load_sigma_head(model: LoadedModel, required: bool = False) -> tuple[Any, dict[str, Any]]:
    """The variance head stored next to ``model`` (``<model>.sigma.pt``) and its metadata, or
    ``(None, {})`` when there is none or it belongs to other weights (``required``: raise)."""
    from insar_denoise.errors import ModelError
    from insar_denoise.trust.sigma_head import head_path, load_head

    path = getattr(model, "path", None)
    sha = (getattr(model, "metadata", None) or {}).get("sha256")
    if path is not None and head_path(path).is_file():
        head, meta = load_head(head_path(path))
        if meta.get("model_sha256") == sha:
            return head, meta
        problem = f"{head_path(path)}: variance head is for another model (sha256 differs)"
    else:
        problem = f"no variance head next to the model {path}"
    if required:
        raise ModelError(problem + "; the calibration needs it")
    return None, {}


def benchmark_uncertainty(model: LoadedModel, scenes: Any, estimate: torch.Tensor) -> dict | None:
    """Coverage of the model's stored bands on ``evaluate``'s scenes (its single-run
    ``estimate`` ``(S, H, W)``); None without a calibration, a note if it needs the
    test-time copies."""
    cal = load_calibration(model)
    if not cal["calibrated"]:
        return None
    if cal.get("augment", True):
        return {"skipped": "the calibration is for the mean of 16 test-time copies"}
    head, _ = load_sigma_head(model, required="head" in cal["coefficients"])
    resid, feats, labels = scene_residuals(scenes, estimate[None], head)
    return coverage_report(resid, feats, labels, cal)


def calibration_path(model_path: str | Path) -> Path:
    """``<dir>/<stem>.calibration.json`` next to a model file."""
    p = Path(model_path)
    return p.with_name(f"{p.stem}.calibration.json")


def save_calibration(
    calibration: dict[str, Any], path: str | Path, overwrite: bool = False
) -> Path:
    """Write the calibration JSON (and ``<path>.png``: the calibration curve) atomically."""
    from insar_denoise.io import atomic_output
    from insar_denoise.plots import calibration_figure

    path = Path(path)
    with atomic_output(path, overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(calibration, indent=1))
    curve = calibration["curve"]
    calibration_figure(
        np.asarray(curve["levels_sigma"]),
        np.asarray(curve["observed"]),
        path.with_suffix(".png"),
        overwrite,
        coverage_95=calibration.get("coverage_95"),
    )
    return path


def load_calibration(model: ModelLike = None) -> dict[str, Any]:
    """The stored calibration of ``model`` (None/name/path/``LoadedModel``: its
    ``calibration``, read with the model).

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
        stored = model.calibration if isinstance(model, LoadedModel) else None
        if stored is not None or cal_path.is_file():
            cal = dict(stored) if stored is not None else json.loads(cal_path.read_text())
            sha = (meta or {}).get("sha256")
            if sha is None or cal.get("sha256") in (None, sha):
                cal.setdefault("coefficients", {"spread": float(cal.get("factor", 1.0))})
                return {**cal, "calibrated": True, "path": str(cal_path)}
            log.warning("%s: calibration is for another model (sha256 differs)", cal_path)
    log.warning("no uncertainty calibration for this model: sigma is the raw TTA spread")
    return {"factor": 1.0, "coefficients": {"spread": 1.0}, "calibrated": False}
