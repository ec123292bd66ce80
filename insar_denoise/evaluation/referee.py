"""The v2 benchmark ("referee"): whole simulated stacks like users' data, scored against the
ideal observer's SNR.

Scenes (:mod:`.referee_scenes`, :func:`design`) are whole stacks of ``size`` px (default
192) and T = 9, 18, 36 or 72 dates with one source type of :data:`SOURCE_TYPES` (or none),
1-50 mm, turbulence 2-12 mm per date and gaps in time, the rest as in the split.

Every method runs through :func:`insar_denoise.inference.denoise_dataset` on the scene's
in-memory canonical Dataset, so any model the package loads works unchanged (window models
with stride ``window - 1`` on long stacks: contiguous windows). The truth is the simulated
cumulative deformation (last minus first date) and the whole series; scores are taken up
to a constant offset only (:mod:`.referee_scoring`). Each scene is binned by the ideal
observer's SNR with known history (:func:`insar_denoise.scoring.ideal_observer.batch_snr`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
import xarray as xr

from insar_denoise._version import __version__
from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.evaluation.referee_scenes import (
    AMPLITUDE_MM,
    GAP_DATES,
    GAP_PROB,
    GAP_SIDE,
    N_DATES,
    SOURCE_TYPES,
    TURBULENCE_MM,
    SceneSpec,
    design,
    simulate,
)
from insar_denoise.evaluation.runner import Evaluation, model_info
from insar_denoise.models.registry import ModelLike
from insar_denoise.scoring.benchmark_scenes import split_config
from insar_denoise.scoring.ideal_observer import IdealSNR, batch_snr
from insar_denoise.synth import SimBatch

log = logging.getLogger(__name__)

METHODS: tuple[str, ...] = ("model", "baseline", "best", "zero", "raw")
DEFAULT_SIZE = 192
#: scenes per split of ``evaluate``'s default run (see README, "Benchmark v2": <= 30 min)
DEFAULT_N = 84
#: Gaussian sigmas (px) tried for ``best`` (broad sources on 192 px scenes need wide ones)
SIGMA_CANDIDATES_PX: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 32.0, 48.0, 64.0)
TUNE_SEED_OFFSET = 1_000_003
TARGET = (
    "true cumulative deformation (last minus first date, mm LOS) and true series of the "
    "whole stack; every output is compared up to a constant offset only (medians over the "
    "compared pixels removed, no plane removal)"
)


def model_stride(model: ModelLike, n_dates: int) -> int:
    """Window stride for ``model`` on ``n_dates`` dates: ``window - 1`` (contiguous
    windows, the fewest that cover the stack) for a window model shorter than the stack,
    else 1 (whole-stack models included)."""
    meta = getattr(model, "metadata", None) or {}
    window = meta.get("window")
    if meta.get("kind") == "stack":  # whole-stack models have no windows
        return 1
    if isinstance(window, int) and 2 < window < n_dates:
        return window - 1
    return 1


def method_outputs(
    ds: xr.Dataset, model: ModelLike, sigma_px: float, device: str = "cpu", baseline: Any = None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{method: (cumulative (H, W), series (T, H, W))}`` in mm of every method of
    :data:`METHODS` (``model`` / ``baseline`` only when such a model is given: the baseline
    is a second model scored on the same scenes, e.g. the previous release)."""
    from insar_denoise.inference import denoise_dataset

    disp = np.asarray(ds["displacement"].values, np.float32)
    raw = disp - disp[:1]
    out = {}
    runs = {"best": {"model": None, "method": "best", "sigma_px": sigma_px}}
    if model is not None:
        stride = model_stride(model, disp.shape[0])
        runs = {"model": {"model": model, "stride": stride, "device": device}, **runs}
    if baseline is not None:
        stride = model_stride(baseline, disp.shape[0])
        runs["baseline"] = {"model": baseline, "stride": stride, "device": device}
    for name, kwargs in runs.items():
        res = denoise_dataset(ds, progress=False, return_noise=False, **kwargs)
        out[name] = (
            np.asarray(res["cumulative_deformation"].values),
            np.asarray(res["deformation"].values),
        )
    out["zero"] = (np.zeros_like(raw[0]), np.zeros_like(raw))
    out["raw"] = (raw[-1], raw)
    return {m: out[m] for m in METHODS if m in out}


