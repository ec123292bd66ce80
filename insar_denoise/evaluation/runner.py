"""Run an evaluation: the simulated benchmark, or a user's stack with a known truth map.

Both return a JSON-ready ``metrics`` dict (see :mod:`.metrics` for the definitions) and
the example maps for the figures; :mod:`.report` writes them.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from insar_denoise._version import __version__
from insar_denoise.evaluation import benchmark as bm
from insar_denoise.models.normalization import deplane
from insar_denoise.models.registry import LoadedModel, ModelLike
from insar_denoise.scoring import benchmark_scenes as scn
from insar_denoise.scoring import metrics as mt

log = logging.getLogger(__name__)

#: scores a model's uncertainty bands on benchmark scenes given its estimate ``(S, H, W)``
UncertaintyScore = Callable[[Any, scn.Scenes, torch.Tensor], dict | None]

#: amplitudes (mm) whose first low-noise scene is drawn in the example figure
EXAMPLE_AMPLITUDES_MM = (2.0, 5.0, 10.0)


@dataclass
class Evaluation:
    """Metrics (JSON-ready) and example maps ``[(title, {name: (H, W) mm map})]``."""

    metrics: dict[str, Any]
    examples: list[tuple[str, dict[str, np.ndarray]]] = field(default_factory=list)


def model_info(model: LoadedModel | None) -> dict[str, Any] | None:
    """Id, path and metadata of a ``LoadedModel`` (None without a model)."""
    if model is None:
        return None
    meta = dict(getattr(model, "metadata", {}) or {})
    path = str(getattr(model, "path", "") or "")
    if path:  # relative to the working directory when inside it (reports are committed)
        rel = os.path.relpath(path)
        path = path if rel.startswith("..") else rel
    return {
        "id": meta.get("model_id", "custom"),
        "path": path,
        "metadata": meta,
    }


def _groups(scenes: scn.Scenes) -> dict[str, dict[str, np.ndarray]]:
    """Scene selections of each reported grouping (``stratum``: every design cell)."""
    amp, noise = scenes.amplitude_mm, scenes.noise
    deformed = amp > 0
    out: dict[str, dict[str, np.ndarray]] = {"all": {"all": np.ones(len(scenes), bool)}}
    out["amplitude"] = {f"{a:g}": amp == a for a in scn.AMPLITUDES_MM if (amp == a).any()}
    out["amplitude_noise"] = {
        f"{a:g}|{n}": (amp == a) & (noise == n)
        for a in scn.AMPLITUDES_MM
        for n in scn.NOISE_STD_MM
        if ((amp == a) & (noise == n)).any()
    }
    out["noise"] = {n: noise == n for n in scn.NOISE_STD_MM}
    out["source"] = {s: deformed & (scenes.source == s) for s in scn.SOURCES}
    out["dem"] = {d: deformed & (scenes.dem_kind == d) for d in scn.DEMS}
    cells = np.asarray(
        [
            scn.Stratum(float(a), str(n), str(s), str(d)).key
            for a, n, s, d in zip(amp, noise, scenes.source, scenes.dem_kind, strict=True)
        ]
    )
    out["stratum"] = {c.key: cells == c.key for c in scn.strata()}
    return {g: {k: v for k, v in sel.items() if v.any()} for g, sel in out.items()}


def score(
    estimates: dict[str, torch.Tensor], scenes: scn.Scenes
) -> tuple[dict[str, Any], dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Per-group metrics, detection thresholds and false-positive levels of every method.

    Returns the metrics and the de-planed estimates, truth and mask (for the figures).
    """
    deplaned, truth, mask = bm.common_target(estimates, scenes)
    stats = {k: mt.scene_stats(v, truth, mask) for k, v in deplaned.items()}
    groups = {
        name: {key: mt.summarize(stats, sel) for key, sel in sels.items()}
        for name, sels in _groups(scenes).items()
    }
    detection: dict[str, dict[str, float | None]] = {}
    false_pos: dict[str, dict[str, float]] = {}
    zero = scenes.amplitude_mm == 0
    for level, sel in {"all": np.ones(len(scenes), bool), **_groups(scenes)["noise"]}.items():
        detection[level] = {
            k: mt.detection_threshold(scenes.amplitude_mm[sel], s.corr[sel])
            for k, s in stats.items()
        }
        pick = sel & zero
        false_pos[level] = {
            k: mt.false_positive_level(v[pick][mask[pick]]) for k, v in deplaned.items()
        }
    metrics = {
        "groups": groups,
        "detection_threshold_mm": detection,
        "false_positive_p99_mm": false_pos,
    }
    return metrics, deplaned, truth, mask


