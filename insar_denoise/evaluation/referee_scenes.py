"""Scenes of the v2 benchmark (the referee): the design and its simulation.

Whole stacks of ``size`` px and T = 9, 18, 36 or 72 dates (12-day or irregular
6/12/24-day sampling with a missing date), one source type of :data:`SOURCE_TYPES` (or
none), a max |cumulative LOS| spread log-uniformly over 1-50 mm, turbulence of 2-12 mm per
date; the rest follows the split's simulator distribution
(:func:`insar_denoise.scoring.benchmark_scenes.split_config`), the design winning on its own
factors. Half the scenes have gaps in time: 1-3 dates without data on a patch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from insar_denoise.io.scene import scene_dataset
from insar_denoise.scoring.benchmark_scenes import split_config, stratum_seed
from insar_denoise.synth import SimBatch, SimConfig, simulate_batch
from insar_denoise.synth.scene import scene_dates

N_DATES: tuple[int, ...] = (9, 18, 36, 72)
_FAULTS = {"okada_strike_slip": 1.0, "okada_dip_slip": 1.0}
#: source type -> SimConfig overrides (``source_probs`` picks the simulator's source)
SOURCE_TYPES: dict[str, dict[str, Any]] = {
    "none": {"source_probs": {"none": 1.0}},
    "bowl": {"source_probs": {"bowl": 1.0}, "bowl_width_km": (5.0, 30.0)},
    "mogi_deep": {"source_probs": {"mogi": 1.0}, "mogi_depth_km": (2.0, 5.0)},
    "mogi_shallow": {"source_probs": {"mogi": 1.0}, "mogi_depth_km": (0.5, 1.5)},
    "fault_deep": {"source_probs": _FAULTS, "fault_top_depth_km": (1.0, 4.0)},
    "fault_shallow": {"source_probs": _FAULTS, "fault_top_depth_km": (0.3, 1.0)},
    "creep": {
        "source_probs": {"okada_strike_slip": 1.0},
        "fault_top_depth_km": (0.0, 0.3),
        "fault_length_km": (15.0, 40.0),
        "fault_dip_deg": (75.0, 90.0),
        "history_probs": {"linear": 1.0},
    },
}
AMPLITUDE_MM: tuple[float, float] = (1.0, 50.0)
TURBULENCE_MM: tuple[float, float] = (2.0, 12.0)
#: share of scenes with gaps in time; dates per gap; side of the gap patch (share of the side)
GAP_PROB, GAP_DATES, GAP_SIDE = 0.5, (1, 3), (0.15, 0.4)
_GOLDEN = 0.6180339887498949


@dataclass(frozen=True)
class SceneSpec:
    """One scene of the design (everything but the simulator's own random draws)."""

    index: int
    seed: int
    n_dates: int
    sampling: str  # "regular" (12 days) or "irregular" (6/12/24 days)
    source_type: str
    amplitude_mm: float  # max |cumulative LOS| (0 without deformation)
    turbulence_mm: float  # turbulence standard deviation per date
    gap_dates: tuple[int, ...]  # dates without data on the gap patch
    gap_box: tuple[float, float, float, float]  # (y0, x0, height, width), shares of the side

    def config(self, split: str, size: int) -> SimConfig:
        """The split's distribution with this scene's design factors fixed."""
        cfg = dataclasses.replace(
            SimConfig(size=int(size), n_dates=self.n_dates), **split_config(split)
        )
        amp = self.amplitude_mm if self.amplitude_mm > 0 else 1.0
        return dataclasses.replace(
            cfg,
            irregular_sampling=self.sampling == "irregular",
            turbulence_std_mm=(self.turbulence_mm, self.turbulence_mm),
            amplitude_mm=(amp, amp),
            **SOURCE_TYPES[self.source_type],
        )

    def gap_slices(self, size: int) -> tuple[slice, slice]:
        """Rows and columns of the gap patch on a ``size`` px scene."""
        y0, x0, h, w = (int(round(v * size)) for v in self.gap_box)
        return slice(y0, y0 + max(h, 1)), slice(x0, x0 + max(w, 1))


def design(n: int, seed: int, split: str) -> list[SceneSpec]:
    """``n`` scene specs; scene ``i`` depends only on ``(seed, split, i)``.

    Scenes cycle over the cells (T, source type), T varying fastest; within a cell the
    amplitudes follow a golden-ratio sequence in log amplitude (an even spread for any
    ``n``) from a random start per cell. Turbulence, sampling and gaps are drawn per scene.
    """
    cells = [(t, kind) for kind in SOURCE_TYPES for t in N_DATES]
    lo, hi = AMPLITUDE_MM
    specs = []
    for i in range(int(n)):
        c, k = i % len(cells), i // len(cells)
        t, kind = cells[c]
        s = stratum_seed(seed, split, f"v2/scene{i}")
        rng = np.random.default_rng(s)
        start = stratum_seed(seed, split, f"v2/cell{c}") / 2.0**63
        u = (start + k * _GOLDEN) % 1.0
        turb = math.exp(rng.uniform(math.log(TURBULENCE_MM[0]), math.log(TURBULENCE_MM[1])))
        sampling = "irregular" if rng.random() < 0.5 else "regular"
        gaps: tuple[int, ...] = ()
        box = (0.0, 0.0, 0.0, 0.0)
        if rng.random() < GAP_PROB:
            count = int(rng.integers(GAP_DATES[0], GAP_DATES[1] + 1))
            gaps = tuple(sorted(int(d) for d in rng.choice(np.arange(1, t - 1), count, False)))
            h, w = rng.uniform(*GAP_SIDE, size=2)
            box = (float(rng.uniform(0, 1 - h)), float(rng.uniform(0, 1 - w)), float(h), float(w))
        specs.append(
            SceneSpec(
                index=i,
                seed=s,
                n_dates=t,
                sampling=sampling,
                source_type=kind,
                amplitude_mm=0.0 if kind == "none" else float(lo * (hi / lo) ** u),
                turbulence_mm=float(turb),
                gap_dates=gaps,
                gap_box=box,
            )
        )
    return specs


def simulate(spec: SceneSpec, split: str, size: int) -> tuple[SimBatch, xr.Dataset]:
    """The scene (a batch of one, gaps applied, ``valid`` False on the gap patch) and its
    canonical Dataset (``displacement`` and ``dem`` only)."""
    cfg = spec.config(split, size)
    batch = simulate_batch(cfg, 1, generator=torch.Generator().manual_seed(spec.seed))
    if spec.gap_dates:
        rows, cols = spec.gap_slices(size)
        batch.displacement[0, list(spec.gap_dates), rows, cols] = float("nan")
        batch.valid[0, rows, cols] = False
    scene = {
        "displacement": batch.displacement[0].numpy(),
        "deformation": batch.deformation[0].numpy(),
        "cumulative": batch.cumulative[0].numpy(),
        "dem": batch.dem[0].numpy(),
        "dates": scene_dates(cfg),
        "pixel_spacing_m": float(cfg.pixel_spacing_m),
    }
    return batch, scene_dataset(scene).drop_vars(["deformation", "cumulative"])


def with_fresh_noise(
    spec: SceneSpec, split: str, size: int, draw: int
) -> tuple[SimBatch, SimBatch, xr.Dataset]:
    """The scene's deformation under another draw of its design's noise: ``(the scene, the
    noise-only scene of seed ``spec.seed + 7919 draw`` (its DEM, holes, gaps, atmosphere),
    the Dataset of their sum)``. Session 38 found failures no design scene holds this way."""
    batch, _ = simulate(spec, split, size)
    calm = dataclasses.replace(
        spec, seed=spec.seed + 7919 * draw, source_type="none", amplitude_mm=0.0
    )
    noise_batch, ds = simulate(calm, split, size)
    ds = ds.copy()
    ds["displacement"].values[:] = (
        batch.deformation[0].numpy() + noise_batch.displacement[0].numpy()
    )
    return batch, noise_batch, ds
