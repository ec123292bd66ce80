"""Figures: the quicklook of a run (maps in map coordinates, colour bars in mm)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from insar_denoise.io import atomic_output


def _extent(da: xr.DataArray) -> tuple[float, float, float, float]:
    """Pixel-edge extent (left, right, bottom, top) from the x/y pixel-centre coordinates."""
    x = np.asarray(da["x"], dtype=float)
    y = np.asarray(da["y"], dtype=float)
    dx = (x[1] - x[0]) if x.size > 1 else 1.0
    dy = (y[1] - y[0]) if y.size > 1 else -1.0
    return (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2)


def _axis_labels(da: xr.DataArray) -> tuple[str, str]:
    crs = da.rio.crs if hasattr(da, "rio") else None
    if crs is not None and crs.is_geographic:
        return "longitude (°)", "latitude (°)"
    unit = "m"
    if crs is not None and crs.linear_units not in (None, "", "unknown"):
        unit = crs.linear_units
    return f"easting ({unit})", f"northing ({unit})"


def quicklook(
    panels: list[tuple[str, xr.DataArray, str]],
    path: str | Path,
    *,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Draw maps side by side and save a PNG atomically.

    Parameters
    ----------
    panels
        ``(title, map, unit)`` triples; maps are 2-D DataArrays with ``x``/``y`` coordinates
        (and a rioxarray CRS). Maps in mm share a symmetric colour scale; other units get
        their own terrain scale.
    path
        Output PNG.
    """
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mm_maps = [np.asarray(p[1], dtype=float) for p in panels if p[2] == "mm"]
    finite = np.concatenate([m[np.isfinite(m)].ravel() for m in mm_maps]) if mm_maps else []
    vmax = float(np.percentile(np.abs(finite), 99)) if len(finite) else 1.0
    vmax = vmax if vmax > 0 else 1.0
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.0), squeeze=False)
    for ax, (name, da, unit) in zip(axes[0], panels, strict=True):
        data = np.asarray(da, dtype=float)
        if unit == "mm":
            im = ax.imshow(data, extent=_extent(da), cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        else:
            im = ax.imshow(data, extent=_extent(da), cmap="terrain")
        fig.colorbar(im, ax=ax, shrink=0.8, label=f"{unit}" + (" (LOS)" if unit == "mm" else ""))
        xlabel, ylabel = _axis_labels(da)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(name, fontsize=10)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return Path(path)
