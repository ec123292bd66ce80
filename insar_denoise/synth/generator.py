"""``simulate_batch``: batches of synthetic InSAR time series with their ground truth.

One example: a DEM, one deformation source (or none) with a time history, and per-date
atmospheric noise (turbulent + stratified), orbital ramp and offset, all referenced to the
first date; then unwrapping errors and decorrelation holes (NaN). Everything is vectorised
over the batch and runs on any torch device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from insar_denoise.synth import artifacts, sampling
from insar_denoise.synth.config import (
    HISTORY_NAMES,
    LEGACY_SOURCE_COUNT,
    SOURCE_NAMES,
    SimConfig,
)
from insar_denoise.synth.dems import sample_dems
from insar_denoise.synth.histories import sample_histories
from insar_denoise.synth.noise_params import NoiseParams
from insar_denoise.synth.sources import SourceGeometry, los_maps_and_geometry
from insar_denoise.synth.stratified import stratified_delay
from insar_denoise.synth.turbulence import turbulent_delay


@dataclass
class SimBatch:
    """A batch of synthetic examples (tensors on one device).

    Attributes
    ----------
    displacement : Tensor
        ``(B, T, H, W)`` float32 mm LOS (positive towards the satellite), relative to the
        first date; NaN where ``valid`` is False.
    dem : Tensor
        ``(B, H, W)`` float32 elevation (m).
    deformation : Tensor
        ``(B, T, H, W)`` float32 mm: the true deformation relative to the first date.
    cumulative : Tensor
        ``(B, H, W)`` float32 mm: ``deformation[:, -1] - deformation[:, 0]``.
    valid : Tensor
        ``(B, H, W)`` bool, False in decorrelation holes.
    amplitude_mm : Tensor
        ``(B,)`` float32: max |cumulative| (0 without deformation).
    source : Tensor
        ``(B,)`` int64 codes into :attr:`source_names`.
    history : Tensor
        ``(B,)`` int64 codes into :attr:`history_names`.
    noise : NoiseParams, optional
        The turbulence parameters drawn for each example and the nuisance priors
        (``simulate_batch`` fills it; the ideal observer's input).
    geometry : SourceGeometry, optional
        The source geometry and viewing angles drawn for each example (``simulate_batch``
        fills it; the parameter bound's input, :mod:`insar_denoise.evaluation.gain_bound`).
    """

    displacement: torch.Tensor
    dem: torch.Tensor
    deformation: torch.Tensor
    cumulative: torch.Tensor
    valid: torch.Tensor
    amplitude_mm: torch.Tensor
    source: torch.Tensor
    history: torch.Tensor
    source_names: tuple[str, ...] = SOURCE_NAMES
    history_names: tuple[str, ...] = HISTORY_NAMES
    noise: NoiseParams | None = None
    geometry: SourceGeometry | None = None

    def to(self, device: torch.device | str) -> SimBatch:
        """Copy with every tensor (and :attr:`noise`, :attr:`geometry`) moved to ``device``."""
        moved = {
            k: (v.to(device) if isinstance(v, (torch.Tensor, NoiseParams, SourceGeometry)) else v)
            for k, v in vars(self).items()
        }
        return SimBatch(**moved)


def _noise_params(config: SimConfig, turb: dict[str, torch.Tensor] | None, b: int) -> NoiseParams:
    """The drawn turbulence parameters (zeros without turbulence) and the nuisance priors."""
    if turb is None:
        zeros = torch.zeros(b)
        turb = {"beta": zeros, "k0_per_m": zeros, "std_mm": torch.zeros(b, config.n_dates)}
    return NoiseParams(
        turb_beta=turb["beta"],
        turb_k0_per_m=turb["k0_per_m"],
        turb_std_mm=turb["std_mm"],
        turb_pad=float(config.turbulence_pad),
        pixel_spacing_m=float(config.pixel_spacing_m),
        turbulence=bool(config.turbulence),
        stratified=bool(config.stratified),
        strat_coef_mm_per_km=tuple(config.stratified_mm_per_km),
        strat_quad_mm_per_km2=tuple(config.stratified_quad_mm_per_km2),
        orbital_ramps=bool(config.orbital_ramps),
        ramp_mm=tuple(config.ramp_mm),
        offsets=bool(config.offsets),
        offset_mm=tuple(config.offset_mm),
    )


def _atmosphere(
    gen: torch.Generator, config: SimConfig, dem: torch.Tensor, device: torch.device | str
) -> tuple[torch.Tensor, NoiseParams]:
    """Absolute per-date nuisance delay ``(B, T, H, W)`` mm (before referencing) and the
    noise parameters drawn."""
    b, t, n = dem.shape[0], config.n_dates, config.size
    atm = torch.zeros((b, t, n, n), device=device)
    turb = None
    if config.turbulence:
        atm, turb = turbulent_delay(
            gen,
            b,
            t,
            n,
            pixel_spacing_m=config.pixel_spacing_m,
            powerlaw_prob=config.powerlaw_prob,
            powerlaw_beta=config.powerlaw_beta,
            vonkarman_hurst=config.vonkarman_hurst,
            correlation_length_km=config.correlation_length_km,
            std_mm=config.turbulence_std_mm,
            pad=config.turbulence_pad,
            device=device,
            return_params=True,
        )
    if config.stratified:
        atm += stratified_delay(
            gen,
            dem,
            t,
            coef_mm_per_km=config.stratified_mm_per_km,
            quad_mm_per_km2=config.stratified_quad_mm_per_km2,
        )
    if config.orbital_ramps:
        atm += artifacts.orbital_ramps(gen, b, t, n, ramp_mm=config.ramp_mm, device=device)
    if config.offsets:
        atm += artifacts.offsets(gen, b, t, offset_mm=config.offset_mm, device=device)
    return atm, _noise_params(config, turb, b).to(device)


def _legacy_trimmed(weights: list[float]) -> list[float]:
    """Source weights without the zero-weight categories appended after the original five.

    ``torch.multinomial`` draws one random number per category for a single sample, so an
    extra category, even of weight 0, would change every later draw of a batch of one.
    """
    n = len(weights)
    while n > LEGACY_SOURCE_COUNT and weights[n - 1] == 0:
        n -= 1
    return weights[:n]


def simulate_batch(
    config: SimConfig,
    batch_size: int,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> SimBatch:
    """Draw ``batch_size`` synthetic examples from the distribution ``config``.

    Parameters
    ----------
    config : SimConfig
        The distribution (sizes, dates, ranges, probabilities).
    batch_size : int
        Number of examples B.
    generator : torch.Generator
        Source of all randomness (same seed and config: identical batch). Random numbers
        are drawn on the generator's device, so a CPU generator gives the same examples on
        any compute ``device``.
    device : str or torch.device
        Where the computation runs and the tensors live.

    Returns
    -------
    SimBatch
        Tensors of shapes ``(B, T, H, W)`` / ``(B, H, W)`` / ``(B,)`` with
        ``T = config.n_dates`` and ``H = W = config.size``.
    """
    b, t, n = int(batch_size), config.n_dates, config.size
    gen = generator
    # deformation source, history, amplitude and viewing geometry
    source = sampling.categorical(gen, _legacy_trimmed(config.source_weights()), b, device)
    history = sampling.categorical(gen, config.history_weights(), b, device)
    history = torch.where(source == 0, torch.zeros_like(history), history)
    amplitude = sampling.log_uniform(gen, config.amplitude_mm, (b,), device)
    amplitude = torch.where(source == 0, torch.zeros_like(amplitude), amplitude)
    ascending = sampling.bernoulli(gen, config.ascending_prob, (b,), device)
    heading = torch.where(
        ascending,
        sampling.uniform(gen, config.heading_asc_deg, (b,), device),
        sampling.uniform(gen, config.heading_desc_deg, (b,), device),
    )
    incidence = sampling.uniform(gen, config.incidence_deg, (b,), device)
    los, geometry = los_maps_and_geometry(gen, config, source, incidence, heading, device)
    times = torch.tensor(config.times_days(), device=device, dtype=torch.float32)
    hist = sample_histories(
        gen, history, times, duration_frac=config.transient_duration_frac, device=device
    )
    cumulative = los * amplitude[:, None, None]
    deformation = cumulative[:, None] * hist[:, :, None, None]
    # DEM and nuisance terms, referenced to the first date
    dem = sample_dems(
        gen,
        b,
        n,
        pixel_spacing_m=config.pixel_spacing_m,
        real_prob=config.real_dem_prob,
        beta=config.dem_beta,
        relief_m=config.dem_relief_m,
        base_m=config.dem_base_m,
        zoom=config.real_dem_zoom,
        relief_scale=config.real_dem_relief_scale,
        device=device,
    )
    # displacement = deformation + atmosphere(t) - atmosphere(t0), built in place
    displacement, noise = _atmosphere(gen, config, dem, device)
    displacement -= displacement[:, :1].clone()
    displacement += deformation
    displacement += artifacts.unwrapping_errors(
        gen,
        b,
        t,
        n,
        prob=config.unwrap_prob,
        radius_frac=config.unwrap_radius_frac,
        half_wavelength_mm=config.unwrap_half_wavelength_mm,
        device=device,
    )
    valid = artifacts.decorrelation_holes(
        gen,
        b,
        n,
        prob=config.holes_prob,
        fraction=config.holes_fraction,
        pixel_spacing_m=config.pixel_spacing_m,
        device=device,
    )
    displacement.masked_fill_(~valid[:, None], float("nan"))
    return SimBatch(
        displacement=displacement,
        dem=dem,
        deformation=deformation,
        cumulative=deformation[:, -1] - deformation[:, 0],
        valid=valid,
        amplitude_mm=deformation[:, -1].abs().amax(dim=(-2, -1)),
        source=source,
        history=history,
        noise=noise,
        geometry=geometry,
    )
