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

import logging
import math
from typing import Any

import numpy as np
import xarray as xr

from insar_denoise.errors import ConfigError, InputError
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.engine import times_in_days
from insar_denoise.io.dataset import dataset_from_arrays
from insar_denoise.models.normalization import deplane_np
from insar_denoise.models.registry import ModelLike
from insar_denoise.scoring import metrics
from insar_denoise.trust.inject_layout import (
    INJECTED_SOURCES,
    cells,
    injected_signals,
    mosaic,
    places,
)
from insar_denoise.trust.inject_result import InjectionResult, summarize, write_injection_report
from insar_denoise.trust.measures import pixel_spacing_m
from insar_denoise.trust.qc import model_metadata

log = logging.getLogger(__name__)

DEFAULT_AMPLITUDES_MM: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0)

__all__ = [
    "DEFAULT_AMPLITUDES_MM",
    "INJECTED_SOURCES",
    "InjectionResult",
    "injected_signals",
    "run_injection",
    "write_injection_report",
]


def _denoise_mosaic(
    disp: np.ndarray, dem: np.ndarray, ds: xr.Dataset, model: ModelLike, method: str, kw: dict
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
    model: ModelLike = None,
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
    spots = places((h, w), grid_yx, n, crop, np.random.default_rng(int(seed)))
    spacing = pixel_spacing_m(ds) or 90.0
    unit, sources, histories = injected_signals(
        n, crop, times_in_days(ds["time"].values), spacing, seed
    )
    origin, originals, dems = _extended_crops(ds, disp, spots, crop, ctx)
    kw = {"sigma_px": sigma_px, **denoise_kwargs}
    inj_cells, orig_cells = _denoise_crops(
        ds, model, method, kw, _injected(originals, origin, unit, amps, crop), originals, dems
    )
    records, examples = [], []
    for k, a in enumerate(amps):
        for i, (oy, ox) in enumerate(origin):
            sl = (slice(oy, oy + crop), slice(ox, ox + crop))
            truth = a * (unit[i][-1] - unit[i][0]).astype(np.float64)
            scores, maps = _score(inj_cells[k * n + i][sl], orig_cells[i][sl], truth, stack)
            where = dict(zip(("tile", "row", "col"), spots[i], strict=True))
            info = {"source": sources[i], "history": histories[i]}
            records.append({"amplitude_mm": a, "place": i, **where, **info, **scores})
            if i == 0:
                examples.append((f"{a:g} mm, {sources[i]}, {histories[i]}", *maps))
    res = summarize(records, amps, spots, grid_yx, ds, examples, method, seed, crop, ctx)
    _add_ideal(res, _ideal(ds, disp, spots, unit, sources, spacing))
    return res


def _extended_crops(
    ds: xr.Dataset, disp: xr.DataArray, spots: list[tuple[int, int, int]], crop: int, ctx: int
) -> tuple[list[tuple[int, int]], list[np.ndarray], list[np.ndarray]]:
    """Crops widened by ``ctx`` px of context (clipped to the scene): the crop's corner
    inside each, the original displacement and the DEM (float32)."""
    n_t, h, w = disp.shape
    ey, ex = min(h, crop + 2 * ctx), min(w, crop + 2 * ctx)
    origin, originals, dems = [], [], []
    for _, y, x in spots:
        y0 = int(np.clip(y - ctx, 0, h - ey))
        x0 = int(np.clip(x - ctx, 0, w - ex))
        origin.append((y - y0, x - x0))
        win = {"y": slice(y0, y0 + ey), "x": slice(x0, x0 + ex)}
        originals.append(np.asarray(disp.isel(win).values, np.float32))
        dems.append(np.asarray(ds["dem"].transpose("y", "x").isel(win).values, np.float32))
    return origin, originals, dems


def _injected(
    originals: list[np.ndarray],
    origin: list[tuple[int, int]],
    unit: np.ndarray,
    amps: list[float],
    crop: int,
) -> list[np.ndarray]:
    """Every original crop with its unit source times each amplitude added (amplitude-major)."""
    injected = []
    for a in amps:
        for i, (oy, ox) in enumerate(origin):
            cube = originals[i].copy()
            cube[:, oy : oy + crop, ox : ox + crop] += a * unit[i]
            injected.append(cube)
    return injected


def _denoise_crops(
    ds: xr.Dataset,
    model: Any,
    method: str,
    kw: dict,
    injected: list[np.ndarray],
    originals: list[np.ndarray],
    dems: list[np.ndarray],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Cumulative maps of the injected and of the original crops, each set denoised as one
    mosaic."""
    n = len(originals)
    ey, ex = originals[0].shape[-2:]
    cols = max(1, math.isqrt(len(injected)))
    cols_o = max(1, math.isqrt(n))
    reps = len(injected) // n
    out_inj = _denoise_mosaic(
        mosaic(injected, cols), mosaic(dems * reps, cols), ds, model, method, kw
    )
    out_orig = _denoise_mosaic(
        mosaic(originals, cols_o), mosaic(dems, cols_o), ds, model, method, kw
    )
    return cells(out_inj, len(injected), cols, ey, ex), cells(out_orig, n, cols_o, ey, ex)


def _score(
    out: np.ndarray, orig: np.ndarray, truth: np.ndarray, stack: bool
) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Detection and transfer scores of one injection (module docstring) and its aligned
    maps (truth, estimate, difference)."""
    diff = out - orig
    ok = np.isfinite(out) & np.isfinite(diff)
    est_d, diff_d, tru_d = _aligned((out, diff, truth), ok, stack)
    num = float(np.sum(tru_d[ok] ** 2))
    scores = {
        "corr": metrics.pearson(est_d, tru_d, ok),
        "rmse_mm": metrics.rmse(est_d, tru_d, ok),
        "corr_diff": metrics.pearson(diff_d, tru_d, ok),
        "gain": float(np.sum(diff_d[ok] * tru_d[ok])) / num if num > 0 else math.nan,
    }
    return scores, (tru_d, est_d, diff_d)


def _add_ideal(res: InjectionResult, ideal: dict[str, Any] | None) -> None:
    """Attach the ideal observer's thresholds, per place and per source beside the empirical."""
    res.ideal = ideal
    for r in res.records:
        r["ideal_5sigma_mm"] = ideal["per_place_5sigma_mm"][r["place"]] if ideal else None
    if ideal:
        for name, row in ideal["per_source"].items():
            sel = [r for r in res.records if r["source"] == name]
            thr = metrics.detection_threshold(
                np.array([r["amplitude_mm"] for r in sel]), np.array([r["corr"] for r in sel])
            )
            row["empirical_threshold_mm"] = thr


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
