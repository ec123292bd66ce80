"""``simulate_scene``: one synthetic scene as NumPy arrays (for the CLI, the demo, evaluation)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from insar_denoise.synth.config import SimConfig
from insar_denoise.synth.generator import simulate_batch


def scene_dates(config: SimConfig, start_date: str = "2020-01-01") -> np.ndarray:
    """Acquisition dates (``datetime64[D]``) of ``config.times_days()`` from ``start_date``."""
    offsets = np.round(np.asarray(config.times_days())).astype("timedelta64[D]")
    return np.datetime64(start_date, "D") + offsets


def simulate_scene(
    config: SimConfig,
    seed: int,
    *,
    source: str | None = None,
    amplitude_mm: float | None = None,
    start_date: str = "2020-01-01",
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Simulate one scene of ``config.n_dates`` dates on a ``config.size`` square grid.

    Parameters
    ----------
    config : SimConfig
        The distribution; its ``size``, ``n_dates``, ``interval_days`` and
        ``pixel_spacing_m`` set the scene grid and dates.
    seed : int
        Seed of the ``torch.Generator`` (same seed and config: same scene).
    source : str, optional
        Force the source family: ``"okada"``, ``"mogi"``, ``"none"`` or a name of
        :data:`~insar_denoise.synth.config.SOURCE_NAMES`.
    amplitude_mm : float, optional
        Fix the max |LOS| of the cumulative deformation (mm).
    start_date : str
        ISO date of the first acquisition; the next ones follow ``config.times_days()``
        (every ``interval_days``, or the irregular pattern).
    device : str or torch.device
        Compute device.

    Returns
    -------
    dict
        ``displacement`` (T, H, W) float32 mm relative to the first date, NaN in holes;
        ``deformation`` (T, H, W) float32 mm truth; ``cumulative`` (H, W) float32 mm truth
        (last minus first date); ``dem`` (H, W) float32 m; ``valid`` (H, W) bool;
        ``dates`` (T,) ``datetime64[D]``; ``pixel_spacing_m`` float; ``amplitude_mm`` float;
        ``source`` and ``history`` names; ``seed``; ``config`` (the dict of the config used).
    """
    if source is not None:
        config = config.with_source(source)
    if amplitude_mm is not None:
        fixed = (float(amplitude_mm), float(amplitude_mm))
        config = dataclasses.replace(config, amplitude_mm=fixed)
    gen = torch.Generator().manual_seed(int(seed))
    batch = simulate_batch(config, 1, generator=gen, device=device).to("cpu")
    dates = scene_dates(config, start_date)
    return {
        "displacement": batch.displacement[0].numpy(),
        "deformation": batch.deformation[0].numpy(),
        "cumulative": batch.cumulative[0].numpy(),
        "dem": batch.dem[0].numpy(),
        "valid": batch.valid[0].numpy(),
        "dates": dates,
        "pixel_spacing_m": float(config.pixel_spacing_m),
        "amplitude_mm": float(batch.amplitude_mm[0]),
        "source": batch.source_names[int(batch.source[0])],
        "history": batch.history_names[int(batch.history[0])],
        "seed": int(seed),
        "config": config.to_dict(),
    }
