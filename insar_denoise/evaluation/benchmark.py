"""The simulated benchmark: stratified scenes, every method's estimate, the common target.

Strata are the product of deformation amplitude (:data:`AMPLITUDES_MM`), turbulence level
(:data:`NOISE_STD_MM`), source (:data:`SOURCES`) and DEM kind (:data:`DEMS`); scenes
without deformation (0 mm) have no source. Each stratum fixes those ranges/probabilities in
the split's :class:`~insar_denoise.synth.SimConfig` (split ``in``: the package default, the
training distribution, for everything else, e.g. stratified delay, ramps, holes and
unwrapping errors; split ``shifted``: see :func:`split_config`) and
is drawn with its own seed derived from ``(seed, split, stratum)``, so adding strata or
scenes elsewhere never changes a stratum's scenes.

A scene is one window of ``N`` dates (the model window): the model runs on it directly.
Target (for every method): the true cumulative deformation over the window with its
least-squares plane removed on the pixels valid in at least one date, which is what the
model is trained to output (:func:`insar_denoise.models.normalization.deplane`); each
estimate gets its own plane removed the same way, and all are compared on the same pixels.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from insar_denoise import baselines
from insar_denoise.models.normalization import deplane
from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.synth.scene import scene_dates
from insar_denoise.training.validation import predict_in_batches, raw_cumulative

log = logging.getLogger(__name__)

#: amplitudes of the strata: max |cumulative LOS| over the window (mm)
AMPLITUDES_MM: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)
#: turbulence standard deviation per date of each noise level (mm)
NOISE_STD_MM: dict[str, float] = {"low": 3.0, "high": 10.0}
SOURCES: tuple[str, ...] = ("okada_strike_slip", "okada_dip_slip", "mogi")
DEMS: tuple[str, ...] = ("real", "synthetic")
#: Gaussian sigmas (px) tried for ``filter`` and ``best`` on the tuning scenes
SIGMA_CANDIDATES_PX: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)
CLASSICAL = ("raw", "elevation", "filter", "stack", "best")
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
    ``training/default.yaml`` but for its source mix and amplitude range, which every
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
    out["raw"] = raw_cumulative(scenes.displacement).float()
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