def score_scene(
    batch: SimBatch, outputs: dict[str, tuple[np.ndarray, np.ndarray]]
) -> tuple[dict[str, dict[str, float]], dict[str, np.ndarray], int]:
    """Per-method scores of one scene, its median-removed outputs on the compared pixels
    (for the false-positive level) and the number of compared pixels.

    Compared pixels: valid in the simulation and finite in every method's output. Pixels of
    the gap patch (missing on some dates, so not valid) that every method still returns are
    scored apart (``gap_rmse_mm``, with the compared pixels' medians as the levels).
    """
    truth = batch.cumulative[0].numpy().astype(np.float64)
    series = batch.deformation[0].numpy().astype(np.float64)
    valid = batch.valid[0].numpy()
    finite = np.isfinite(truth)
    for cum, _ in outputs.values():
        finite &= np.isfinite(cum)
    mask, gaps = valid & finite, ~valid & finite
    scores, centered = {}, {}
    for m, (cum, ser) in outputs.items():
        scores[m] = rs.offset_free_scores(cum, truth, mask)
        scores[m]["series_rmse_mm"] = rs.series_rmse(ser, series, mask)
        scores[m]["gap_rmse_mm"] = rs.gap_rmse(cum, truth, mask, gaps)
        centered[m] = rs.centered(cum, mask)
    return scores, centered, int(mask.sum())


def tune_best_sigma(
    n_tune: int, seed: int, split: str, size: int, progress: bool = False
) -> dict[str, Any]:
    """Gaussian sigma (px) of ``best`` with the highest mean correlation with the truth on the
    deforming scenes of ``n_tune`` tuning scenes (the design under ``seed +
    TUNE_SEED_OFFSET``); their pooled offset-free RMSE is reported too.

    Correlation, not RMSE: on these scenes the RMSE falls with every wider filter towards
    the zero map's, which would tune ``best`` into a zero map. ``best`` filters the
    (elevation-corrected, stacked) map linearly, so each candidate is the NaN-aware
    Gaussian filter of one unfiltered ``best`` run (sigma 0).
    """
    from tqdm.auto import tqdm

    from insar_denoise.baselines import gaussian_filter_nan
    from insar_denoise.inference import denoise_dataset

    tune_seed = int(seed) + TUNE_SEED_OFFSET
    sse = dict.fromkeys(SIGMA_CANDIDATES_PX, 0.0)
    corr: dict[float, list[float]] = {s: [] for s in SIGMA_CANDIDATES_PX}
    npix = 0
    specs = design(n_tune, tune_seed, split)
    for spec in tqdm(specs, desc=f"tuning best sigma ({split})", disable=not progress):
        batch, ds = simulate(spec, split, size)
        truth = batch.cumulative[0].numpy().astype(np.float64)
        res = denoise_dataset(ds, None, method="best", sigma_px=0.0, progress=False)
        unfiltered = np.asarray(res["cumulative_deformation"].values, np.float64)
        mask = batch.valid[0].numpy() & np.isfinite(unfiltered)
        npix += int(mask.sum())
        for s in SIGMA_CANDIDATES_PX:
            scores = rs.offset_free_scores(gaussian_filter_nan(unfiltered, s), truth, mask)
            sse[s] += scores["rmse_mm"] ** 2 * int(mask.sum())
            if spec.source_type != "none":
                corr[s].append(scores["r"])
    mean_r = {f"{s:g}": float(np.nanmean(v)) if v else math.nan for s, v in corr.items()}
    rmse = {f"{s:g}": math.sqrt(v / max(npix, 1)) for s, v in sse.items()}
    best = max(SIGMA_CANDIDATES_PX, key=lambda s: np.nan_to_num(mean_r[f"{s:g}"], nan=-2.0))
    return {
        "seed": tune_seed,
        "n_scenes": len(specs),
        "criterion": "mean r over the deforming tuning scenes",
        "mean_r": mean_r,
        "rmse_mm": rmse,
        "sigma_px": float(best),
    }


def _scene_snr(batch: SimBatch) -> IdealSNR:
    """The ideal observer's SNR of a batch of one (a top-level function: runs in workers)."""
    return batch_snr(batch)[0]


def _done(value: Any) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _observer_pool(workers: int) -> Executor | None:
    """``workers`` spawned processes (one torch thread each) for the SNRs; None for 0."""
    if workers <= 0:
        return None
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        int(workers), mp_context=ctx, initializer=torch.set_num_threads, initargs=(1,)
    )


def _scene_key(split: str, spec: Any, size: int) -> tuple:
    """What identifies a scene of the design (its seed is drawn from seed, split, index);
    ``spec``: a :class:`SceneSpec` or a stored scene record."""
    rec = spec if isinstance(spec, dict) else dataclasses.asdict(spec)
    amplitude = round(float(rec["amplitude_mm"]), 9)
    return (split, int(rec["seed"]), int(size), int(rec["n_dates"]), rec["source_type"], amplitude)


