"""Gaussian random fields with power-law / von Karman spectra (turbulent tropospheric delay).

Convention (Hanssen 2001, "Radar Interferometry", sec. 4.7): the 2-D power spectrum of the
delay is ``P(k) ∝ (k^2 + k0^2)^(-beta/2)`` with ``k`` in cycles per metre. ``k0 = 0`` is a
pure power law (Kolmogorov turbulence: beta = 8/3 in 2-D; 5/3 and 11/3 bound the observed
regimes). ``k0 = 1 / (2 pi L)`` with ``beta = 2 H + 2`` is the von Karman spectrum of
correlation length ``L`` and Hurst exponent ``H``; ``H = 1/2`` is the exponential covariance
``exp(-r / L)``. Fields are synthesised on a grid ``pad`` times larger than the tile and
cropped, so the tile shows no periodic wrap-around.
"""

from __future__ import annotations

import math

import torch

from insar_denoise.synth import sampling

#: spectral exponents typical of tropospheric turbulence (Kolmogorov 5/3 to 11/3; Hanssen 2001,
#: sec. 4.7): the QC calls a removed-noise map atmosphere-like within this range
ATMOSPHERE_BETA = (5.0 / 3.0, 11.0 / 3.0)


def padded_size(n: int, pad: float) -> int:
    """Even FFT grid size of at least ``pad * n`` pixels."""
    m = max(n, int(math.ceil(pad * n)))
    return m + (m % 2)


def spectral_field(
    gen: torch.Generator,
    batch_shape: tuple[int, ...],
    size: int,
    beta: torch.Tensor,
    *,
    pixel_spacing_m: float,
    k0_per_m: torch.Tensor | float = 0.0,
    pad: float = 2.0,
    device: torch.device | str = "cpu",
    crop: bool = True,
) -> torch.Tensor:
    """Zero-mean, unit-std Gaussian random fields with spectrum ``(k^2 + k0^2)^(-beta/2)``.

    Parameters
    ----------
    gen : torch.Generator
        Source of randomness.
    batch_shape : tuple of int
        Leading shape, e.g. ``(B, T)``.
    size : int
        Side of the returned square fields (pixels).
    beta : Tensor
        Spectral exponent, broadcastable to ``batch_shape``.
    pixel_spacing_m : float
        Pixel spacing (m), which sets the wavenumbers of ``k0``.
    k0_per_m : Tensor or float
        Corner wavenumber (cycles/m), broadcastable to ``batch_shape``; 0 = pure power law.
    pad : float
        The field is synthesised on a ``pad * size`` grid then cropped (no wrap-around).
    device : str or torch.device
        Compute device.
    crop : bool
        If False, return the whole periodic padded field (for spectral tests).

    Returns
    -------
    Tensor
        ``batch_shape + (size, size)`` float32 (or the padded size when ``crop=False``),
        normalised to zero mean and unit standard deviation over the returned area.
    """
    n = padded_size(size, pad)
    # spectrum laid out (kx, ky): kx >= 0 (half plane, real output), ky on the last axis
    kx = torch.fft.rfftfreq(n, d=pixel_spacing_m, device=device, dtype=torch.float64)
    ky = torch.fft.fftfreq(n, d=pixel_spacing_m, device=device, dtype=torch.float64)
    k2 = (kx[:, None] ** 2 + ky[None, :] ** 2).float()
    beta_t = torch.as_tensor(beta, dtype=torch.float32, device=device)
    beta_t = beta_t.reshape(*beta_t.shape, 1, 1)
    k0 = torch.as_tensor(k0_per_m, dtype=torch.float32, device=device)
    k0 = k0.reshape(*k0.shape, 1, 1)
    # amplitude = sqrt(P) = (k^2 + k0^2)^(-beta/4); the k = 0 term (the mean) is removed
    amp = (k2 + k0 * k0).clamp_min(1e-30) ** (-beta_t / 4.0) * (k2 > 0)
    spec = sampling.normal(gen, (*batch_shape, n // 2 + 1, n), device, torch.complex64) * amp
    if crop:
        # inverse transform along y, keep the rows of the tile, then along x (half the work)
        o = (n - size) // 2
        cols = torch.fft.ifft(spec, dim=-1, norm="forward")[..., o : o + size]
        field = torch.fft.irfft(cols.transpose(-1, -2), n=n, dim=-1)[..., o : o + size]
    else:
        field = torch.fft.irfft2(spec.transpose(-1, -2), s=(n, n))
    # (torch.std_mean is several times slower than two plain passes here)
    field = field - field.mean(dim=(-2, -1), keepdim=True)
    std = (field * field).mean(dim=(-2, -1), keepdim=True).sqrt()
    return field / std.clamp_min(1e-12)


def turbulent_delay(
    gen: torch.Generator,
    batch: int,
    n_dates: int,
    size: int,
    *,
    pixel_spacing_m: float,
    powerlaw_prob: float,
    powerlaw_beta: tuple[float, float],
    vonkarman_hurst: tuple[float, float],
    correlation_length_km: tuple[float, float],
    std_mm: tuple[float, float],
    pad: float,
    device: torch.device | str,
    return_params: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Turbulent delay ``(batch, n_dates, size, size)`` mm, independent per date.

    Each example draws one spectral family (power law with probability ``powerlaw_prob``,
    else von Karman), one exponent and one correlation length; each date draws its own
    standard deviation (log-uniform in ``std_mm``). With ``return_params``, also return
    ``{"beta": (batch,), "k0_per_m": (batch,), "std_mm": (batch, n_dates)}``.
    """
    is_pl = sampling.bernoulli(gen, powerlaw_prob, (batch,), device)
    beta_pl = sampling.uniform(gen, powerlaw_beta, (batch,), device)
    beta_vk = 2.0 * sampling.uniform(gen, vonkarman_hurst, (batch,), device) + 2.0
    length_m = 1e3 * sampling.log_uniform(gen, correlation_length_km, (batch,), device)
    beta = torch.where(is_pl, beta_pl, beta_vk)
    k0 = torch.where(is_pl, torch.zeros_like(length_m), 1.0 / (2.0 * math.pi * length_m))
    std = sampling.log_uniform(gen, std_mm, (batch, n_dates), device)
    field = spectral_field(
        gen,
        (batch, n_dates),
        size,
        beta[:, None],
        pixel_spacing_m=pixel_spacing_m,
        k0_per_m=k0[:, None],
        pad=pad,
        device=device,
    )
    field = field * std[..., None, None]
    if return_params:
        return field, {"beta": beta, "k0_per_m": k0, "std_mm": std}
    return field
