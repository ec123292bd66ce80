"""Scores of the v2 benchmark (the referee): per-scene metrics up to an offset, SNR bins, tables.

Every output and the truth are compared **up to a constant offset only**: the median over
the compared pixels is removed from each (no plane removal), so a method that leaves a
ramp or flattens a broad bowl is charged for it. Per scene and method:

- ``r``: Pearson correlation of output and truth on the compared pixels;
- ``gain``: least-squares slope of the output on the truth, ``sum(o c) / sum(c c)`` with
  ``o``, ``c`` the median-removed output and truth (1 = full amplitude, 0 = nothing);
- ``rmse_mm``: root mean square of ``o - c``;
- ``series_rmse_mm``: the same over the denoised series, date by date (medians removed per
  date), pooled over dates 1..T-1.

A deforming scene is *detected* when ``r >= R_MIN`` (0.7). Scenes are binned by the ideal
observer's SNR (:data:`SNR_EDGES`); scenes without deformation are scored by the
false-positive level: the 99th percentile of ``|o|`` (median removed) over their pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from insar_denoise.scoring.metrics import R_MIN, false_positive_level, pearson

#: edges of the SNR bins (ideal observer, known history); the last bin is open
SNR_EDGES: tuple[float, ...] = (0.0, 3.0, 5.0, 10.0, 20.0, 50.0, math.inf)
SNR_BINS: tuple[str, ...] = ("0-3", "3-5", "5-10", "10-20", "20-50", ">50")
#: the ideal observer's detection line (sigma)
SNR_DETECTION = 5.0


def snr_bin(snr: float) -> str | None:
    """Label of the SNR bin holding ``snr`` (lower edge included); None for NaN or < 0."""
    if math.isnan(snr) or snr < 0:
        return None
    for label, lo, hi in zip(SNR_BINS, SNR_EDGES[:-1], SNR_EDGES[1:], strict=True):
        if lo <= snr < hi:
            return label
    return SNR_BINS[-1]


def centered(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values`` on ``mask`` (1-D float64) minus their median."""
    v = np.asarray(values, np.float64)[mask]
    return v - np.median(v) if v.size else v


