"""Other nuisance terms: orbital ramps, offsets, decorrelation holes, unwrapping errors."""

from __future__ import annotations

import torch

from insar_denoise.synth import sampling
from insar_denoise.synth.turbulence import spectral_field


def _unit_coords(size: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates in [-0.5, 0.5] (x east, y north), each ``(size, size)``."""
    c = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size - 0.5
    y, x = torch.meshgrid(-c, c, indexing="ij")
    return x, y


def orbital_ramps(
    gen: torch.Generator,
    batch: int,
    n_dates: int,
    size: int,
    *,
    ramp_mm: tuple[float, float],
    device: torch.device | str,
) -> torch.Tensor:
    """Planar ramps ``(B, T, H, W)`` mm; each date's ramp spans ``ramp_mm`` across the tile."""
    x, y = _unit_coords(size, device)
    mag = sampling.uniform(gen, ramp_mm, (batch, n_dates, 1, 1), device)
    ang = sampling.uniform(gen, (0.0, 2.0 * torch.pi), (batch, n_dates, 1, 1), device)
    # separable: x varies along columns only, y along rows only
    return (mag * torch.cos(ang)) * x[:1, :] + (mag * torch.sin(ang)) * y[:, :1]


def offsets(
    gen: torch.Generator,
    batch: int,
    n_dates: int,
    *,
    offset_mm: tuple[float, float],
    device: torch.device | str,
) -> torch.Tensor:
    """Constant offsets ``(B, T, 1, 1)`` mm (the choice of reference point)."""
    return sampling.uniform(gen, offset_mm, (batch, n_dates, 1, 1), device)


def decorrelation_holes(
    gen: torch.Generator,
    batch: int,
    size: int,
    *,
    prob: float,
    fraction: tuple[float, float],
    pixel_spacing_m: float,
    device: torch.device | str,
) -> torch.Tensor:
    """Valid mask ``(B, H, W)`` bool: a share ``prob`` of examples loses blobs of pixels.

    Blobs are the top ``fraction`` (drawn per example) of a smooth random field.
    """
    has = sampling.bernoulli(gen, prob, (batch,), device)
    frac = sampling.uniform(gen, fraction, (batch,), device)
    valid = torch.ones((batch, size, size), dtype=torch.bool, device=device)
    idx = torch.nonzero(has).flatten()
    if idx.numel() == 0:
        return valid
    beta = torch.full((idx.numel(),), 3.5, device=device)
    field = spectral_field(
        gen, (idx.numel(),), size, beta, pixel_spacing_m=pixel_spacing_m, device=device
    )
    flat = field.reshape(idx.numel(), -1)
    k = (frac[idx] * flat.shape[1]).long().clamp(1, flat.shape[1])
    thresh = torch.sort(flat, dim=1, descending=True).values.gather(1, k[:, None] - 1)
    valid[idx] = (flat < thresh).reshape(-1, size, size)
    return valid


def unwrapping_errors(
    gen: torch.Generator,
    batch: int,
    n_dates: int,
    size: int,
    *,
    prob: float,
    radius_frac: tuple[float, float],
    half_wavelength_mm: float,
    device: torch.device | str,
) -> torch.Tensor:
    """Jumps ``(B, T, H, W)`` mm: in a share ``prob`` of examples, one date (not the first)
    gets an elliptical region shifted by +/-1 or +/-2 half wavelengths."""
    x, y = _unit_coords(size, device)
    has = sampling.bernoulli(gen, prob, (batch,), device)
    date = torch.floor(sampling.uniform(gen, (1.0, n_dates - 1e-3), (batch,), device)).long()
    cx = sampling.uniform(gen, (-0.4, 0.4), (batch, 1, 1), device)
    cy = sampling.uniform(gen, (-0.4, 0.4), (batch, 1, 1), device)
    ra = sampling.uniform(gen, radius_frac, (batch, 1, 1), device)
    rb = sampling.uniform(gen, radius_frac, (batch, 1, 1), device)
    ang = sampling.uniform(gen, (0.0, torch.pi), (batch, 1, 1), device)
    cycles = torch.floor(sampling.uniform(gen, (1.0, 2.999), (batch, 1, 1), device))
    jump = cycles * sampling.sign(gen, (batch, 1, 1), device) * half_wavelength_mm
    dx, dy = x - cx, y - cy
    u = torch.cos(ang) * dx + torch.sin(ang) * dy
    v = -torch.sin(ang) * dx + torch.cos(ang) * dy
    region = ((u / ra) ** 2 + (v / rb) ** 2 <= 1.0) & has[:, None, None]
    on_date = torch.arange(n_dates, device=device)[None, :] == date[:, None]
    return (region[:, None] & on_date[:, :, None, None]).float() * jump[:, None]
