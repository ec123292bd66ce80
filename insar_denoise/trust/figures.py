"""Figures of the trust reports (PNG, written atomically; maps in map coordinates, mm bars)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from insar_denoise.plots import pyplot, save_png


def _save(fig, path: Path, overwrite: bool) -> Path:
    fig.tight_layout()
    return save_png(fig, path, overwrite, dpi=100)


def map_figure(ds: xr.Dataset, result: xr.Dataset, path: Path, overwrite: bool) -> Path:
    """Raw, output, classical (best) and removed cumulative maps (mm), and the uncertainty
    and detection maps when the result has them, the reference marked
    (:func:`insar_denoise.plots.result_panels`)."""
    from insar_denoise.plots import quicklook, result_panels
    from insar_denoise.reference import reference_from_attrs

    ref = reference_from_attrs(result.attrs)
    panels, step = result_panels(ds, result, ref)
    dates = f"{str(ds.time.values[0])[:10]} → {str(ds.time.values[-1])[:10]}"
    where = result.attrs.get("insar_denoise_reference", "input as is")
    title = f"LOS displacement {dates}; reference: {where}"
    return quicklook(panels, path, title=title, overwrite=overwrite, reference=ref, step=step)


def noise_figure(rows: Sequence[dict[str, Any]], path: Path, overwrite: bool) -> Path:
    """Removed-noise std, elevation coefficient, spectral beta and NaN share per date."""
    from insar_denoise.synth.turbulence import ATMOSPHERE_BETA

    plt = pyplot()
    dates = np.array([r["date"] for r in rows], dtype="datetime64[D]")
    fig, axes = plt.subplots(4, 1, figsize=(7, 8), sharex=True)
    keys = [
        ("std_mm", "removed std (mm)"),
        ("elevation_mm_per_km", "elevation coef. (mm/km)"),
        ("spectral_beta", "spectral beta"),
        ("nan_share", "input NaN share\nper date"),
    ]
    for ax, (key, label) in zip(axes, keys, strict=True):
        vals = [math.nan if r[key] is None else r[key] for r in rows]
        ax.plot(dates, vals, "o-", ms=3)
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
    axes[2].axhspan(*ATMOSPHERE_BETA, color="tab:green", alpha=0.15, label="atmosphere-like")
    axes[2].legend(fontsize=7)
    axes[-1].set_xlabel("date")
    fig.autofmt_xdate()
    return _save(fig, path, overwrite)


def amplitude_figure(table: Sequence[dict[str, Any]], path: Path, overwrite: bool) -> Path:
    """Injection recovery per amplitude: correlation and detected share, amplitude gain."""
    plt = pyplot()
    amps = [t["amplitude_mm"] for t in table]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax1.plot(amps, [t["corr_median"] for t in table], "o-", label="median correlation")
    ax1.plot(amps, [t["detected_frac"] for t in table], "s--", label="share with r ≥ 0.7")
    ax1.plot(amps, [t["corr_diff_median"] for t in table], "^:", label="median r, difference")
    ax1.axhline(0.7, color="grey", lw=0.8)
    ax1.axhline(0.8, color="grey", lw=0.8, ls=":")
    ax1.set_xscale("log")
    ax1.set_xlabel("injected amplitude (mm)")
    ax1.set_ylim(-0.3, 1.05)
    ax1.legend(fontsize=7)
    ax2.plot(amps, [t["gain_median"] for t in table], "o-")
    ax2.axhline(1.0, color="grey", lw=0.8)
    ax2.set_xscale("log")
    ax2.set_xlabel("injected amplitude (mm)")
    ax2.set_ylabel("gain: recovered / injected amplitude")
    return _save(fig, path, overwrite)


def examples_figure(
    examples: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    path: Path,
    overwrite: bool,
) -> Path:
    """Injected, output and difference crops (de-planed, mm) of one place per amplitude."""
    plt = pyplot()
    rows = max(1, len(examples))
    fig, axes = plt.subplots(rows, 3, figsize=(8.4, 2.5 * rows), squeeze=False)
    for ax_row, (title, truth, est, diff) in zip(axes, examples, strict=False):
        vmax = float(np.nanmax(np.abs(truth))) or 1.0
        for ax, data, name in zip(
            ax_row, (truth, est, diff), ("injected", "output", "difference"), strict=True
        ):
            im = ax.imshow(data, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            fig.colorbar(im, ax=ax, shrink=0.8, label="mm (LOS)")
            ax.set_title(f"{name}: {title}", fontsize=7)
            ax.set_xlabel("px", fontsize=7)
            ax.tick_params(labelsize=6)
    return _save(fig, path, overwrite)


def threshold_map_figure(
    threshold: np.ndarray, extent: tuple[float, float, float, float], path: Path, overwrite: bool
) -> Path:
    """Local detection threshold per tile (mm); NaN = not detected at any amplitude."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4.2))
    im = ax.imshow(threshold, extent=extent, cmap="viridis_r", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.85, label="detection threshold (mm LOS)")
    import matplotlib.ticker

    ny, nx = threshold.shape
    left, right, bottom, top = extent
    for (i, j), v in np.ndenumerate(threshold):
        x = left + (j + 0.5) * (right - left) / nx
        y = top - (i + 0.5) * (top - bottom) / ny
        label = "–" if not np.isfinite(v) else f"{v:g}"
        ax.text(x, y, label, ha="center", va="center", bbox={"fc": "white", "alpha": 0.7, "lw": 0})
    ax.set_xlabel("easting / x")
    ax.set_ylabel("northing / y")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
    ax.tick_params(labelsize=7)
    ax.set_title("local detection threshold (blank: not detected)", fontsize=9)
    return _save(fig, path, overwrite)
