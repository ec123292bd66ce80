"""The injected signals and where they go: unit-amplitude sources from the simulator, crop
places round robin over the tiles, crops laid side by side in one mosaic and cut back out."""

from __future__ import annotations

import numpy as np
import torch

from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.synth.histories import sample_histories

#: injected source families and their relative weights (the training mix without "none")
INJECTED_SOURCES = {"okada_strike_slip": 0.2, "okada_dip_slip": 0.2, "okada_tensile": 0.1}
INJECTED_SOURCES["mogi"] = 0.3


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


def places(
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


def mosaic(parts: list[np.ndarray], cols: int) -> np.ndarray:
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


def cells(mosaic: np.ndarray, count: int, cols: int, h: int, w: int) -> list[np.ndarray]:
    """The first ``count`` ``(..., h, w)`` cells of a :func:`mosaic` of ``cols`` columns."""
    return [
        mosaic[..., (i // cols) * h : (i // cols + 1) * h, (i % cols) * w : (i % cols + 1) * w]
        for i in range(count)
    ]
