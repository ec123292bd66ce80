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
from insar_denoise.io.dataset import dataset_from_arrays
from insar_denoise.models.normalization import deplane, deplane_np
from insar_denoise.models.registry import LoadedModel, ModelLike, as_model

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
    "head": (0.2, 5.0),
}
ONE_SIGMA = math.erf(1.0 / math.sqrt(2.0))
TWO_SIGMA = math.erf(2.0 / math.sqrt(2.0))


def augmentations(sign: bool = True, augment: bool = True) -> list[tuple[int, bool, float]]:
    """``(turns, flip, sign)`` of every test-time copy (8 or 16; 1, the identity, without
    ``augment``)."""
    if not augment:
        return [(0, False, 1.0)]
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


def local_noise(removed: torch.Tensor, ok: torch.Tensor, window_px: float = NOISE_WINDOW_PX):
    """Local RMS (mm) of ``removed`` ``(B, H, W)`` over ``ok`` pixels, Gaussian-weighted."""
    from insar_denoise.baselines import gaussian_filter_nan

    sq = torch.where(ok, removed.double() ** 2, torch.nan)
    local = gaussian_filter_nan(sq, window_px, keep_nan=False)
    overall = torch.nanmean(sq.flatten(1), dim=1).nan_to_num(0.0).view(-1, 1, 1)
    return torch.where(torch.isfinite(local), local, overall).sqrt()


