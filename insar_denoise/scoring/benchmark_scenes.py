"""The simulated benchmark's scenes (Benchmark v1): strata, splits and the scene generator.

Strata are the product of deformation amplitude (:data:`AMPLITUDES_MM`), turbulence level
(:data:`NOISE_STD_MM`), source (:data:`SOURCES`) and DEM kind (:data:`DEMS`); scenes
without deformation (0 mm) have no source. Each stratum fixes those ranges/probabilities in
the split's :class:`~insar_denoise.synth.SimConfig` (split ``in``: the package default, the
training distribution, for everything else, e.g. stratified delay, ramps, holes and
unwrapping errors; split ``shifted``: see :func:`split_config`) and
is drawn with its own seed derived from ``(seed, split, stratum)``, so adding strata or
scenes elsewhere never changes a stratum's scenes.

A scene is one window of ``N`` dates (the model window). The evaluation scores every
method on them (:mod:`insar_denoise.evaluation.benchmark`); the trust checks calibrate the
uncertainty bands on them (:mod:`insar_denoise.trust.uncertainty`).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from insar_denoise.methods import CLASSICAL_METHODS
from insar_denoise.synth import SimConfig, simulate_batch

#: amplitudes of the strata: max |cumulative LOS| over the window (mm)
AMPLITUDES_MM: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
#: turbulence standard deviation per date of each noise level (mm)
NOISE_STD_MM: dict[str, float] = {"low": 3.0, "high": 10.0}
SOURCES: tuple[str, ...] = ("okada_strike_slip", "okada_dip_slip", "mogi")
DEMS: tuple[str, ...] = ("real", "synthetic")
#: Gaussian sigmas (px) tried for ``filter`` and ``best`` on the tuning scenes
SIGMA_CANDIDATES_PX: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
CLASSICAL = CLASSICAL_METHODS
METHODS: tuple[str, ...] = ("model", "zero", *CLASSICAL)
#: ``in``: the training distribution; ``shifted``: generated differently (:func:`split_config`)
SPLITS: tuple[str, ...] = ("in", "shifted")
TARGET = (
    "true cumulative deformation over the window (last minus first date, mm LOS) with its "
    "least-squares plane (offset + east/north ramps) removed on the pixels valid in at least "
    "one date; every estimate has its own plane removed the same way (the model's training "
    "target, insar_denoise.models.normalization.deplane)"
)


@dataclass(frozen=True)
class Stratum:
    """One cell of the benchmark design."""

    amplitude_mm: float
    noise: str
    source: str
    dem: str

    @property
    def key(self) -> str:
        """Stable name, e.g. ``amp=5|noise=low|source=mogi|dem=real``."""
        return f"amp={self.amplitude_mm:g}|noise={self.noise}|source={self.source}|dem={self.dem}"

    def config(self, base: SimConfig) -> SimConfig:
        """``base`` with this stratum's amplitude, turbulence, source and DEM fixed."""
        std = NOISE_STD_MM[self.noise]
        cfg = dataclasses.replace(
            base,
            turbulence_std_mm=(std, std),
            real_dem_prob=1.0 if self.dem == "real" else 0.0,
        )
        if self.amplitude_mm <= 0:
            return cfg.with_source("none")
        amp = float(self.amplitude_mm)
        return dataclasses.replace(cfg.with_source(self.source), amplitude_mm=(amp, amp))


def strata() -> list[Stratum]:
    """All cells; the no-deformation amplitude has the single source ``none``.

    Within an amplitude the noise level varies fastest, then the source, then the DEM, so
    that the round robin of :func:`allocate` covers both noise levels first.
    """
    cells = []
    for amp in AMPLITUDES_MM:
        for dem in DEMS:
            for source in SOURCES if amp > 0 else ("none",):
                for noise in NOISE_STD_MM:
                    cells.append(Stratum(amp, noise, source, dem))
    return cells


def allocate(n_per_amplitude: int) -> list[tuple[Stratum, int]]:
    """Spread ``n_per_amplitude`` scenes over the cells of each amplitude (round robin).

    Every cell gets ``n // cells`` or one more scene; the first cells in :func:`strata`
    order get the remainder.
    """
    out = []
    for amp in AMPLITUDES_MM:
        cells = [s for s in strata() if s.amplitude_mm == amp]
        q, r = divmod(int(n_per_amplitude), len(cells))
        out += [(c, q + (i < r)) for i, c in enumerate(cells) if q + (i < r) > 0]
    return out


