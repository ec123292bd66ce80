"""Validation metrics of cumulative-deformation estimates, per amplitude bin.

Every estimate (model, all-zero map, raw last − first, classical corrections) and the truth
are compared after removing their own least-squares plane on the pixels valid in at least
one date (:func:`insar_denoise.models.normalization.deplane`), because the model output is
defined up to an offset and a ramp. Used by the trainer and by the evaluation.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from insar_denoise.models.normalization import deplane

log = logging.getLogger(__name__)

#: Amplitude bin edges (mm of max |cumulative LOS|); examples without a source form "none".
AMPLITUDE_EDGES_MM: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0, math.inf)


def _bin_label(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}mm" if math.isfinite(hi) else f">{lo:g}mm"


def classical_estimates(
    displacement: Tensor, dem: Tensor, interval_days: float, sigma_px: float = 2.0
) -> dict[str, Tensor]:
    """Classical estimates from :mod:`insar_denoise.baselines`, when that module exists.

    Returns ``{"elevation_filter": ..., "elevation_stack_filter": ...}`` (``(B, H, W)`` mm),
    or an empty dict if the baselines module is not available.
    """
    try:
        from insar_denoise.baselines import classical_cumulative
    except ImportError:
        log.warning("insar_denoise.baselines not available: no classical baseline")
        return {}
    times = torch.arange(displacement.shape[1], dtype=torch.float64) * interval_days
    out: dict[str, Tensor] = {}
    for name, method in (("elevation_filter", "filter"), ("elevation_stack_filter", "best")):
        maps = [
            classical_cumulative(method, displacement[i], dem[i], times, sigma_px).float()
            for i in range(displacement.shape[0])
        ]
        out[name] = torch.stack(maps)
    return out


def _pearson(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """Per-example Pearson correlation on ``mask``; NaN where either map is constant."""
    m = mask.double()
    n = m.sum((1, 2)).clamp_min(1)
    a = torch.where(mask, a, torch.zeros_like(a)).double()
    b = torch.where(mask, b, torch.zeros_like(b)).double()
    da = (a - (a * m).sum((1, 2), keepdim=True) / n.view(-1, 1, 1)) * m
    db = (b - (b * m).sum((1, 2), keepdim=True) / n.view(-1, 1, 1)) * m
    cov = (da * db).sum((1, 2))
    var = (da * da).sum((1, 2)) * (db * db).sum((1, 2))
    return torch.where(var > 0, cov / var.clamp_min(1e-300).sqrt(), torch.full_like(cov, math.nan))


def cumulative_metrics(
    estimates: dict[str, Tensor],
    truth: Tensor,
    valid: Tensor,
    amplitude_mm: Tensor,
    no_deformation: Tensor,
    edges_mm: Sequence[float] = AMPLITUDE_EDGES_MM,
) -> dict[str, Any]:
    """RMSE, correlation and false-signal statistics of several estimates.

    Parameters
    ----------
    estimates : dict of str to Tensor
        Name -> ``(B, H, W)`` cumulative estimates in mm.
    truth : Tensor
        ``(B, H, W)`` true cumulative deformation (mm).
    valid : Tensor
        ``(B, H, W)`` bool: pixels valid in at least one date.
    amplitude_mm : Tensor
        ``(B,)`` source amplitude (mm), used for binning.
    no_deformation : Tensor
        ``(B,)`` bool: examples without any deformation source.
    edges_mm : sequence of float
        Amplitude bin edges (mm); the no-deformation examples form their own bin ``none``.

    Returns
    -------
    dict
        ``{"bins": {bin: {"n": int, "rmse_mm": {name: v}, "corr": {name: v}}},
        "all": {...}, "p99_abs_no_deformation_mm": {name: v}}``; RMSE is over all valid
        pixels of the bin; correlation is the mean per-example Pearson r.
    """
    truth_d = deplane(truth.float(), valid)
    deplaned = {k: deplane(v.float(), valid) for k, v in estimates.items()}
    sq = {
        k: torch.where(valid, (v - truth_d) ** 2, torch.zeros_like(v)) for k, v in deplaned.items()
    }
    corr = {k: _pearson(v, truth_d, valid) for k, v in deplaned.items()}
    npix = valid.sum((1, 2)).double()
    groups: dict[str, Tensor] = {"none": no_deformation.bool()}
    for lo, hi in zip(edges_mm[:-1], edges_mm[1:], strict=False):
        groups[_bin_label(lo, hi)] = (
            (~no_deformation.bool()) & (amplitude_mm > lo) & (amplitude_mm <= hi)
        )
    groups["all"] = torch.ones_like(no_deformation, dtype=torch.bool)

    def summary(sel: Tensor) -> dict[str, Any]:
        n_pix = float(npix[sel].sum())
        row: dict[str, Any] = {"n": int(sel.sum()), "rmse_mm": {}, "corr": {}}
        for k in deplaned:
            rmse = math.sqrt(float(sq[k][sel].sum()) / n_pix) if n_pix > 0 else math.nan
            c = corr[k][sel]
            c = c[torch.isfinite(c)]
            row["rmse_mm"][k] = rmse
            row["corr"][k] = float(c.mean()) if c.numel() else math.nan
        return row

    out: dict[str, Any] = {"bins": {}}
    for name, sel in groups.items():
        if name == "all":
            out["all"] = summary(sel)
        elif int(sel.sum()) > 0:
            out["bins"][name] = summary(sel)
    out["p99_abs_no_deformation_mm"] = {}
    nd = no_deformation.bool()
    for k, v in deplaned.items():
        vals = v[nd][valid[nd]].abs()
        out["p99_abs_no_deformation_mm"][k] = (
            float(torch.quantile(vals.double()[:16_000_000], 0.99)) if vals.numel() else math.nan
        )
    return out


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Flat ``{"all/rmse_mm/model": v, ...}`` view (for CSV logs)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name + "/"))
        else:
            flat[name] = float(value)
    return flat


def format_table(metrics: dict[str, Any]) -> str:
    """Markdown table of RMSE (mm) and correlation per bin and estimate."""
    rows = dict(metrics["bins"])
    rows["all"] = metrics["all"]
    names = list(metrics["all"]["rmse_mm"])
    head = "| bin | n | " + " | ".join(f"RMSE {n} (mm)" for n in names) + " | "
    head += " | ".join(f"r {n}" for n in names) + " |"
    lines = [head, "|" + "---|" * (2 + 2 * len(names))]
    for b, r in rows.items():
        cells = [f"{r['rmse_mm'][n]:.2f}" for n in names] + [f"{r['corr'][n]:.2f}" for n in names]
        lines.append(f"| {b} | {r['n']} | " + " | ".join(cells) + " |")
    p99 = metrics["p99_abs_no_deformation_mm"]
    lines.append("")
    lines.append(
        "99th percentile of |output| on no-deformation examples (mm): "
        + ", ".join(f"{n} {p99[n]:.2f}" for n in names)
    )
    return "\n".join(lines)
