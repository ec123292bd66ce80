"""Figures: the quicklook of a run (maps in map coordinates, one colour bar per panel).

Each map has its own robust colour scale (symmetric 1st-99th percentile of that panel for
displacements, 0 to the 99th percentile for uncertainties, 0-1 for probabilities), the same
extent, and the reference point (or area) of the run marked.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import xarray as xr

from insar_denoise.io import atomic_output
from insar_denoise.reference import Reference, apply_reference

#: longest side (px) of a plotted map; larger maps are decimated for the figure only
MAX_PLOT_PX = 1024
#: percentiles of the robust colour scale
ROBUST_PERCENTILES = (1.0, 99.0)


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


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported lazily)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | Path, overwrite: bool = True, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG atomically (:func:`insar_denoise.io.atomic_output`), close it."""
    with atomic_output(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)
    return Path(path)


def robust_range(values, percentiles: tuple[float, float] = ROBUST_PERCENTILES) -> tuple:
    """``(p1, p99)`` of the finite values (NaN, NaN when there are none)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.percentile(v, percentiles)
    return (float(lo), float(hi))


def _scale(data: np.ndarray, style: str) -> tuple[str, float, float]:
    """Colour map and limits of one panel."""
    if style == "probability":
        return "viridis", 0.0, 1.0
    lo, hi = robust_range(data)
    if not np.isfinite(lo):
        lo, hi = 0.0, 1.0
    if style == "sequential":
        top = hi if hi > 0 else 1.0
        return "magma_r", 0.0, top
    if style == "terrain":
        return "terrain", lo, hi if hi > lo else lo + 1.0
    vmax = max(abs(lo), abs(hi)) or 1.0
    return "RdBu_r", -vmax, vmax


def _mark(ax, da: xr.DataArray, ref: Reference | None, step: int) -> None:
    """Draw the reference pixel (triangle) or area (rectangle) on a map."""
    if ref is None or ref.kind == "median":
        return
    x = np.asarray(da["x"], float)
    y = np.asarray(da["y"], float)
    dx = (x[1] - x[0]) / step if x.size > 1 else 1.0
    dy = (y[1] - y[0]) / step if y.size > 1 else -1.0
    left, top = x[0] - dx / 2, y[0] - dy / 2
    x0, x1 = left + ref.cols[0] * dx, left + ref.cols[1] * dx
    y0, y1 = top + ref.rows[0] * dy, top + ref.rows[1] * dy
    if ref.kind == "yx":
        ax.plot([(x0 + x1) / 2], [(y0 + y1) / 2], "^", ms=9, mfc="yellow", mec="black", mew=1.2)
    else:
        import matplotlib.patches

        rect = matplotlib.patches.Rectangle(
            (min(x0, x1), min(y0, y1)), abs(x1 - x0), abs(y1 - y0), fill=False, ec="black", lw=1.5
        )
        ax.add_patch(rect)


def quicklook(
    panels: list[tuple],
    path: str | Path,
    *,
    title: str | None = None,
    overwrite: bool = False,
    reference: Reference | None = None,
    step: int = 1,
) -> Path:
    """Draw maps in a grid, each with its own colour bar, and save a PNG atomically.

    Parameters
    ----------
    panels
        ``(title, map, unit[, style])``: 2-D DataArrays with ``x``/``y`` coordinates (and a
        rioxarray CRS); style ``"diverging"`` (default for mm: symmetric p1-p99),
        ``"sequential"`` (0 to p99), ``"probability"`` (0-1) or ``"terrain"`` (other units).
    path
        Output PNG.
    reference
        The run's reference, marked on every map (pixel indices of the full grid).
    step
        Decimation of the maps relative to the grid of ``reference``.
    """
    import matplotlib.ticker

    plt = pyplot()
    ncols = len(panels) if len(panels) <= 4 else math.ceil(len(panels) / 2)
    nrows = math.ceil(len(panels) / ncols)
    da0 = panels[0][1]
    aspect = da0.sizes["y"] / max(1, da0.sizes["x"])
    side = 3.6
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(side * ncols, min(3.2 * side, 0.8 * side * aspect + 0.8) * nrows + 0.4),
        squeeze=False,
        layout="constrained",
    )
    extent = _extent(da0)
    for ax, panel in zip(axes.ravel(), panels, strict=False):
        name, da, unit = panel[:3]
        style = panel[3] if len(panel) > 3 else ("diverging" if unit == "mm" else "terrain")
        data = np.asarray(da, dtype=float)
        cmap, vmin, vmax = _scale(data, style)
        im = ax.imshow(
            data, extent=extent, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
        fig.colorbar(im, ax=ax, shrink=0.9, label={"mm": "mm (LOS)"}.get(unit, unit))
        if style == "diverging":
            name = f"{name}\n±{vmax:.3g} mm (p1–p99)"
        elif style == "sequential":
            name = f"{name}\n0–{vmax:.3g} mm (p99)"
        _mark(ax, da, reference, step)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        xlabel, ylabel = _axis_labels(da)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.ticklabel_format(useOffset=False, style="plain")
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_png(fig, path, overwrite, dpi=100)


def _cumulative_name(result: xr.Dataset) -> str:
    return "cumulative_deformation" if "cumulative_deformation" in result else "cumulative"


def raw_cumulative(ds: xr.Dataset, reference: Reference | None = None) -> xr.DataArray:
    """Last minus first date of the input (mm), referred to ``reference`` if given."""
    disp = ds["displacement"].transpose("time", "y", "x")
    raw = xr.Dataset({"displacement": disp.isel(time=-1) - disp.isel(time=0)})
    if reference is not None:
        raw = apply_reference(raw, reference)
    return raw["displacement"]


def _scaled(ref: Reference | None, step: int) -> Reference | None:
    """``ref`` on a grid decimated by ``step`` (a pixel becomes the cell that holds it)."""
    if ref is None or ref.kind == "median" or step == 1:
        return ref
    rows = (ref.rows[0] // step, max(ref.rows[0] // step + 1, math.ceil(ref.rows[1] / step)))
    cols = (ref.cols[0] // step, max(ref.cols[0] // step + 1, math.ceil(ref.cols[1] / step)))
    return Reference("area", rows, cols, ref.source)


def result_panels(
    ds: xr.Dataset, result: xr.Dataset, reference: Reference | None = None
) -> tuple[list[tuple], int]:
    """Panels of a run's maps (mm) and their decimation step.

    Raw cumulative, the run's output, the classical ``best`` correction (computed on the
    decimated maps, with the same reference), what was removed, and ``uncertainty`` /
    ``detection`` when the result has them. Every map is on the input's grid and CRS.
    """
    from insar_denoise.inference.engine import denoise_dataset

    h, w = ds.sizes["y"], ds.sizes["x"]
    step = max(1, math.ceil(max(h, w) / MAX_PLOT_PX))
    sub = {"y": slice(None, None, step), "x": slice(None, None, step)}
    crs = ds.rio.crs
    name = _cumulative_name(result)
    out = result[name].isel(sub).compute()
    raw = raw_cumulative(ds.isel(sub), _scaled(reference, step)).compute()
    raw = raw.where(np.isfinite(out))
    method = result.attrs.get("insar_denoise_method", "model")
    panels = [("raw cumulative", raw, "mm"), (f"output cumulative ({method})", out, "mm")]
    if method != "best" and "dem" in ds:
        small = ds[["displacement", "dem"]].isel(sub).compute()
        need = result.attrs.get("insar_denoise_min_valid_dates")
        best = denoise_dataset(
            small, method="best", progress=False, return_noise=False, min_valid_dates=need
        )
        if reference is not None:
            best = apply_reference(best, _scaled(reference, step))
        panels.append(("classical correction (best)", best["cumulative_deformation"], "mm"))
    panels.append(("removed (raw − output)", raw - out, "mm"))
    if "uncertainty" in result:
        panels.append(("uncertainty (1σ)", result["uncertainty"].isel(sub), "mm", "sequential"))
    if "detection" in result:
        panels.append(
            ("detection probability", result["detection"].isel(sub), "probability", "probability")
        )
    if crs is not None:
        panels = [(p[0], p[1].rio.write_crs(crs), *p[2:]) for p in panels]
    return panels, step


def calibration_figure(
    levels: np.ndarray,
    coverage: np.ndarray,
    path: Path,
    overwrite: bool,
    coverage_95: float | None = None,
    title: str = "observed (fresh seed)",
) -> Path:
    """Observed coverage of ``|truth - mean| <= z sigma`` against the Gaussian expectation
    (and of the separately calibrated 95 % band, if given)."""
    from math import erf, sqrt

    plt = pyplot()
    expected = [erf(z / sqrt(2.0)) for z in levels]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot(expected, coverage, "o-", label=f"z sigma, z = {levels[0]:g}..{levels[-1]:g}: {title}")
    if coverage_95 is not None:
        ax.plot([erf(2 / sqrt(2.0))], [coverage_95], "s", color="C3", label="95 % band")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, label="ideal")
    ax.set_xlabel("expected coverage (Gaussian)")
    ax.set_ylabel("observed coverage")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, overwrite, dpi=100)