def stratum_seed(seed: int, split: str, key: str) -> int:
    """Seed of one stratum: SHA-256 of ``"seed/split/key"`` (stable across runs and machines)."""
    digest = hashlib.sha256(f"{int(seed)}/{split}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def split_config(split: str) -> dict[str, Any]:
    """:class:`~insar_denoise.synth.SimConfig` overrides of a benchmark split.

    ``"in"``: none (the simulator's prior, ``SimConfig()``: the training distribution of
    ``experiments/training/default.yaml`` but for its source mix and amplitude range, which every
    stratum fixes anyway). ``"shifted"``: generated differently from training in the ways real
    data differ; every override lies outside (or at the edge of) what training draws:

    - turbulence: von Karman with exponential covariance only (``powerlaw_prob`` 0, Hurst
      0.5) and correlation lengths 0.2-0.8 km (training: half pure power laws with
      beta 5/3-11/3, half von Karman with H 0.3-1 and L 1-30 km);
    - stratified delay: quadratic term up to +/-10 mm/km^2 (training +/-3); the linear
      coefficient keeps the training range +/-15 mm/km, drawn independently per date so
      it changes sign between dates (as in training);
    - sources: Okada faults deeper (top 3-6 km, training 0.1-3 km), Mogi sources shallower
      (0.1-0.5 km, training 0.5-5 km);
    - decorrelation holes in every scene (training 30 %), covering 20-40 % of the tile
      (training 1-20 %);
    - an unwrapping error in every scene (training 10 %), over larger regions (radius
      0.2-0.35 of the tile, training 0.05-0.2);
    - DEMs: fractal DEMs rougher (spectral exponent 3.0-3.4, training 3.6-4.4) with more
      relief (2-3.5 km, training 0.05-2 km); patches of the bundled real DEMs (seen in
      training) have their relief scaled 2-3 times (training 0.3-2).

    - irregular sampling: mixed 6/12-day intervals with a missing date (a 24-day gap), the
      fixed pattern of ``SimConfig.irregular_sampling`` (training: every 12 days); the
      histories of the deformation follow the real times, and so does the classical
      linear-rate stacking.

    The amplitude, turbulence level, source and DEM kind of each stratum are fixed as in
    ``"in"``, so the two splits have the same strata.
    """
    if split == "in":
        return {}
    if split == "shifted":
        return {
            "powerlaw_prob": 0.0,
            "vonkarman_hurst": (0.5, 0.5),
            "correlation_length_km": (0.2, 0.8),
            "stratified_quad_mm_per_km2": (-10.0, 10.0),
            "fault_top_depth_km": (3.0, 6.0),
            "mogi_depth_km": (0.1, 0.5),
            "holes_prob": 1.0,
            "holes_fraction": (0.2, 0.4),
            "unwrap_prob": 1.0,
            "unwrap_radius_frac": (0.2, 0.35),
            "dem_beta": (3.0, 3.4),
            "dem_relief_m": (2000.0, 3500.0),
            "real_dem_relief_scale": (2.0, 3.0),
            "irregular_sampling": True,
        }
    raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")


def base_config(size: int, n_dates: int, split: str = "in") -> SimConfig:
    """The simulation distribution of ``split`` on ``size`` px tiles of ``n_dates`` dates.

    ``"in"``: the package's default (training) distribution; other splits apply
    :func:`split_config`.
    """
    return dataclasses.replace(
        SimConfig(size=int(size), n_dates=int(n_dates)), **split_config(split)
    )


@dataclass
class Scenes:
    """Benchmark scenes (torch tensors ``displacement``, ``dem``; numpy for the rest)."""

    displacement: torch.Tensor  # (S, N, H, W) mm, NaN in holes
    dem: torch.Tensor  # (S, H, W) m
    cumulative: torch.Tensor  # (S, H, W) mm, true cumulative over the window
    valid: torch.Tensor  # (S, H, W) bool, valid in at least one date
    amplitude_mm: np.ndarray  # (S,) nominal amplitude of the stratum
    noise: np.ndarray  # (S,) str
    source: np.ndarray  # (S,) str
    dem_kind: np.ndarray  # (S,) str
    times_days: np.ndarray  # (N,)
    deformation: torch.Tensor | None = None  # (S, N, H, W) mm, true series (first date = 0)

    def __len__(self) -> int:
        return int(self.displacement.shape[0])


def generate(
    n_per_amplitude: int, seed: int, *, size: int, n_dates: int, split: str = "in"
) -> Scenes:
    """Draw the scenes of every stratum (deterministic in ``seed`` and ``split``)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    base = base_config(size, n_dates, split)
    parts: dict[str, list[Any]] = {k: [] for k in ("disp", "dem", "cum", "valid", "defo")}
    labels: dict[str, list[Any]] = {k: [] for k in ("amp", "noise", "source", "dem")}
    for cell, count in allocate(n_per_amplitude):
        gen = torch.Generator().manual_seed(stratum_seed(seed, split, cell.key))
        batch = simulate_batch(cell.config(base), count, generator=gen)
        parts["disp"].append(batch.displacement)
        parts["dem"].append(batch.dem)
        parts["cum"].append(batch.cumulative)
        parts["defo"].append(batch.deformation)
        parts["valid"].append(torch.isfinite(batch.displacement).any(1))
        for key, value in zip(
            labels, (cell.amplitude_mm, cell.noise, cell.source, cell.dem), strict=True
        ):
            labels[key] += [value] * count
    return Scenes(
        displacement=torch.cat(parts["disp"]),
        dem=torch.cat(parts["dem"]),
        cumulative=torch.cat(parts["cum"]),
        valid=torch.cat(parts["valid"]),
        amplitude_mm=np.asarray(labels["amp"], np.float64),
        noise=np.asarray(labels["noise"]),
        source=np.asarray(labels["source"]),
        dem_kind=np.asarray(labels["dem"]),
        times_days=np.asarray(base.times_days(), dtype=np.float64),
        deformation=torch.cat(parts["defo"]),
    )