def snr_cache(metrics: dict[str, Any]) -> dict[tuple, IdealSNR]:
    """The ideal observer's SNRs of a stored v2 report (``metrics.json``), keyed by scene:
    a rerun on the same scenes (same seed and size, any ``n``) skips the observer, which is
    most of the benchmark's time. Raises ``ValueError`` if ``metrics`` is not a v2 report."""
    if metrics.get("kind") != "referee" or "splits" not in metrics:
        raise ValueError("not a Benchmark v2 report (metrics.json of `evaluate --suite v2`)")
    size, out = int(metrics["size_px"]), {}
    for split, run in metrics["splits"].items():
        for r in run["scenes"]:
            if r["source_type"] == "none" or r.get("snr") is None:
                continue
            a5 = r.get("amplitude_5sigma_mm")
            ideal = IdealSNR(
                float(r["snr"]),
                float(r["snr_free"]),
                int(r["dof"]),
                math.nan,
                math.nan if a5 is None else float(a5),
            )
            out[_scene_key(split, r, size)] = ideal
    return out


def run_split(
    model: ModelLike,
    n: int,
    seed: int,
    split: str,
    *,
    size: int = DEFAULT_SIZE,
    n_tune: int | None = None,
    device: str = "cpu",
    progress: bool = False,
    workers: int = 0,
    baseline: Any = None,
    snr_cache: dict[tuple, IdealSNR] | None = None,
) -> dict[str, Any]:
    """Metrics of one split: per-scene records, SNR/T/source tables, false-positive levels.

    ``workers`` processes compute the ideal observer's SNRs while this one runs the
    methods (0: all in this process); at most ``2 workers`` scenes wait for their SNR.
    ``snr_cache`` (:func:`snr_cache`): SNRs of the same scenes from an earlier report.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    n_tune = int(n_tune if n_tune is not None else max(len(SOURCE_TYPES), n // 4))
    tuning = tune_best_sigma(n_tune, seed, split, size, progress)
    records: list[dict[str, Any]] = []
    jobs: list[Future] = []
    null: dict[int, dict[str, list[np.ndarray]]] = {}
    pool = _observer_pool(workers)
    try:
        for spec in tqdm(design(n, seed, split), desc=f"scenes ({split})", disable=not progress):
            t0 = time.perf_counter()
            batch, ds = simulate(spec, split, size)
            key = _scene_key(split, spec, size)
            if spec.source_type == "none":
                jobs.append(_done(IdealSNR(0.0, 0.0, spec.n_dates - 1, 0.0, math.nan)))
            elif snr_cache and key in snr_cache:
                jobs.append(_done(snr_cache[key]))
            elif pool is None:
                jobs.append(_done(_scene_snr(batch)))
            else:
                jobs.append(pool.submit(_scene_snr, batch))
            outputs = method_outputs(ds, model, tuning["sigma_px"], device, baseline)
            scores, centered, npix = score_scene(batch, outputs)
            if spec.source_type == "none":
                for m, v in centered.items():
                    null.setdefault(spec.n_dates, {}).setdefault(m, []).append(v)
            rec = dataclasses.asdict(spec)
            rec.update(n_pixels=npix, methods=scores, wall_s=round(time.perf_counter() - t0, 3))
            records.append(rec)
            waiting = [j for j in jobs if not j.done()]
            if len(waiting) > 2 * max(workers, 0):
                waiting[0].result()
        for rec, job in zip(records, jobs, strict=True):
            ideal = job.result()
            rec.update(
                snr=float(ideal.snr),
                snr_free=float(ideal.snr_free),
                dof=int(ideal.dof),
                amplitude_5sigma_mm=float(ideal.amplitude_5sigma_mm),
                snr_bin=rs.snr_bin(float(ideal.snr)) if rec["source_type"] != "none" else None,
            )
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    methods = [m for m in METHODS if m in records[0]["methods"]] if records else []
    return {
        "split": split,
        "split_overrides": split_config(split),
        "sigma_tuning": tuning,
        "n_scenes": len(records),
        "n_unbinned": sum(r["source_type"] != "none" and r["snr_bin"] is None for r in records),
        **rs.tables(records, methods),
        "false_positive_p99_mm": rs.false_positive_table(null),
        "gap_pixels": rs.gap_table(records, methods),
        "scenes": records,
        "wall_s": round(time.perf_counter() - start, 1),
    }


def run_referee(
    model: ModelLike = None,
    *,
    n: int = DEFAULT_N,
    seed: int = 0,
    size: int = DEFAULT_SIZE,
    split: str = "both",
    n_tune: int | None = None,
    device: str = "cpu",
    progress: bool = False,
    workers: int = 0,
    baseline: Any = None,
    snr_cache: dict[tuple, IdealSNR] | None = None,
) -> Evaluation:
    """Run the v2 benchmark: ``n`` scenes per split (``"in"``, ``"shifted"`` or ``"both"``).

    ``model``: anything :func:`insar_denoise.inference.denoise_dataset` takes, or None for
    the classical methods only. ``workers``: processes computing the ideal observer's SNRs
    beside this one (:func:`run_split`). Same ``seed``: identical metrics. Returns an
    :class:`~insar_denoise.evaluation.runner.Evaluation` (no example maps).
    """
    splits = ("in", "shifted") if split == "both" else (split,)
    for name in splits:
        split_config(name)  # raises on an unknown split
    if int(size) < 16 or int(n) < 1:
        raise ValueError(f"need size >= 16 px and n >= 1 scene, got size={size}, n={n}")
    runs = {
        name: run_split(
            model,
            n,
            seed,
            name,
            size=size,
            n_tune=n_tune,
            device=device,
            progress=progress,
            workers=workers,
            baseline=baseline,
            snr_cache=snr_cache,
        )
        for name in splits
    }
    methods = [
        m
        for m in METHODS
        if (model is not None or m != "model") and (baseline is not None or m != "baseline")
    ]
    metrics = {
        "kind": "referee",
        "package_version": __version__,
        "seed": int(seed),
        "n_per_split": int(n),
        "size_px": int(size),
        "model": model_info(model),
        "baseline": model_info(baseline) if baseline is not None else None,
        "methods": methods,
        "target": TARGET,
        "snr_bins": list(rs.SNR_BINS),
        "snr_detection_sigma": rs.SNR_DETECTION,
        "design": {
            "n_dates": list(N_DATES),
            "source_types": {k: _jsonable(v) for k, v in SOURCE_TYPES.items()},
            "amplitude_mm": list(AMPLITUDE_MM),
            "turbulence_mm": list(TURBULENCE_MM),
            "gap_prob": GAP_PROB,
            "gap_dates": list(GAP_DATES),
            "gap_side_share": list(GAP_SIDE),
        },
        "definitions": definitions(),
        "splits": runs,
    }
    return Evaluation(metrics=metrics)


def definitions() -> dict[str, str]:
    """One line per reported quantity (copied into metrics.json and the report)."""
    return {
        "snr": "ideal observer's SNR of the scene's deformation with its history known "
        "(insar_denoise.scoring.ideal_observer.batch_snr); snr_free: history unknown",
        "detected": f"share of deforming scenes with r >= {rs.R_MIN}",
        "r": "Pearson correlation of output and true cumulative deformation",
        "gain": "least-squares slope of the output on the truth, medians removed "
        "(1 = full amplitude, 0 = nothing); median over the scenes",
        "rmse_mm": "RMS of output - truth, medians removed; median over the scenes",
        "series_rmse_mm": "RMS of the denoised series - true series, medians removed per "
        "date, dates 1..T-1; median over the scenes",
        "false_positive_p99_mm": "99th percentile of |output| (median removed) over the "
        "pixels of the no-deformation scenes",
        "gap_rmse_mm": "RMS of output - truth on the gap patch (pixels missing on some dates; "
        "not in rmse_mm), with the compared pixels' medians removed; gap_pixels: its median "
        "and largest value over the scenes with a gap patch",
        "methods": "model: the model via denoise_dataset (window models: stride window-1); "
        "best: classical elevation + stacking + Gaussian filter, sigma tuned per split; "
        "zero: all-zero map; raw: last minus first date",
    }


def _jsonable(overrides: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}


__all__ = [
    "AMPLITUDE_MM",
    "DEFAULT_N",
    "DEFAULT_SIZE",
    "GAP_DATES",
    "GAP_PROB",
    "GAP_SIDE",
    "METHODS",
    "N_DATES",
    "SOURCE_TYPES",
    "TURBULENCE_MM",
    "SceneSpec",
    "design",
    "method_outputs",
    "model_stride",
    "run_referee",
    "run_split",
    "score_scene",
    "snr_cache",
    "simulate",
    "tune_best_sigma",
]