def features(
    spread: torch.Tensor,
    removed: torch.Tensor,
    mean: torch.Tensor,
    ok: torch.Tensor,
    head: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The :data:`TERMS` maps ``(B, H, W)`` from the TTA spread and mean and the removed noise
    (and ``head``, the variance head's 1-sigma map, when given)."""
    zero = torch.zeros((), dtype=torch.float64)
    mean = torch.where(ok, mean.double(), zero)
    feats = {
        "spread": spread.double(),
        "noise": local_noise(torch.where(ok, removed.double(), zero), ok),
        "signal_rms": local_noise(mean, ok),
        "signal": mean.abs(),
        "floor": torch.ones_like(mean),
    }
    if head is not None:
        feats["head"] = torch.where(ok, head.double(), zero)
    return feats


def head_feature(
    head: Any,
    mean: np.ndarray,
    disp: np.ndarray,
    times_days: np.ndarray,
    dem: np.ndarray,
    ok: np.ndarray,
) -> np.ndarray:
    """The variance head's 1-sigma map ``(H, W)`` (mm) for one scene: its evidence is the
    estimate ``mean``, the raw cumulative and the linear-rate stack of ``disp`` ``(N, H, W)``."""
    from insar_denoise.trust import sigma_head as sh

    d = torch.from_numpy(np.asarray(disp, np.float64))[None]
    stack = sh.stack_cumulative(d, torch.from_numpy(np.asarray(times_days, np.float64)))[0]
    raw = np.asarray(disp[-1] - disp[0], np.float64)
    return sh.sigma_map(head, np.nan_to_num(mean), raw, stack.numpy(), dem, ok)


def combine(feats: dict, coefs: dict[str, float]):
    """1-sigma map ``sqrt(sum_k (c_k f_k)^2)`` (numpy or torch features)."""
    total = next(iter(feats.values())) * 0.0
    for name, c in coefs.items():
        if not c:
            continue
        total = total + (float(c) * feats[name]) ** 2
    return total**0.5


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
    cal_augment, coefficients_95 = True, None
    if factor is not None:
        coefficients = {"spread": float(factor)}
    elif coefficients is None:
        cal = load_calibration(model)
        coefficients, cal_augment = cal["coefficients"], bool(cal.get("augment", True))
        coefficients_95 = cal.get("coefficients_95")
    augment = cal_augment if augment is None else bool(augment)
    uses_head = bool(coefficients.get("head") or (coefficients_95 or {}).get("head"))
    disp_da = ds["displacement"].transpose("time", "y", "x")
    if not (augment or uses_head):  # only the first and last dates are read
        disp_da = disp_da.isel(time=[0, -1])
    disp = np.asarray(disp_da.values, np.float32)
    dem = np.asarray(ds["dem"].transpose("y", "x").values, np.float32)
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
    sigma = np.where(ok, combine(feats, coefficients)[0].numpy(), np.nan)
    if coefficients_95 is None:  # Gaussian reading: the 95 % half-width is 2 sigma
        half = 2.0 * sigma
    else:
        half = np.where(ok, combine(feats, coefficients_95)[0].numpy(), np.nan)
    template = ds["dem"].transpose("y", "x")
    attrs = {
        "units": "mm",
        "calibration_factor": float(coefficients.get("spread", 0.0)),
        "sigma_model": json.dumps(coefficients),
        "halfwidth_95_model": json.dumps(coefficients_95 or {"sigma": 2.0}),
        "n_augmentations": len(outs),
    }
    name = (
        "mean of test-time augmented cumulative deformation"
        if augment
        else "cumulative deformation"
    )
    cum = template.copy(data=mean.astype(np.float32)).assign_attrs(
        attrs, long_name=f"{name} (de-planed)"
    )
    sig = template.copy(data=sigma.astype(np.float32)).assign_attrs(
        attrs, long_name="1-sigma uncertainty of the cumulative deformation (68 % half-width)"
    )
    half95 = template.copy(data=half.astype(np.float32)).assign_attrs(
        attrs, long_name="95 % half-width of the cumulative deformation"
    )
    return cum, sig, half95


def tta_batch(
    model: LoadedModel,
    displacement: torch.Tensor,
    dem: torch.Tensor,
    sign: bool = True,
    batch: int = 16,
    augment: bool = True,
) -> torch.Tensor:
    """``(K, B, H, W)`` outputs of ``model`` on the test-time copies of a batch of windows."""
    from insar_denoise.inference.predict import predict_in_batches

    outs = []
    for turns, flip, s in augmentations(sign, augment):
        d = _forward(displacement, turns, flip) * s
        z = _forward(dem, turns, flip)
        out = predict_in_batches(model, d.contiguous(), z.contiguous(), batch)
        outs.append(s * _inverse(out, turns, flip))
    return torch.stack(outs)


def _residuals(
    model: LoadedModel,
    n: int,
    seed: int,
    size: int,
    sign: bool,
    head: Any = None,
    augment: bool = True,
) -> tuple[np.ndarray, dict, dict]:
    """Pooled ``|truth - mean|``, the :data:`TERMS` features (and ``"head"`` with a
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


def coverage_report(
    resid: np.ndarray, feats: dict, labels: dict, cal: dict[str, Any]
) -> dict[str, Any]:
    """Coverage of a calibration's bands on pooled residuals: +/-1 sigma, the 95 % band,
    +/-2 sigma, the curve over :data:`CURVE_LEVELS`, the pinball losses (mm; the proper
    score of a quantile: lower is better at equal coverage) and each amplitude's and
    turbulence level's (1 sigma, 95 %) coverage."""
    sigma = combine(feats, cal["coefficients"])
    c95 = cal.get("coefficients_95") or {k: 2 * v for k, v in cal["coefficients"].items()}
    half = combine(feats, c95)

    def by(key: str) -> dict[str, list[float]]:
        values = labels[key]
        return {
            (f"{v:g}" if isinstance(v, float | np.floating) else str(v)): [
                coverage(resid[values == v], sigma[values == v], 1.0),
                coverage(resid[values == v], half[values == v], 1.0),
            ]
            for v in np.unique(values)
        }

    return {
        "coverage_1sigma": coverage(resid, sigma, 1.0),
        "coverage_95": coverage(resid, half, 1.0),
        "coverage_2sigma": coverage(resid, sigma, 2.0),
        "mean_sigma_mm": float(np.mean(sigma)),
        "mean_halfwidth_95_mm": float(np.mean(half)),
        "pinball_68_mm": pinball(resid, sigma, ONE_SIGMA),
        "pinball_95_mm": pinball(resid, half, TWO_SIGMA),
        "n_pixels": int(resid.size),
        "curve": {
            "levels_sigma": [float(z) for z in CURVE_LEVELS],
            "observed": [coverage(resid, sigma, z) for z in CURVE_LEVELS],
            "expected": [math.erf(z / math.sqrt(2.0)) for z in CURVE_LEVELS],
        },
        "coverage_by_amplitude": by("amplitude"),
        "coverage_by_noise": by("noise"),
    }


def coverage(resid: np.ndarray, sigma: np.ndarray, z: float = 1.0) -> float:
    """Share of pixels with ``|truth - mean| <= z x sigma``."""
    return float(np.mean(resid <= z * sigma))


def pinball(resid: np.ndarray, q: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss of ``q`` as the ``level`` quantile of ``resid``."""
    # Quantile regression loss (Koenker & Bassett 1978)
    d = resid - q
    return float(np.mean(np.maximum(level * d, (level - 1.0) * d)))


def fit_band(
    resid: np.ndarray, feats: dict, level: float, n_random: int = 400, seed: int = 0
) -> dict[str, float]:
    """Coefficients of the features in ``feats`` for the half-width that covers ``level``.

    The shape (ratios of the coefficients) minimises the pinball loss of
    ``combine(feats, c)`` as the ``level`` quantile of ``resid`` (seeded random search in log
    space, then coordinate refinement; the first feature is never switched off); a common
    factor then makes the coverage on these pixels exactly ``level`` (split-conformal
    calibration: Romano, Patterson & Candes 2019).
    """
    terms = tuple(feats)
    rng = np.random.default_rng(seed)
    lo = np.log([COEF_RANGES[t][0] for t in terms])
    hi = np.log([COEF_RANGES[t][1] for t in terms])

    def loss(coefs: dict[str, float]) -> float:
        return pinball(resid, combine(feats, coefs), level)

    best = {terms[0]: 1.0}
    best_err = loss(best)
    for _ in range(n_random):
        c = np.exp(rng.uniform(lo, hi))
        off = rng.random(len(terms)) < 0.3
        off[0] = False
        c[off] = 0.0
        coefs = dict(zip(terms, c.tolist(), strict=True))
        err = loss(coefs)
        if err < best_err:
            best, best_err = coefs, err
    for step in (1.5, 1.2, 1.05):  # coordinate refinement in log steps
        for _ in range(2):
            for name in terms:
                for mult in (step, 1.0 / step):
                    trial = {**best, name: best.get(name, 0.0) * mult}
                    err = loss(trial)
                    if err < best_err:
                        best, best_err = trial, err
    width = combine(feats, best)
    ratio = resid / np.maximum(width, 1e-12)
    k = float(np.quantile(ratio, level, method="higher"))
    return {t: float(best.get(t, 0.0)) * k for t in terms}


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
    dict with ``coefficients`` (of :data:`TERMS`), ``factor`` (the spread's), the fit and fresh-seed
    coverages ``coverage_1sigma(_fit)`` and ``coverage_2sigma(_fit)``,
    ``curve`` (levels, observed, expected; fresh seed), seeds, ``n_pixels`` and the model's
    ``model_id`` / ``sha256``.
    """
    test_seed = int(seed) + 100 if test_seed is None else int(test_seed)
    head_meta: dict[str, Any] = {}
    if isinstance(head, str) and head == "auto":
        head, head_meta = load_sigma_head(model)
    parts = [
        _residuals(model, n, int(seed) + i, size, sign, head, augment)
        for i in range(max(1, fit_seeds))
    ]
    resid = np.concatenate([p[0] for p in parts])
    feats = {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]}
    if not augment:
        feats.pop("spread")
    if terms is not None:
        feats = {k: v for k, v in feats.items() if k in terms}
    if "head" in feats:  # the head first: it is never switched off by the search
        feats = {"head": feats.pop("head"), **feats}
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
