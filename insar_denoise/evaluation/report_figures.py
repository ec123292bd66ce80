"""Figures of an evaluation report: example maps on their own colour scales, metric
curves versus amplitude, the coverage curve of the uncertainty bands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.plots import calibration_figure, pyplot, save_png


def panel_limit(values: np.ndarray) -> float:
    """Symmetric colour limit of one map: the larger |p1|, |p99| of its finite values (1 mm
    when there are none or all are zero), so every panel has its own robust scale."""
    from insar_denoise.plots import robust_range

    lo, hi = robust_range(values)
    vmax = max(abs(lo), abs(hi)) if np.isfinite(lo) else 0.0
    return vmax if vmax > 0 else 1.0


def plot_examples(examples: list[tuple[str, dict[str, np.ndarray]]], path: Path) -> None:
    """One row per example scene: target and every method, each map on its own robust
    colour scale (symmetric p1-p99) with its own colour bar in mm."""
    plt = pyplot()
    ncol = max(len(maps) for _, maps in examples)
    fig, axes = plt.subplots(
        len(examples),
        ncol,
        figsize=(2.4 * ncol + 1.0, 2.6 * len(examples)),
        squeeze=False,
    )
    fig.subplots_adjust(left=0.02, right=0.96, top=0.9, bottom=0.03, wspace=0.35, hspace=0.5)
    for row, (title, maps) in zip(axes, examples, strict=True):
        for ax, (name, m) in zip(row, maps.items(), strict=False):
            vmax = panel_limit(m)
            im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            label = f"target: {title}" if name == "truth" else name
            ax.set_title(f"{label}\n±{vmax:.3g} mm", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02).ax.tick_params(labelsize=6)
        for ax in row[len(maps) :]:
            ax.axis("off")
    save_png(fig, path, overwrite=True, dpi=90)


def plot_curves(metrics: dict[str, Any], metric: str, label: str, path: Path) -> None:
    """``metric`` versus amplitude, one panel per noise level, one line per method."""
    plt = pyplot()
    groups = metrics["groups"]["amplitude_noise"]
    levels = list(metrics["design"]["noise_turbulence_std_mm"])
    fig, axes = plt.subplots(
        1, len(levels), figsize=(5 * len(levels), 3.6), squeeze=False, layout="constrained"
    )
    for ax, level in zip(axes[0], levels, strict=True):
        keys = [k for k in groups if k.endswith(f"|{level}")]
        amps = [float(k.split("|")[0]) for k in keys]
        for m in metrics["methods"]:
            vals = [groups[k][metric][m] for k in keys]
            vals = [np.nan if v is None else v for v in vals]
            ax.plot(amps, vals, marker="o", lw=2.5 if m == "model" else 1.2, label=m)
        std = metrics["design"]["noise_turbulence_std_mm"][level]
        ax.set_title(f"{level} noise (turbulence {std:g} mm)")
        ax.set_xlabel("deformation amplitude (mm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    save_png(fig, path, overwrite=True, dpi=90)


def plot_uncertainty(metrics: dict[str, Any], path: Path, paths: dict, key: str) -> None:
    """The coverage curve of the uncertainty bands, if the metrics have one."""
    unc = metrics.get("uncertainty") or {}
    if "curve" not in unc:
        return
    calibration_figure(
        np.asarray(unc["curve"]["levels_sigma"]),
        np.asarray(unc["curve"]["observed"]),
        path,
        True,
        coverage_95=unc["coverage_95"],
        title=f"split {metrics.get('split', '')}",
    )
    paths[key] = path
