"""The history in time of each area the second detector fills: a ramp where the data say so.

The second detector (:mod:`.bilaplacian_support`) writes a straight line in time in each area
it fills. The pattern is right but the cumulative is not when the motion is not steady: the
least-squares line through a step at a fraction ``f`` of the stack overstates it by ``6 f (1 -
f)`` (1.5 at mid-stack), and a transient late in the stack is understated (Benchmark v2 `in`
70, gain 0.48). This step reads each area's history from the data:

1. each date's input (relative to the first date; its elevation fit and the noise predicted
   from outside every area removed, as for the area's estimate) is projected on the area's
   pattern, the pattern taken from the *other* half of the dates (split-half, odd and even
   dates): the pattern's own noise is then independent of the date's and does not pull the
   history toward the line (errors in variables; Fuller 1987, Measurement Error Models,
   sec. 1.1). Each half keeps its own offset (the first date's delay projects differently
   on each pattern);
2. ``offset + amplitude x ramp(t1, t2)`` (0 before ``t1``, 1 after ``t2``, linear between: a
   step when ``t2`` follows ``t1``, the straight line when they are the first and last
   dates) is fitted by weighted least squares (weights ``1 / date variance``) for every
   ``(t1, t2)`` of up to :data:`MAX_KNOTS` candidate dates; the best ramp replaces the line
   when the Bayesian information criterion falls by more than :data:`MIN_BIC_GAIN` (Schwarz
   1978, Ann. Stat. 6, 461; 6 is "strong" evidence in Kass & Raftery 1995, JASA 90, 773);
3. the area's cumulative is then each pixel's weighted least-squares coefficient on that
   ramp (edge-kept smoothing as for the line), and its series ``level + ramp(t) x
   cumulative``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from insar_denoise.inference.noise_prediction import HarmonicPredictor, elevation_basis

#: areas under this many pixels keep the straight line (their history is too noisy to read)
MIN_AREA_PX = 200
#: the ramp replaces the line when the BIC falls by more than this
MIN_BIC_GAIN = 6.0
#: ramp knots are searched over at most this many dates (evenly spread over the stack)
MAX_KNOTS = 64
#: shorter stacks keep the straight line (a ramp and two offsets would leave too few dates)
MIN_DATES = 6


@dataclass
class Ramp:
    """A fitted history: ``ramp(t)`` (0 at the first date, 1 at the last) for every date,
    the knots ``t1``, ``t2`` (days from the first date) and the BIC gain over the line."""

    shape: np.ndarray
    start_days: float
    end_days: float
    bic_gain: float

    @property
    def weight(self) -> float:
        """The ramp's posterior weight against the line: 1 over :data:`MIN_BIC_GAIN`, 0
        under ``-MIN_BIC_GAIN``, ``1 / (1 + exp(-gain / 2))`` between (BIC weights;
        Raftery 1995, Sociol. Methodol. 25, 111, eq. 35)."""
        if self.bic_gain > MIN_BIC_GAIN:
            return 1.0
        if self.bic_gain < -MIN_BIC_GAIN:
            return 0.0
        return float(1.0 / (1.0 + np.exp(-self.bic_gain / 2.0)))

    def note(self, pixels: int) -> dict:
        """The area's entry in the second detector's note."""
        entry = {
            "pixels": pixels,
            "ramp_start_days": round(self.start_days, 1),
            "ramp_end_days": round(self.end_days, 1),
            "bic_gain": round(self.bic_gain, 1),
        }
        if self.weight < 1.0:
            entry["ramp_weight"] = round(self.weight, 3)
        return entry


@dataclass
class AreaHistory:
    """One filled area's history: ``area`` (H, W) bool, the ``ramp``, the ``cumulative`` on
    the area's pixels (each one's coefficient on the ramp), its noise ``scale`` over the
    line's and ``shape``, the series' history (the ramp, or its average with the line's by
    :attr:`Ramp.weight` at the area's amplitudes)."""

    area: np.ndarray
    ramp: Ramp
    cumulative: np.ndarray
    scale: float
    shape: np.ndarray


def averaged_history(
    frac: np.ndarray, ramp: np.ndarray, weight: float, ratio: float
) -> np.ndarray | None:
    """The series' history when the cumulative is ``(1 - weight) line + weight ramp``
    estimates and the ramp's amplitude is ``ratio`` times the line's: ``((1 - w) t + w ratio
    ramp(t)) / ((1 - w) + w ratio)``, 0 at the first date and 1 at the last; None where the
    two amplitudes disagree in sign (the average would cancel)."""
    if weight >= 1.0:
        return ramp
    if not np.isfinite(ratio) or ratio <= 0.0:
        return None
    return ((1.0 - weight) * frac + weight * ratio * ramp) / ((1.0 - weight) + weight * ratio)


def ramp_basis(frac: np.ndarray, start: int, end: int) -> np.ndarray:
    """``ramp(t)``: 0 up to date ``start``, 1 from date ``end``, linear in time between (a
    step when both fall on the same day)."""
    width = max(float(frac[end] - frac[start]), 1e-12)
    return np.clip((frac - frac[start]) / width, 0.0, 1.0)


def _half_offsets(n: int) -> np.ndarray:
    """One offset per half of the dates (odd and even), ``(n, 2)``."""
    even = (np.arange(n) % 2 == 0).astype(np.float64)
    return np.c_[even, 1.0 - even]


def _residual(columns: np.ndarray, offsets: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``columns (P, T)`` less their weighted least-squares fit by ``offsets (T, k)``."""
    gram = offsets.T @ (w[:, None] * offsets)
    coef = np.linalg.solve(gram, offsets.T @ (w[:, None] * columns.T))
    return columns - (offsets @ coef).T


def fit_ramp(
    history: np.ndarray, frac: np.ndarray, weights: np.ndarray, span_days: float = 1.0
) -> Ramp | None:
    """The best ``ramp(t1, t2)`` for ``history (T,)`` at times ``frac`` (0 to 1 over
    ``span_days``; one offset per half, odd and even dates) with its BIC gain over the
    straight line; None when no ramp is better than the line."""
    n = len(history)
    if n < MIN_DATES:
        return None
    offsets = _half_offsets(n)
    knots = np.unique(np.linspace(0, n - 1, min(n, MAX_KNOTS)).round().astype(int))
    pairs = [(i, j) for a, i in enumerate(knots) for j in knots[a + 1 :]]
    ramps = np.stack([ramp_basis(frac, i, j) for i, j in pairs])
    w = np.asarray(weights, np.float64)
    y = _residual(history[None], offsets, w)[0]
    r = _residual(ramps, offsets, w)
    total = float((w * y * y).sum())
    explained = (r @ (w * y)) ** 2 / np.maximum((r * r) @ w, 1e-30)
    rss = np.maximum(total - explained, 1e-30)
    line = pairs.index((int(knots[0]), int(knots[-1])))
    best = int(np.argmax(explained))
    # BIC = n log(RSS / n) + k log n: the line has 3 parameters, a ramp 5 (its two knots)
    gain = n * np.log(rss[line] / rss[best]) - 2.0 * np.log(n)
    if best == line or not np.isfinite(gain):
        return None
    i, j = pairs[best]
    return Ramp(ramps[best], float(frac[i] * span_days), float(frac[j] * span_days), float(gain))


class _DateResidual:
    """A date less its elevation fit (on ``outside``) and the noise predicted into the rest
    from ``outside`` (:class:`.noise_prediction.HarmonicPredictor`), read on the pixels
    ``keep``."""

    def __init__(self, outside: np.ndarray, keep: np.ndarray, dem) -> None:
        self.keep, self.outside = keep, outside
        self.basis = elevation_basis(outside.shape, dem)
        self.fit = np.linalg.pinv(self.basis[outside])
        self.predict = HarmonicPredictor(~outside, near=keep)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The pixels ``keep`` (NaN where the date is missing)."""
        raw = np.asarray(image, np.float64)
        x = np.where(self.keep | self.outside, np.nan_to_num(raw), 0.0)
        x = x - self.basis @ (self.fit @ x[self.outside])
        return np.where(np.isfinite(raw), x - self.predict(x), np.nan)[self.keep]


def area_ramps(
    rows,
    new: np.ndarray,
    outside: np.ndarray,
    dem,
    times_days: np.ndarray,
    date_var: np.ndarray,
) -> list[AreaHistory]:
    """An :class:`AreaHistory` for each area of ``new`` whose history is a ramp rather than
    the straight line, wholly or in part (:attr:`Ramp.weight`); ``rows(t, lo, hi)``: the
    input relative to the first date; ``outside``: the pixels the noise prediction is made
    from (the rest is predicted); the noise scale: the ramp coefficient's noise std over the
    line's (white date noise)."""
    h, w = new.shape
    n = len(times_days)
    labels, n_areas = ndimage.label(new)
    index = np.arange(1, n_areas + 1)
    if not (ndimage.sum_labels(new, labels, index) >= MIN_AREA_PX).any():
        return []  # no area large enough: the stack is not read
    # pixels missing on some dates are predicted, not used, and read on their own dates only
    complete = np.ones((h, w), bool)
    for t in range(n):
        complete &= np.isfinite(np.asarray(rows(t, 0, h)))
    sizes = ndimage.sum_labels(new & complete, labels, index)
    big = [k + 1 for k in range(n_areas) if sizes[k] >= MIN_AREA_PX]
    if not big:
        return []
    keep = np.isin(labels, big)
    residual = _DateResidual(outside & complete, keep, dem)
    days = np.asarray(times_days, np.float64)
    frac = (days - days[0]) / float(days[-1] - days[0])
    weights = 1.0 / np.asarray(date_var, np.float64)
    var = np.asarray(date_var, np.float64)
    line_var = _coefficients(frac, weights) ** 2 @ var
    dates = np.stack([residual(rows(t, 0, h)) for t in range(n)]).astype(np.float32)
    lab, whole = labels[keep], complete[keep]
    out = []
    for k in big:
        px = dates[:, lab == k].astype(np.float64)
        history = _split_half_history(px[:, whole[lab == k]], frac, weights)
        fitted = averaged_fit(history, frac, weights, float(days[-1] - days[0]))
        if fitted is None:
            continue
        ramp, shape, _ = fitted
        scale = np.sqrt((_coefficients(ramp.shape, weights) ** 2 @ var) / line_var)
        cumulative = pixel_coefficients(px, ramp.shape, weights)
        out.append(AreaHistory(labels == k, ramp, cumulative, float(scale), shape))
    return out


def averaged_fit(
    history: np.ndarray, frac: np.ndarray, weights: np.ndarray, span_days: float = 1.0
) -> tuple[Ramp, np.ndarray, float] | None:
    """The best ramp of ``history`` (:func:`fit_ramp`), the series' history (the ramp, or its
    average with the line by :attr:`Ramp.weight`, :func:`averaged_history`) and the factor
    that takes the line's cumulative to the averaged one, ``(1 - w) + w a_ramp / a_line``
    (the amplitudes of ``history`` on each); None where the line stands alone."""
    ramp = fit_ramp(history, frac, weights, span_days)
    if ramp is None or ramp.weight <= 0.0:
        return None
    ratio = _amplitude(history, ramp.shape, weights) / _amplitude(history, frac, weights)
    shape = averaged_history(frac, ramp.shape, ramp.weight, ratio)
    if shape is None:
        return None
    return ramp, shape, (1.0 - ramp.weight) + ramp.weight * ratio


def _amplitude(history: np.ndarray, shape: np.ndarray, weights: np.ndarray) -> float:
    """The weighted least-squares amplitude of ``history`` on ``shape`` with one offset per
    half (odd and even dates), as :func:`fit_ramp` fits it."""
    w = np.asarray(weights, np.float64)
    y, r = _residual(np.stack([history, shape]), _half_offsets(len(history)), w)
    return float((w * r) @ y / max(float((w * r) @ r), 1e-30))


def pixel_coefficients(px: np.ndarray, shape: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each pixel's weighted least-squares coefficient on ``shape`` with an offset, from its
    finite dates only (``px (T, N)``, NaN where a date is missing); NaN where its dates do
    not span the shape."""
    ok = np.isfinite(px)
    w = np.where(ok, weights[:, None], 0.0)
    total = np.maximum(w.sum(axis=0), 1e-30)
    centred = shape[:, None] - (w * shape[:, None]).sum(axis=0) / total
    denom = (w * centred**2).sum(axis=0)
    num = (w * centred * np.where(ok, px, 0.0)).sum(axis=0)
    return np.where(denom > 1e-12, num / np.where(denom > 1e-12, denom, 1.0), np.nan)


def _coefficients(shape: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weights of each date in the weighted least-squares coefficient on ``shape`` (with an
    offset): ``w (s - s̄) / Σ w (s - s̄)²``."""
    centred = shape - (weights * shape).sum() / weights.sum()
    return weights * centred / float((weights * centred**2).sum())


def _split_half_history(px: np.ndarray, frac: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Each date ``(T, N)`` projected on the straight line's pattern from the other half of
    the dates (odd on even, even on odd)."""
    n = len(frac)
    history = np.zeros(n)
    for half in (np.arange(n) % 2 == 0, np.arange(n) % 2 == 1):
        pattern = _coefficients(frac[~half], weights[~half]) @ px[~half]
        history[half] = px[half] @ pattern / max(float(pattern @ pattern), 1e-30)
    return history
