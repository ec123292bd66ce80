"""The simulated benchmark: every method's estimate on the benchmark scenes, the common target.

The scenes, strata and splits are :mod:`insar_denoise.scoring.benchmark_scenes`. A scene is
one window of ``N`` dates (the model window): the model runs on it directly.
Target (for every method): the true cumulative deformation over the window with its
least-squares plane removed on the pixels valid in at least one date, which is what the
model is trained to output (:func:`insar_denoise.models.normalization.deplane`); each
estimate gets its own plane removed the same way, and all are compared on the same pixels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from insar_denoise import baselines
from insar_denoise.inference.predict import predict_in_batches
from insar_denoise.models.normalization import deplane
from insar_denoise.scoring.benchmark_scenes import (
    CLASSICAL,
    DEMS,
    NOISE_STD_MM,
    SIGMA_CANDIDATES_PX,
    Scenes,
    Stratum,
    base_config,
    generate,
    stratum_seed,
)
from insar_denoise.synth import simulate_batch
from insar_denoise.synth.scene import scene_dates

log = logging.getLogger(__name__)


def noise_mosaic(
    noise: str, cells: int, seed: int, *, size: int, n_dates: int, split: str = "in"
) -> dict[str, Any]:
    """A ``cells`` x ``cells`` stack of the benchmark's no-deformation scenes of one noise level.

    Each ``size`` px cell is an independent scene of the 0 mm strata (DEM kinds alternate),
    so ``inject`` with ``crop_px=size`` on it meets exactly the noise that ``evaluate`` scores
    (one large simulated scene has most of its turbulence at scales above ``size``).
    Returns a scene dict for :func:`insar_denoise.io.scene.scene_dataset`.
    """
    if noise not in NOISE_STD_MM:
        raise ValueError(f"unknown noise level {noise!r}; choose one of {list(NOISE_STD_MM)}")
    base = base_config(size, n_dates, split)
    disp = np.empty((n_dates, cells * size, cells * size), np.float32)
    dem = np.empty((cells * size, cells * size), np.float32)
    for k in range(cells * cells):
        cell = Stratum(0.0, noise, "none", DEMS[k % len(DEMS)])
        gen = torch.Generator().manual_seed(stratum_seed(seed, split, f"mosaic{k}|{cell.key}"))
        batch = simulate_batch(cell.config(base), 1, generator=gen)
        r, c = divmod(k, cells)
        win = (slice(r * size, (r + 1) * size), slice(c * size, (c + 1) * size))
        disp[(slice(None), *win)] = batch.displacement[0].numpy()
        dem[win] = batch.dem[0].numpy()
    zeros = np.zeros_like(disp)
    return {
        "displacement": disp,
        "deformation": zeros,
        "cumulative": zeros[0],
        "dem": dem,
        "valid": np.isfinite(disp).any(0),
        "dates": scene_dates(base),
        "pixel_spacing_m": float(base.pixel_spacing_m),
        "amplitude_mm": 0.0,
        "source": "none",
        "history": "none",
        "seed": int(seed),
        "config": base.to_dict(),
    }


def classical_maps(scenes: Scenes, method: str, sigma_px: float = 2.0) -> torch.Tensor:
    """``(S, H, W)`` cumulative estimates of one classical baseline, scene by scene."""
    times = torch.from_numpy(scenes.times_days)
    maps = [
        baselines.classical_cumulative(
            method, scenes.displacement[i], scenes.dem[i], times, sigma_px
        ).float()
        for i in range(len(scenes))
    ]
    return torch.stack(maps)


def series_rmse(
    scenes: Scenes,
    cumulative: dict[str, torch.Tensor],
    sigma_px: dict[str, float],
) -> dict[str, dict[str, Any]]:
    """Per-date RMSE (mm) of each method's denoised series on the deforming scenes.

    The series of one 9-date scene: the model and ``zero`` give the window's cumulative
    spread linearly over the real times (what the inference engine returns for a stack of
    exactly one window); ``raw`` the displacement itself; the classical methods their own
    series (:func:`insar_denoise.baselines.classical_series`). Truth and estimates are
    de-planed date by date on the common mask. Returns ``{method: {"per_date": [N floats,
    date 0 first], "all": pooled over dates 1..N-1}}``.
    """
    if scenes.deformation is None:
        return {}
    sel = np.flatnonzero(scenes.amplitude_mm > 0)
    times = torch.from_numpy(scenes.times_days)
    frac = (times / times[-1]).float()
    mask = (scenes.valid & torch.isfinite(scenes.cumulative))[sel]
    for est in cumulative.values():
        mask = mask & torch.isfinite(est[sel])
    n = len(frac)
    mask_t = mask[:, None].expand(-1, n, -1, -1)

    def flat_deplane(series: torch.Tensor) -> torch.Tensor:
        s, t, h, w = series.shape
        out = deplane(
            torch.nan_to_num(series.float()).reshape(s * t, h, w), mask_t.reshape(-1, h, w)
        )
        return out.reshape(s, t, h, w)

    truth = flat_deplane(scenes.deformation[sel])
    out: dict[str, dict[str, Any]] = {}
    for name in cumulative:
        if name in ("model", "zero"):
            est = cumulative[name][sel][:, None] * frac[None, :, None, None]
        elif name == "raw":
            disp = scenes.displacement[sel]
            est = disp - disp[:, :1]
        else:
            est = torch.stack(
                [
                    torch.as_tensor(
                        baselines.classical_series(
                            name,
                            scenes.displacement[i],
                            scenes.dem[i],
                            times,
                            sigma_px.get(name, 2.0),
                        )
                    ).float()
                    for i in sel
                ]
            )
        err = torch.where(mask_t, flat_deplane(est) - truth, torch.zeros(()))
        npix = mask_t.sum((0, 2, 3)).clamp_min(1)
        per_date = torch.sqrt((err**2).sum((0, 2, 3)) / npix)
        pooled = torch.sqrt((err[:, 1:] ** 2).sum() / npix[1:].sum())
        out[name] = {"per_date": [float(v) for v in per_date], "all": float(pooled)}
    return out


def estimate_all(
    scenes: Scenes,
    model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
    sigma_px: dict[str, float],
    batch: int = 16,
) -> dict[str, torch.Tensor]:
    """Every method's ``(S, H, W)`` estimate (mm); ``model`` None leaves the model out."""
    out: dict[str, torch.Tensor] = {}
    if model is not None:
        out["model"] = predict_in_batches(model, scenes.displacement, scenes.dem, batch)
    out["zero"] = torch.zeros_like(scenes.cumulative)
    out["raw"] = baselines.raw_cumulative(scenes.displacement, time_axis=1).float()
    for method in CLASSICAL[1:]:
        out[method] = classical_maps(scenes, method, sigma_px.get(method, 2.0))
    return out


