"""The band model of the uncertainty: its features, ``sqrt(sum_k (c_k f_k)^2)``, the fit of
one band (quantile regression, then a split-conformal factor) and its scores (coverage,
pinball loss, the coverage report)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

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


def coverage(resid: np.ndarray, sigma: np.ndarray, z: float = 1.0) -> float:
    """Share of pixels with ``|truth - mean| <= z x sigma``."""
    return float(np.mean(resid <= z * sigma))


def pinball(resid: np.ndarray, q: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss of ``q`` as the ``level`` quantile of ``resid``."""
    # Quantile regression loss (Koenker & Bassett 1978)
    d = resid - q
    return float(np.mean(np.maximum(level * d, (level - 1.0) * d)))


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


def _random_search(loss, terms: tuple[str, ...], n_random: int, seed: int) -> tuple[dict, float]:
    """Best coefficients (and loss) of ``n_random`` seeded draws, log-uniform in
    :data:`COEF_RANGES`, each feature but the first off with probability 0.3."""
    rng = np.random.default_rng(seed)
    lo = np.log([COEF_RANGES[t][0] for t in terms])
    hi = np.log([COEF_RANGES[t][1] for t in terms])
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
    return best, best_err


def _refine(loss, terms: tuple[str, ...], best: dict, best_err: float) -> dict:
    """Coordinate refinement of ``best`` in log steps (x1.5, 1.2, 1.05 up and down)."""
    for step in (1.5, 1.2, 1.05):
        for _ in range(2):
            for name in terms:
                for mult in (step, 1.0 / step):
                    trial = {**best, name: best.get(name, 0.0) * mult}
                    err = loss(trial)
                    if err < best_err:
                        best, best_err = trial, err
    return best


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

    def loss(coefs: dict[str, float]) -> float:
        return pinball(resid, combine(feats, coefs), level)

    best = _refine(loss, terms, *_random_search(loss, terms, n_random, seed))
    width = combine(feats, best)
    ratio = resid / np.maximum(width, 1e-12)
    k = float(np.quantile(ratio, level, method="higher"))
    return {t: float(best.get(t, 0.0)) * k for t in terms}
