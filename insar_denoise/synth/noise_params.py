"""``NoiseParams``: the noise parameters the simulator drew for a batch (ideal-observer input).

The turbulence of example ``b`` on date ``t`` is ``turb_std_mm[b, t] * f`` with ``f`` a
unit-std field of spectrum ``(k^2 + k0^2)^(-beta/2)`` (:mod:`insar_denoise.synth.turbulence`);
the other nuisances are described by their priors (uniform ranges of the per-date
coefficients), as drawn in :mod:`insar_denoise.synth.stratified` and
:mod:`insar_denoise.synth.artifacts`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass
class NoiseParams:
    """Per-batch noise parameters (tensors) and nuisance priors (ranges).

    Attributes
    ----------
    turb_beta : Tensor
        ``(B,)`` spectral exponent of the turbulence.
    turb_k0_per_m : Tensor
        ``(B,)`` corner wavenumber (cycles/m); 0 = pure power law.
    turb_std_mm : Tensor
        ``(B, T)`` per-date standard deviation (mm) over the tile after mean removal.
    turb_pad : float
        The fields are synthesised on a grid ``turb_pad`` times the tile, then cropped.
    pixel_spacing_m : float
        Pixel spacing (m).
    turbulence : bool
        False: no turbulent term (``turb_std_mm`` is zero).
    stratified, strat_coef_mm_per_km, strat_quad_mm_per_km2
        Stratified delay ``a z + q z^2`` (z in km above the tile minimum), ``a`` and ``q``
        uniform in their ranges, independent per date.
    orbital_ramps, ramp_mm
        Planar ramp spanning a magnitude uniform in ``ramp_mm`` across the tile, uniform
        direction, per date.
    offsets, offset_mm
        Constant offset uniform in ``offset_mm``, per date.
    date_cov_mm2 : Tensor or None
        ``(B, T-1, T-1)`` covariance (mm²) of the turbulence of dates 1..T-1 relative to date
        0, where it was estimated from a real stack (:mod:`insar_denoise.scoring.
        noise_estimate`); None: the simulator's, ``diag(std_t²) + std_0²`` (independent dates
        sharing date 0's atmosphere). The simulator ignores it.
    """

    turb_beta: torch.Tensor
    turb_k0_per_m: torch.Tensor
    turb_std_mm: torch.Tensor
    turb_pad: float
    pixel_spacing_m: float
    turbulence: bool = True
    stratified: bool = False
    strat_coef_mm_per_km: tuple[float, float] = (0.0, 0.0)
    strat_quad_mm_per_km2: tuple[float, float] = (0.0, 0.0)
    orbital_ramps: bool = False
    ramp_mm: tuple[float, float] = (0.0, 0.0)
    offsets: bool = False
    offset_mm: tuple[float, float] = (0.0, 0.0)
    date_cov_mm2: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        """Number of examples B."""
        return int(self.turb_std_mm.shape[0])

    @property
    def n_dates(self) -> int:
        """Number of dates T."""
        return int(self.turb_std_mm.shape[1])

    def example(self, i: int) -> NoiseParams:
        """The parameters of example ``i`` alone (B = 1)."""
        if not -self.batch_size <= i < self.batch_size:
            raise IndexError(f"example {i} out of range for a batch of {self.batch_size}")
        sl = slice(i, i + 1) if i >= 0 else slice(self.batch_size + i, self.batch_size + i + 1)
        return dataclasses.replace(
            self,
            turb_beta=self.turb_beta[sl],
            turb_k0_per_m=self.turb_k0_per_m[sl],
            turb_std_mm=self.turb_std_mm[sl],
            date_cov_mm2=None if self.date_cov_mm2 is None else self.date_cov_mm2[sl],
        )

    def to(self, device: torch.device | str) -> NoiseParams:
        """Copy with every tensor moved to ``device``."""
        return dataclasses.replace(
            self,
            turb_beta=self.turb_beta.to(device),
            turb_k0_per_m=self.turb_k0_per_m.to(device),
            turb_std_mm=self.turb_std_mm.to(device),
            date_cov_mm2=None if self.date_cov_mm2 is None else self.date_cov_mm2.to(device),
        )