def offset_free_scores(output: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """``{"r", "gain", "rmse_mm"}`` of one ``(H, W)`` output against the truth on ``mask``.

    Medians over ``mask`` are removed from both first (see the module docstring); NaN where
    undefined (no pixel; ``gain`` for a constant truth; ``r`` for a constant map).
    """
    mask = np.asarray(mask, bool) & np.isfinite(output) & np.isfinite(truth)
    if not mask.any():
        return {"r": math.nan, "gain": math.nan, "rmse_mm": math.nan}
    o, c = centered(output, mask), centered(truth, mask)
    cc = float(np.dot(c, c))
    gain = float(np.dot(o, c)) / cc if cc > 1e-12 * c.size else math.nan
    return {
        "r": pearson(o, c),
        "gain": gain,
        "rmse_mm": float(np.sqrt(np.mean((o - c) ** 2))),
    }


def series_rmse(series: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """RMSE (mm) of a ``(T, H, W)`` series against the true one, medians removed per date,
    pooled over dates 1..T-1 on ``mask``."""
    if series.shape[0] < 2 or not mask.any():
        return math.nan
    err = [centered(series[t], mask) - centered(truth[t], mask) for t in range(1, len(series))]
    return float(np.sqrt(np.mean(np.concatenate(err) ** 2)))


def gap_rmse(output: np.ndarray, truth: np.ndarray, mask: np.ndarray, gaps: np.ndarray) -> float:
    """RMSE (mm) on the ``gaps`` pixels, each map's level being its median over ``mask`` (the
    compared pixels); NaN without gap pixels."""
    gaps = np.asarray(gaps, bool)
    if not gaps.any() or not np.asarray(mask, bool).any():
        return math.nan
    o = np.asarray(output, np.float64)
    t = np.asarray(truth, np.float64)
    err = (o[gaps] - np.median(o[mask])) - (t[gaps] - np.median(t[mask]))
    return float(np.sqrt(np.mean(err**2)))


def gap_table(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Per method, over the scenes with gap pixels: the median and largest ``gap_rmse_mm``,
    and the median ``rmse_mm`` of the same scenes' compared pixels beside it."""
    first = methods[0]
    sel = [r for r in records if math.isfinite(r["methods"][first].get("gap_rmse_mm", math.nan))]

    def values(m: str, key: str) -> list[float]:
        return [r["methods"][m].get(key, math.nan) for r in sel]

    def largest(v: list[float]) -> float:
        f = _finite(v)
        return float(f.max()) if f.size else math.nan

    return {
        "n_scenes": len(sel),
        "median_gap_rmse_mm": {m: _median(values(m, "gap_rmse_mm")) for m in methods},
        "max_gap_rmse_mm": {m: largest(values(m, "gap_rmse_mm")) for m in methods},
        "median_rmse_mm_same_scenes": {m: _median(values(m, "rmse_mm")) for m in methods},
    }


def summarize(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Detection share, median gain (and quartiles), median RMSE of a group of scenes.

    ``records`` are the per-scene dicts of :func:`insar_denoise.evaluation.referee.run_split`
    (``snr`` and ``methods[m]`` with ``r``, ``gain``, ``rmse_mm``, ``series_rmse_mm``).
    """
    snr = np.array([r["snr"] for r in records], np.float64)
    out: dict[str, Any] = {
        "n": len(records),
        "snr_median": float(np.median(snr)) if snr.size else math.nan,
        "methods": {},
    }
    for m in methods:
        per = [r["methods"][m] for r in records]
        r_ = np.array([p["r"] for p in per], np.float64)
        out["methods"][m] = {
            "detected": float(np.mean(np.nan_to_num(r_, nan=-np.inf) >= R_MIN))
            if r_.size
            else math.nan,
            "gain": _median(p["gain"] for p in per),
            "gain_q25_q75": [_quantile((p["gain"] for p in per), q) for q in (0.25, 0.75)],
            "rmse_mm": _median(p["rmse_mm"] for p in per),
            "series_rmse_mm": _median(p["series_rmse_mm"] for p in per),
        }
    return out


def tables(records: Sequence[dict[str, Any]], methods: Sequence[str]) -> dict[str, Any]:
    """Every grouping of the report from the per-scene records.

    Returns ``{"by_snr": {bin: {"all" | "T=<n>": summary}}, "by_source": {type: {"all" |
    bin: summary}}}`` over the deforming scenes (empty groups left out); see
    :func:`summarize` for a summary.
    """
    deforming = [r for r in records if r["snr_bin"] is not None]
    n_dates = sorted({int(r["n_dates"]) for r in records})
    by_snr: dict[str, Any] = {}
    for b in SNR_BINS:
        in_bin = [r for r in deforming if r["snr_bin"] == b]
        if not in_bin:
            continue
        by_snr[b] = {"all": summarize(in_bin, methods)}
        for t in n_dates:
            sel = [r for r in in_bin if r["n_dates"] == t]
            if sel:
                by_snr[b][f"T={t}"] = summarize(sel, methods)
    by_source: dict[str, Any] = {}
    for kind in dict.fromkeys(r["source_type"] for r in deforming):
        sel = [r for r in deforming if r["source_type"] == kind]
        by_source[kind] = {"all": summarize(sel, methods)}
        for b in SNR_BINS:
            in_bin = [r for r in sel if r["snr_bin"] == b]
            if in_bin:
                by_source[kind][b] = summarize(in_bin, methods)
    return {"by_snr": by_snr, "by_source": by_source}


def false_positive_table(
    null_values: dict[int, dict[str, list[np.ndarray]]],
) -> dict[str, dict[str, float]]:
    """p99 of ``|output|`` (mm) per ``"T=<n>"`` and ``"all"`` from the no-deformation scenes.

    ``null_values[T][method]``: the median-removed outputs (1-D, compared pixels) of each
    no-deformation scene of ``T`` dates.
    """
    out: dict[str, dict[str, float]] = {}
    pooled: dict[str, list[np.ndarray]] = {}
    for t in sorted(null_values):
        out[f"T={t}"] = {}
        for m, arrays in null_values[t].items():
            out[f"T={t}"][m] = false_positive_level(np.concatenate(arrays))
            pooled.setdefault(m, []).extend(arrays)
    if pooled:
        out["all"] = {m: false_positive_level(np.concatenate(a)) for m, a in pooled.items()}
    return out


def _finite(values: Iterable[float]) -> np.ndarray:
    v = np.asarray(list(values), np.float64)
    return v[np.isfinite(v)]


def _median(values: Iterable[float]) -> float:
    v = _finite(values)
    return float(np.median(v)) if v.size else math.nan


def _quantile(values: Iterable[float], q: float) -> float:
    v = _finite(values)
    return float(np.quantile(v, q)) if v.size else math.nan
