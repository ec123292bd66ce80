"""Inject synthetic deformation of known amplitude into a real stack and measure its recovery.

The user's own stack supplies the noise (its real atmosphere). ``n`` places are drawn in a
grid of tiles (round robin over the tiles, uniform inside a tile); at each place one source
from the simulator (Okada fault or Mogi source with a step / linear / transient history,
:func:`insar_denoise.synth.simulate_batch` with every noise term switched off) is added to a
``crop_px`` square crop at every tested amplitude (a paired design: the same places and
sources at every amplitude). Each crop is cut with ``context_px`` of surrounding data; all
crops are laid side by side in one mosaic that goes through
:func:`~insar_denoise.inference.denoise_dataset` once with and once without the injections.
Two views of each injection, both scored on the central crop against the injected cumulative
signal, every map with its least-squares plane removed (the window model's target and the
evaluation's, :func:`insar_denoise.models.normalization.deplane`; for a whole-stack model,
defined up to a constant, only its mean):

- detection (``corr``, ``rmse_mm``): the output of the injected stack, which still holds the
  stack's residual atmosphere (and any real deformation at that place), as the evaluation
  scores an estimate against its truth. The detection thresholds (whole stack and per tile)
  use this view: :func:`insar_denoise.scoring.metrics.detection_threshold`, r >= 0.7 in
  >= 80 % of the injections of an amplitude and of every larger one.
- transfer (``corr_diff``, ``gain``): ``output(injected) - output(original)``, the method's
  response to the signal alone; ``gain`` is the least-squares factor of
  ``recovered ~ gain x injected`` (1 = no amplitude error). For a linear method (``raw``,
  ``filter``, ``stack``) the noise cancels exactly in this difference, so its correlation
  measures distortion, not detectability (``threshold_diff_mm`` is reported for reference).

Limits: the crops are denoised side by side in one mosaic, so scene-wide fits (the elevation
correction of ``elevation`` / ``best``) and the model's per-tile normalisation see the mosaic
of crops rather than the whole scene; the threshold holds for sources about ``crop_px`` wide.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from insar_denoise.errors import ConfigError, InputError
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.engine import times_in_days
from insar_denoise.io.dataset import dataset_from_arrays
from insar_denoise.models.normalization import deplane_np
from insar_denoise.scoring import metrics
from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.synth.histories import sample_histories
from insar_denoise.trust.qc import interval_days, model_metadata, pixel_spacing_m

log = logging.getLogger(__name__)

DEFAULT_AMPLITUDES_MM: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
#: injected source families and their relative weights (the training mix without "none")
INJECTED_SOURCES = {"okada_strike_slip": 0.2, "okada_dip_slip": 0.2, "okada_tensile": 0.1}
INJECTED_SOURCES["mogi"] = 0.3


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


def injected_signals(
    n: int, n_px: int, times_days: np.ndarray, spacing_m: float, seed: int
) -> tuple[np.ndarray, list[str], list[str]]:
    """``(n, T, n_px, n_px)`` float32 deformation series of unit amplitude (max |cumulative|
    = 1 mm), with the simulator's source and history names.

    Sources sit in the central 30 % of the crop; histories are evaluated at the stack's
    real acquisition times ``times_days`` (days since the first date).
    """
    cfg = SimConfig(
        size=int(n_px),
        n_dates=len(times_days),
        pixel_spacing_m=float(spacing_m),
        source_probs={"none": 0.0, **INJECTED_SOURCES},
        amplitude_mm=(1.0, 1.0),
        source_margin=0.35,
        turbulence=False,
        stratified=False,
        orbital_ramps=False,
        offsets=False,
        holes_prob=0.0,
        unwrap_prob=0.0,
    )
    gen = torch.Generator().manual_seed(int(seed))
    batch = simulate_batch(cfg, int(n), generator=gen)
    hist = sample_histories(
        gen,
        batch.history,
        torch.as_tensor(times_days, dtype=torch.float32),
        duration_frac=cfg.transient_duration_frac,
        device="cpu",
    )
    series = batch.cumulative[:, None] * hist[:, :, None, None]
    names = [batch.source_names[int(s)] for s in batch.source]
    hists = [batch.history_names[int(h)] for h in batch.history]
    return series.numpy().astype(np.float32), names, hists


def _places(
    shape: tuple[int, int], grid: tuple[int, int], n: int, crop: int, rng: np.random.Generator
) -> list[tuple[int, int, int]]:
    """``n`` (tile index, row, col) of crop corners, round robin over the tiles."""
    h, w = shape
    ys = np.linspace(0, h, grid[0] + 1).astype(int)
    xs = np.linspace(0, w, grid[1] + 1).astype(int)
    out = []
    for j in range(n):
        t = j % (grid[0] * grid[1])
        ty, tx = divmod(t, grid[1])
        lo_y, hi_y = ys[ty], max(ys[ty], min(ys[ty + 1], h) - crop)
        lo_x, hi_x = xs[tx], max(xs[tx], min(xs[tx + 1], w) - crop)
        y = min(int(rng.integers(lo_y, hi_y + 1)), h - crop)
        x = min(int(rng.integers(lo_x, hi_x + 1)), w - crop)
        out.append((t, y, x))
    return out


def _mosaic(parts: list[np.ndarray], cols: int) -> np.ndarray:
    """Lay equal ``(..., h, w)`` arrays in rows of ``cols``.

    Unused cells of the last row repeat the first part (valid data and DEM, never scored), so
    that no NaN DEM or empty area enters the per-tile normalisation or scene-wide fits.
    """
    h, w = parts[0].shape[-2:]
    rows = -(-len(parts) // cols)
    out = np.empty((*parts[0].shape[:-2], rows * h, cols * w), np.float32)
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        out[..., r * h : (r + 1) * h, c * w : (c + 1) * w] = parts[i if i < len(parts) else 0]
    return out


def _cells(mosaic: np.ndarray, count: int, cols: int, h: int, w: int) -> list[np.ndarray]:
    return [
        mosaic[..., (i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w]
        for i in range(count)
    ]


def _denoise_mosaic(
    disp: np.ndarray, dem: np.ndarray, ds: xr.Dataset, model: Any, method: str, kw: dict
) -> np.ndarray:
    """Cumulative map (mm) of a mosaic through ``denoise_dataset``."""
    mos = dataset_from_arrays(
        disp, dem, times=ds["time"].values, origin=(0.0, disp.shape[1] - 1.0), half_pixel=False
    )
    res = denoise_dataset(mos, model, method=method, progress=False, return_noise=False, **kw)
    return np.asarray(res["cumulative_deformation"].values, np.float64)


def _aligned(maps: tuple[np.ndarray, ...], ok: np.ndarray, stack: bool) -> list[np.ndarray]:
    """Each map with its least-squares plane over ``ok`` removed, or only its mean there for
    a whole-stack model (defined up to a constant); NaN outside ``ok``."""
    if stack:
        return [np.where(ok, m - (np.mean(m[ok]) if ok.any() else 0.0), np.nan) for m in maps]
    return [deplane_np(m, ok) for m in maps]


def _default_context(meta: dict[str, Any] | None, method: str, sigma_px: float) -> int:
    """Data kept around a crop (px): a model's overlap (a whole-stack model's at least half its
    receptive field, so the crop never sees its neighbours in the mosaic), the filter radius,
    or 4 px."""
    if method == "model":
        meta = meta or {}
        ctx = int(meta.get("default_overlap", 32))
        if meta.get("kind") == "stack":
            ctx = max(ctx, -(-int(meta.get("receptive_field_px", 0)) // 2))
        return ctx
    from insar_denoise import baselines

    return baselines.filter_radius_px(sigma_px) if method in ("filter", "best") else 4


def run_injection(
    ds: xr.Dataset,
    model: Any = None,
    *,
    amplitudes: tuple[float, ...] | list[float] = DEFAULT_AMPLITUDES_MM,
    n: int = 20,
    seed: int = 0,
    method: str = "model",
    grid: int | None = None,
    crop_px: int = 48,
    context_px: int | None = None,
    sigma_px: float = 2.0,
    **denoise_kwargs: Any,
) -> InjectionResult:
    """Inject sources of known amplitude into ``ds`` and measure how well they come back.

    Parameters
    ----------
    ds : canonical Dataset (``displacement(time, y, x)`` mm, ``dem(y, x)`` m).
    model : as for :func:`~insar_denoise.inference.denoise_dataset` (model method only).
    amplitudes : injected amplitudes, max |LOS| of the cumulative signal in its crop (mm).
    n : places (sources) per amplitude; each is injected at every amplitude.
    seed : seed of places, sources and histories (same seed: same result).
    method : ``"model"`` or a classical baseline (``raw|elevation|filter|stack|best``).
    grid : tiles per side of the threshold map (default ``min(4, floor(sqrt(n)))``, fewer
        when the scene is small).
    crop_px : side of the crop that receives a source and is scored (px).
    context_px : data kept around each crop for the method's spatial context (default:
        the model's overlap, at least half the receptive field of a whole-stack model, the
        filter radius, or 4 px).
    sigma_px : Gaussian sigma of ``filter`` / ``best`` (px).
    **denoise_kwargs : passed on (``tile``, ``overlap``, ``device``, ``batch_size``, ...).
    """
    amps = sorted(float(a) for a in amplitudes)
    if not amps or amps[0] <= 0 or n < 1:
        raise ConfigError("need n >= 1 and positive amplitudes")
    disp = ds["displacement"].transpose("time", "y", "x")
    n_t, h, w = disp.shape
    crop = int(min(crop_px, h, w))
    if crop < 8:
        raise InputError(f"the scene ({h}x{w} px) is too small to inject sources (need 8 px)")
    meta = model_metadata(model, method)
    stack = (meta or {}).get("kind") == "stack"
    ctx = int(_default_context(meta, method, sigma_px) if context_px is None else context_px)
    side = grid or max(1, min(4, math.isqrt(n)))
    grid_yx = (max(1, min(side, h // crop)), max(1, min(side, w // crop)))
    rng = np.random.default_rng(int(seed))
    places = _places((h, w), grid_yx, n, crop, rng)
    days = times_in_days(ds["time"].values)
    spacing = pixel_spacing_m(ds) or 90.0
    unit, sources, histories = injected_signals(n, crop, days, spacing, seed)
    # extended crops (crop + context, clipped to the scene): original data and DEM
    ey, ex = min(h, crop + 2 * ctx), min(w, crop + 2 * ctx)
    origin, originals, dems = [], [], []
    for _, y, x in places:
        y0 = int(np.clip(y - ctx, 0, h - ey))
        x0 = int(np.clip(x - ctx, 0, w - ex))
        origin.append((y - y0, x - x0))
        win = {"y": slice(y0, y0 + ey), "x": slice(x0, x0 + ex)}
        originals.append(np.asarray(disp.isel(win).values, np.float32))
        dems.append(np.asarray(ds["dem"].transpose("y", "x").isel(win).values, np.float32))
    injected = []
    for a in amps:
        for i, (oy, ox) in enumerate(origin):
            cube = originals[i].copy()
            cube[:, oy : oy + crop, ox : ox + crop] += a * unit[i]
            injected.append(cube)
    cols = max(1, math.isqrt(len(injected)))
    cols_o = max(1, math.isqrt(n))
    kw = {"sigma_px": sigma_px, **denoise_kwargs}
    out_inj = _denoise_mosaic(
        _mosaic(injected, cols), _mosaic(dems * len(amps), cols), ds, model, method, kw
    )
    out_orig = _denoise_mosaic(
        _mosaic(originals, cols_o), _mosaic(dems, cols_o), ds, model, method, kw
    )
    inj_cells = _cells(out_inj, len(injected), cols, ey, ex)
    orig_cells = _cells(out_orig, n, cols_o, ey, ex)
    records, examples = [], []
    for k, a in enumerate(amps):
        for i, (oy, ox) in enumerate(origin):
            sl = (slice(oy, oy + crop), slice(ox, ox + crop))
            out = inj_cells[k * n + i][sl]
            diff = out - orig_cells[i][sl]
            truth = a * (unit[i][-1] - unit[i][0]).astype(np.float64)
            ok = np.isfinite(out) & np.isfinite(diff)
            est_d, diff_d, tru_d = _aligned((out, diff, truth), ok, stack)
            num = float(np.sum(tru_d[ok] ** 2))
            records.append(
                {
                    "amplitude_mm": a,
                    "place": i,
                    "tile": places[i][0],
                    "row": places[i][1],
                    "col": places[i][2],
                    "source": sources[i],
                    "history": histories[i],
                    "corr": metrics.pearson(est_d, tru_d, ok),
                    "rmse_mm": metrics.rmse(est_d, tru_d, ok),
                    "corr_diff": metrics.pearson(diff_d, tru_d, ok),
                    "gain": float(np.sum(diff_d[ok] * tru_d[ok])) / num if num > 0 else math.nan,
                }
            )
            if i == 0:
                title = f"{a:g} mm, {sources[i]}, {histories[i]}"
                examples.append((title, tru_d, est_d, diff_d))
    res = _summarize(records, amps, places, grid_yx, ds, examples, method, seed, crop, ctx)
    res.ideal = _ideal(ds, disp, places, unit, sources, spacing)
    for r in res.records:
        r["ideal_5sigma_mm"] = res.ideal["per_place_5sigma_mm"][r["place"]] if res.ideal else None
    if res.ideal:
        for name, row in res.ideal["per_source"].items():
            sel = [r for r in records if r["source"] == name]
            thr = metrics.detection_threshold(
                np.array([r["amplitude_mm"] for r in sel]), np.array([r["corr"] for r in sel])
            )
            row["empirical_threshold_mm"] = thr
    return res


def _ideal(ds, disp, places, unit, sources, spacing) -> dict[str, Any] | None:
    """Ideal-observer 5-sigma amplitudes (:mod:`insar_denoise.trust.ideal`), None if the
    stack's noise cannot be estimated."""
    from insar_denoise.trust.ideal import ideal_thresholds

    dem = np.asarray(ds["dem"].transpose("y", "x").values, np.float64) if "dem" in ds else None
    try:
        return ideal_thresholds(np.asarray(disp.values), dem, spacing, places, unit, sources)
    except ValueError as exc:
        log.warning("ideal observer skipped: %s", exc)
        return None


def _median(values: np.ndarray) -> float:
    v = values[np.isfinite(values)]
    return float(np.median(v)) if v.size else math.nan


def _summarize(records, amps, places, grid_yx, ds, examples, method, seed, crop, ctx):
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
