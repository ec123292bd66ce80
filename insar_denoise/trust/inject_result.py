"""The result of an injection test: per-injection records summarised per amplitude and per
tile (:class:`InjectionResult`), and its report folder."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from insar_denoise.scoring import metrics
from insar_denoise.trust.measures import interval_days, pixel_spacing_m


@dataclass
class InjectionResult:
    """Recovery of injected signals (JSON-ready via :meth:`to_dict`)."""

    method: str
    seed: int
    amplitudes_mm: list[float]
    crop_px: int
    context_px: int
    grid: tuple[int, int]
    records: list[dict[str, Any]]
    per_amplitude: list[dict[str, Any]]
    threshold_mm: float | None
    threshold_diff_mm: float | None
    tile_threshold_mm: np.ndarray  # (grid_y, grid_x), NaN: not detected / no injection
    extent: tuple[float, float, float, float]  # left, right, bottom, top of the scene
    examples: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    #: ideal-observer 5-sigma amplitudes per place and per source (see trust.ideal)
    ideal: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Everything but the example maps, with NaN as None."""
        tiles = [
            [None if not math.isfinite(v) else float(v) for v in row]
            for row in self.tile_threshold_mm.tolist()
        ]
        return {
            "method": self.method,
            "seed": self.seed,
            "amplitudes_mm": self.amplitudes_mm,
            "crop_px": self.crop_px,
            "context_px": self.context_px,
            "grid": list(self.grid),
            "threshold_mm": self.threshold_mm,
            "threshold_diff_mm": self.threshold_diff_mm,
            "tile_threshold_mm": tiles,
            "per_amplitude": _nan_to_none(self.per_amplitude),
            "records": _nan_to_none(self.records),
            "criterion": f"r >= {metrics.R_MIN} in >= {metrics.DETECTED_FRAC:.0%} of the "
            "injections of an amplitude and of every larger one",
            "attrs": self.attrs,
            "ideal_observer": self.ideal,
        }


def _nan_to_none(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def fix(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return [{k: fix(v) for k, v in r.items()} for r in rows]


def _nan_to_none(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def fix(v: Any) -> Any:
        return None if isinstance(v, float) and not math.isfinite(v) else v

    return [{k: fix(v) for k, v in r.items()} for r in rows]


def _median(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(np.median(v)) if v.size else math.nan


def summarize(
    records: list[dict[str, Any]],
    amps: list[float],
    places: list[tuple[int, int, int]],
    grid_yx: tuple[int, int],
    ds: xr.Dataset,
    examples: list,
    method: str,
    seed: int,
    crop: int,
    ctx: int,
) -> InjectionResult:
    """The :class:`InjectionResult` of per-injection ``records``: per-amplitude table,
    thresholds of the whole stack and per tile, the scene's extent."""
    amp = np.array([r["amplitude_mm"] for r in records])
    col = {k: np.array([r[k] for r in records], np.float64) for k in ("corr", "corr_diff", "gain")}
    rmse = np.array([r["rmse_mm"] for r in records], np.float64)
    table = []
    for a in amps:
        sel = amp == a
        table.append(
            {
                "amplitude_mm": a,
                "n": int(sel.sum()),
                "corr_median": _median(col["corr"][sel]),
                "detected_frac": metrics.detected_fraction(col["corr"][sel]),
                "rmse_mm": float(np.sqrt(np.nanmean(rmse[sel] ** 2))),
                "corr_diff_median": _median(col["corr_diff"][sel]),
                "detected_frac_diff": metrics.detected_fraction(col["corr_diff"][sel]),
                "gain_median": _median(col["gain"][sel]),
            }
        )
    corr = col["corr"]
    tiles = np.array([r["tile"] for r in records])
    tile_thr = np.full(grid_yx, np.nan)
    for t in range(grid_yx[0] * grid_yx[1]):
        sel = tiles == t
        if sel.any():
            thr = metrics.detection_threshold(amp[sel], corr[sel])
            tile_thr[divmod(t, grid_yx[1])] = np.nan if thr is None else thr
    x = np.asarray(ds["x"].values, float)
    y = np.asarray(ds["y"].values, float)
    dx = x[1] - x[0] if x.size > 1 else 1.0
    dy = y[1] - y[0] if y.size > 1 else -1.0
    extent = (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2)
    return InjectionResult(
        method=method,
        seed=int(seed),
        amplitudes_mm=list(amps),
        crop_px=crop,
        context_px=ctx,
        grid=grid_yx,
        records=records,
        per_amplitude=table,
        threshold_mm=metrics.detection_threshold(amp, corr),
        threshold_diff_mm=metrics.detection_threshold(amp, col["corr_diff"]),
        tile_threshold_mm=tile_thr,
        extent=tuple(float(v) for v in extent),
        examples=examples,
        attrs={
            "n_places": len(places),
            "n_dates": int(ds.sizes["time"]),
            "interval_days": interval_days(ds),
            "pixel_spacing_m": pixel_spacing_m(ds),
        },
    )


def write_injection_report(
    result: InjectionResult, out_dir: str | Path, overwrite: bool = False
) -> dict[str, Path]:
    """Write ``inject.json``, ``report.md``, ``amplitude.png``, ``threshold_map.png`` and
    ``examples.png`` into ``out_dir`` (created); existing files need ``overwrite``."""
    from insar_denoise.io import atomic_output
    from insar_denoise.io.targets import check_report_files
    from insar_denoise.trust.figures import (
        amplitude_figure,
        examples_figure,
        threshold_map_figure,
    )
    from insar_denoise.trust.reports import injection_markdown

    out = Path(out_dir)
    names = ("inject.json", "report.md", "amplitude.png", "threshold_map.png", "examples.png")
    paths = {p.stem: p for p in check_report_files(out, names, overwrite)}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(paths["inject"], overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(result.to_dict(), indent=1))
    amplitude_figure(result.per_amplitude, paths["amplitude"], overwrite)
    threshold_map_figure(result.tile_threshold_mm, result.extent, paths["threshold_map"], overwrite)
    examples_figure(result.examples, paths["examples"], overwrite)
    with atomic_output(paths["report"], overwrite=overwrite) as tmp:
        Path(tmp).write_text(injection_markdown(result))
    return paths