def common_target(
    estimates: dict[str, torch.Tensor], scenes: Scenes
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """De-planed estimates and truth on the common mask (see the module docstring).

    Returns
    -------
    (deplaned estimates, deplaned truth, mask): numpy ``(S, H, W)``; the mask holds the
    pixels valid in at least one date where the truth and every estimate are finite.
    """
    mask = scenes.valid & torch.isfinite(scenes.cumulative)
    for est in estimates.values():
        mask = mask & torch.isfinite(est)
    truth = deplane(scenes.cumulative.float(), mask).numpy()
    deplaned = {k: deplane(v.float(), mask).numpy() for k, v in estimates.items()}
    return deplaned, truth, mask.numpy()


def tune_sigma(
    n_per_amplitude: int,
    seed: int,
    *,
    size: int,
    n_dates: int,
    split: str = "in",
    candidates: tuple[float, ...] = SIGMA_CANDIDATES_PX,
) -> dict[str, Any]:
    """Pick the Gaussian sigma of ``filter`` and ``best`` with the lowest RMSE.

    The tuning scenes come from the same strata under a different seed (``seed + 1_000_003``)
    and include every amplitude; the RMSE is pooled over all their pixels against the
    common target. Returns ``{"seed", "n_per_amplitude", "candidates_px", "rmse_mm":
    {method: {sigma: rmse}}, "sigma_px": {method: best sigma}}``.
    """
    tune_seed = int(seed) + 1_000_003
    scenes = generate(n_per_amplitude, tune_seed, size=size, n_dates=n_dates, split=split)
    table: dict[str, dict[str, float]] = {}
    chosen: dict[str, float] = {}
    for method in ("filter", "best"):
        maps = {f"{s:g}": classical_maps(scenes, method, s) for s in candidates}
        deplaned, truth, mask = common_target(maps, scenes)
        table[method] = {
            k: float(np.sqrt(np.mean((v[mask] - truth[mask]) ** 2))) for k, v in deplaned.items()
        }
        best = min(table[method], key=table[method].__getitem__)
        chosen[method] = float(best)
        log.info("tuned %s: sigma %s px (RMSE %.3f mm)", method, best, table[method][best])
    return {
        "seed": tune_seed,
        "n_per_amplitude": int(n_per_amplitude),
        "candidates_px": [float(s) for s in candidates],
        "rmse_mm": table,
        "sigma_px": chosen,
    }