def _examples(
    scenes: scn.Scenes, deplaned: dict[str, np.ndarray], truth: np.ndarray, mask: np.ndarray
) -> list[tuple[str, dict[str, np.ndarray]]]:
    out = []
    for amp in EXAMPLE_AMPLITUDES_MM:
        idx = np.flatnonzero((scenes.amplitude_mm == amp) & (scenes.noise == "low"))
        if idx.size == 0:
            continue
        i = int(idx[0])
        title = f"{amp:g} mm {scenes.source[i]}\n{scenes.noise[i]} noise, {scenes.dem_kind[i]} DEM"
        maps = {"truth": np.where(mask[i], truth[i], np.nan)}
        maps.update({k: np.where(mask[i], v[i], np.nan) for k, v in deplaned.items()})
        out.append((title, maps))
    return out


def run_benchmark(
    model: LoadedModel | None = None,
    *,
    n_per_amplitude: int = 200,
    seed: int = 0,
    size: int = 64,
    window: int | None = None,
    split: str = "in",
    n_tune: int | None = None,
    uncertainty: UncertaintyScore | None = None,
) -> Evaluation:
    """Evaluate ``model`` (a ``LoadedModel``, or None for the baselines only) on the benchmark.

    Parameters
    ----------
    model : callable ``(displacement (B,N,H,W) mm, dem (B,H,W) m) -> (B,H,W) mm`` with a
        ``metadata["window"]``, or None.
    n_per_amplitude : scenes per amplitude level, spread evenly over that level's strata.
    seed : benchmark seed; the same seed gives identical metrics.
    size : scene side in pixels (the model is fully convolutional; a multiple of its
        ``tile_multiple``).
    window : dates per scene; default the model's window (9 without a model).
    split : ``"in"``: the training distribution; ``"shifted"``: generated differently
        (:func:`insar_denoise.scoring.benchmark_scenes.split_config`); ``"both"``: the two, with
        the metrics of each under ``metrics["splits"][name]`` (one split: the metrics
        themselves, ``metrics["split"]`` names it).
    n_tune : scenes per amplitude of the sigma-tuning set (default ``max(6, n // 4)``).
    uncertainty : ``(model, scenes, model_estimate) -> dict | None``, the coverage of the
        model's stored bands on the scenes, reported under ``metrics["uncertainty"]``
        (``evaluate`` passes :func:`insar_denoise.trust.uncertainty.benchmark_uncertainty`;
        the trust checks sit beside the evaluation, not below it).
    """
    if split not in (*scn.SPLITS, "both"):
        raise ValueError(f"unknown split {split!r}; choose one of {(*scn.SPLITS, 'both')}")
    if model is not None:
        meta_window = int(model.metadata["window"])
        if window is not None and int(window) != meta_window:
            raise ValueError(f"window={window} but the model was trained for {meta_window}")
        window = meta_window
        multiple = int(model.metadata.get("tile_multiple", 1))
        if size % multiple:
            raise ValueError(f"size={size} px is not a multiple of the model's {multiple} px")
    window = int(window or 9)
    n_tune = int(n_tune if n_tune is not None else max(6, n_per_amplitude // 4))
    args = (model, n_per_amplitude, seed, size, window, n_tune, uncertainty)
    if split != "both":
        return _run_split(*args, split)
    runs = {name: _run_split(*args, name) for name in scn.SPLITS}
    first = runs[scn.SPLITS[0]].metrics
    metrics: dict[str, Any] = {
        "kind": "benchmark_splits",
        "package_version": __version__,
        "seed": int(seed),
        "split": "both",
        "n_per_amplitude": int(n_per_amplitude),
        "size_px": int(size),
        "window": window,
        "model": model_info(model),
        "methods": first["methods"],
        "target": scn.TARGET,
        "definitions": definitions(),
        "splits": {name: run.metrics for name, run in runs.items()},
    }
    return Evaluation(
        metrics=metrics,
        examples=[(f"[{n}] {t}", maps) for n, run in runs.items() for t, maps in run.examples],
    )


def _run_split(
    model: LoadedModel,
    n_per_amplitude: int,
    seed: int,
    size: int,
    window: int,
    n_tune: int,
    uncertainty: UncertaintyScore | None,
    split: str,
) -> Evaluation:
    """:func:`run_benchmark` on one split (arguments already checked)."""
    tuning = bm.tune_sigma(n_tune, seed, size=size, n_dates=window, split=split)
    scenes = scn.generate(n_per_amplitude, seed, size=size, n_dates=window, split=split)
    log.info("benchmark %s: %d scenes of %d dates, %d px", split, len(scenes), window, size)
    estimates = bm.estimate_all(scenes, model, tuning["sigma_px"])
    scored, deplaned, truth, mask = score(estimates, scenes)
    scored["series_rmse_mm"] = bm.series_rmse(scenes, estimates, tuning["sigma_px"])
    if model is not None and uncertainty is not None:
        bands = uncertainty(model, scenes, estimates["model"])
        if bands is not None:
            scored["uncertainty"] = bands
    metrics: dict[str, Any] = {
        "kind": "benchmark",
        "package_version": __version__,
        "seed": int(seed),
        "split": split,
        "n_per_amplitude": int(n_per_amplitude),
        "n_scenes": len(scenes),
        "size_px": int(size),
        "window": window,
        "model": model_info(model),
        "methods": list(estimates),
        "target": scn.TARGET,
        "design": {
            "amplitudes_mm": list(scn.AMPLITUDES_MM),
            "noise_turbulence_std_mm": dict(scn.NOISE_STD_MM),
            "sources": list(scn.SOURCES),
            "dems": list(scn.DEMS),
            "strata": {c.key: n for c, n in scn.allocate(n_per_amplitude)},
        },
        "sim_config": scn.base_config(size, window, split).to_dict(),
        "split_overrides": scn.split_config(split),
        "sigma_tuning": tuning,
        "definitions": definitions(),
        **scored,
    }
    return Evaluation(metrics=metrics, examples=_examples(scenes, deplaned, truth, mask))


def definitions() -> dict[str, str]:
    """One line per metric (copied into metrics.json and the report)."""
    return {
        "rmse_mm": "root mean square of estimate - target over all compared pixels of the group",
        "corr": "mean over scenes of the Pearson correlation of estimate and target",
        "snr_gain_db": "20 log10(RMSE_raw / RMSE_method) on the same group",
        "detected_frac": f"share of scenes with correlation >= {mt.R_MIN}",
        "detection_threshold_mm": (
            f"smallest amplitude from which on every tested amplitude has >= "
            f"{mt.DETECTED_FRAC:.0%} of scenes with correlation >= {mt.R_MIN} (null: none)"
        ),
        "false_positive_p99_mm": "99th percentile of |estimate| on the no-deformation scenes",
        "series_rmse_mm": (
            "per-date RMSE of the denoised displacement series against the true deformation "
            "series (both de-planed per date), deforming scenes; 'all' pools dates 1..N-1"
        ),
    }


WINDOW_TARGET = scn.TARGET.replace("over the window", "from the first to the last date")
STACK_TARGET = (
    "true cumulative deformation from the first to the last date (mm LOS) with its mean over "
    "the compared pixels removed; every estimate has its own mean removed the same way "
    "(whole-stack models are defined up to a constant)"
)


def _demean(maps: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` maps minus their mean over ``valid`` pixels (NaN outside them)."""
    filled = torch.where(valid, maps, torch.zeros_like(maps)).double()
    mean = filled.sum((-2, -1), keepdim=True) / valid.sum((-2, -1), keepdim=True).clamp_min(1)
    out = (filled - mean).to(maps.dtype)
    return torch.where(valid, out, torch.full_like(out, float("nan")))


def evaluate_stack(
    ds: xr.Dataset,
    truth: xr.DataArray | np.ndarray,
    model: ModelLike = None,
    *,
    sigma_px: float = 2.0,
    device: str = "cpu",
    progress: bool = False,
) -> Evaluation:
    """Metrics of the model and the baselines on a stack with a known cumulative truth.

    Every method runs through :func:`insar_denoise.inference.denoise_dataset` on the whole
    stack (cumulative from the first to the last date) and is compared to ``truth`` (mm, on
    the stack grid) against the same target as the benchmark (de-planed), or, for a
    whole-stack model (``kind: stack``), up to a constant (each map's mean removed).

    Parameters
    ----------
    ds : canonical Dataset with ``displacement`` and ``dem``.
    truth : ``(y, x)`` true cumulative deformation, last minus first date (mm).
    model : a ``LoadedModel`` (or anything ``denoise_dataset`` takes), None = baselines only.
    sigma_px : Gaussian sigma of ``filter`` and ``best`` (px), stated in the metrics.
    """
    from insar_denoise.inference import denoise_dataset

    truth_np = np.asarray(truth, np.float32)
    methods = (["model"] if model is not None else []) + list(scn.CLASSICAL)
    maps = {"zero": np.zeros_like(truth_np)}
    for method in methods:
        res = denoise_dataset(
            ds,
            model if method == "model" else None,
            method=method,
            sigma_px=sigma_px,
            device=device,
            progress=progress,
            return_noise=False,
        )
        maps[method] = np.asarray(res["cumulative_deformation"].values, np.float32)
    order = [m for m in scn.METHODS if m in maps]
    disp = np.asarray(ds["displacement"].values)
    valid = torch.from_numpy(np.isfinite(disp).any(0) & np.isfinite(truth_np))[None]
    for m in order:
        valid = valid & torch.from_numpy(np.isfinite(maps[m]))[None]
    # whole-stack models are defined up to a constant (nothing de-planed): score every
    # method the same way, else against the window models' de-planed target
    stack = (model_info(model) or {"metadata": {}})["metadata"].get("kind") == "stack"
    align = _demean if stack else deplane
    target = align(torch.from_numpy(truth_np)[None], valid)[0].numpy()
    mask = valid[0].numpy()
    deplaned = {m: align(torch.from_numpy(maps[m])[None], valid)[0].numpy() for m in order}
    rm = {m: mt.rmse(deplaned[m], target, mask) for m in order}
    metrics: dict[str, Any] = {
        "kind": "stack",
        "package_version": __version__,
        "model": model_info(model),
        "methods": order,
        "target": STACK_TARGET if stack else WINDOW_TARGET,
        "aligned": "mean removed" if stack else "plane removed",
        "n_dates": int(ds.sizes["time"]),
        "shape": [int(ds.sizes["y"]), int(ds.sizes["x"])],
        "n_pixels": int(mask.sum()),
        "sigma_px": float(sigma_px),
        "truth_max_abs_mm": float(np.nanmax(np.abs(target[mask]))) if mask.any() else math.nan,
        "definitions": definitions(),
        "rmse_mm": rm,
        "corr": {m: mt.pearson(deplaned[m], target, mask) for m in order},
        "snr_gain_db": {m: mt.snr_gain_db(rm["raw"], rm[m]) for m in order},
    }
    maps_out = {"truth": np.where(mask, target, np.nan)}
    maps_out.update({m: np.where(mask, deplaned[m], np.nan) for m in order})
    return Evaluation(metrics=metrics, examples=[("stack", maps_out)])
