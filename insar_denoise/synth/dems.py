"""Synthetic DEMs: fractal terrain and random patches of the bundled real DEMs.

Real DEMs (``data/real_dems.npz``, float32 elevation in m, NaN-filled, with their pixel
spacing in m): Jacksboro, Tennessee (~90 m, 344 x 403) and the Salish Sea (~2.5 km, 91 x
120, bathymetry included). A patch is a rotated (multiples of 90 degrees), flipped, zoomed
(bilinear) crop that lies inside its source: a tile larger than the source is an
upsampled crop (mirror reflection only guards the borders). Its relief is rescaled and it
sits on a random base elevation.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np
import torch
import torch.nn.functional as F

from insar_denoise.synth import sampling
from insar_denoise.synth.turbulence import spectral_field


@functools.lru_cache(maxsize=1)
def load_real_dems() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The bundled real DEMs: ``{name: (elevation_m (H, W) float32, spacing_m (dy, dx))}``."""
    path = resources.files("insar_denoise.synth").joinpath("data/real_dems.npz")
    with resources.as_file(path) as p, np.load(p) as data:
        names = [str(n) for n in data["names"]]
        return {n: (data[f"dem_{n}"].astype(np.float32), data[f"spacing_{n}"]) for n in names}


def fractal_dem(
    gen: torch.Generator,
    batch: int,
    size: int,
    *,
    pixel_spacing_m: float,
    beta: tuple[float, float],
    relief_m: tuple[float, float],
    device: torch.device | str,
) -> torch.Tensor:
    """Fractal terrain ``(batch, size, size)`` m above its own minimum.

    A power-law Gaussian field (exponent drawn in ``beta``; about 4 for real topography),
    raised to a power in [1, 2] so that valleys are broad and peaks sharp, scaled to a
    relief (max - min) drawn log-uniformly in ``relief_m``.
    """
    b = sampling.uniform(gen, beta, (batch,), device)
    field = spectral_field(gen, (batch,), size, b, pixel_spacing_m=pixel_spacing_m, device=device)
    lo = field.amin(dim=(-2, -1), keepdim=True)
    hi = field.amax(dim=(-2, -1), keepdim=True)
    unit = (field - lo) / (hi - lo).clamp_min(1e-12)
    power = sampling.uniform(gen, (1.0, 2.0), (batch, 1, 1), device)
    relief = sampling.log_uniform(gen, relief_m, (batch, 1, 1), device)
    return unit**power * relief


def _patch_grid(
    gen: torch.Generator,
    n: int,
    size: int,
    src_shape: tuple[int, int],
    zoom: tuple[float, float],
    device: torch.device | str,
) -> torch.Tensor:
    """Sampling grid ``(n, size, size, 2)`` for ``grid_sample`` (align_corners=False)."""
    hs, ws = src_shape
    # zoom out no further than the patch fits in the source (a larger request upsamples)
    z_fit = (min(hs, ws) - 1.0) / max(size - 1.0, 1.0)
    z = sampling.log_uniform(gen, zoom, (n,), device).clamp_max(z_fit)
    k = torch.floor(sampling.uniform(gen, (0.0, 3.999), (n,), device))
    flip = sampling.sign(gen, (n,), device)
    half = 0.5 * z * (size - 1.0)
    cy = half + sampling.uniform(gen, (0.0, 1.0), (n,), device) * (hs - 1.0 - 2.0 * half)
    cx = half + sampling.uniform(gen, (0.0, 1.0), (n,), device) * (ws - 1.0 - 2.0 * half)
    ang = k * (torch.pi / 2.0)
    c, s = torch.cos(ang).round(), torch.sin(ang).round()
    off = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2.0
    v, u = torch.meshgrid(off, off, indexing="ij")
    u = u[None] * (flip * z)[:, None, None]
    v = v[None] * z[:, None, None]
    cc, ss = c[:, None, None], s[:, None, None]
    px = cx[:, None, None] + cc * u - ss * v
    py = cy[:, None, None] + ss * u + cc * v
    gx = (2.0 * px + 1.0) / ws - 1.0
    gy = (2.0 * py + 1.0) / hs - 1.0
    return torch.stack([gx, gy], dim=-1)


def real_dem_patches(
    gen: torch.Generator,
    batch: int,
    size: int,
    *,
    zoom: tuple[float, float],
    relief_scale: tuple[float, float],
    device: torch.device | str,
) -> torch.Tensor:
    """Patches ``(batch, size, size)`` m (above their own minimum) of the bundled real DEMs.

    ``zoom`` is the range of source pixels per output pixel (log-uniform; < 1 upsamples).
    """
    dems = list(load_real_dems().values())
    which = sampling.categorical(gen, [1.0] * len(dems), batch, "cpu")
    out = torch.empty((batch, size, size), device=device)
    for i, (elev, _) in enumerate(dems):
        idx = torch.nonzero(which == i).flatten()
        if idx.numel() == 0:
            continue
        src = torch.from_numpy(elev).to(device)[None, None]
        grid = _patch_grid(gen, idx.numel(), size, elev.shape, zoom, device)
        patch = F.grid_sample(
            src.expand(idx.numel(), 1, *elev.shape),
            grid,
            mode="bilinear",
            padding_mode="reflection",
            align_corners=False,
        )
        out[idx.to(device)] = patch[:, 0]
    out = out - out.amin(dim=(-2, -1), keepdim=True)
    return out * sampling.uniform(gen, relief_scale, (batch, 1, 1), device)


def sample_dems(
    gen: torch.Generator,
    batch: int,
    size: int,
    *,
    pixel_spacing_m: float,
    real_prob: float,
    beta: tuple[float, float],
    relief_m: tuple[float, float],
    base_m: tuple[float, float],
    zoom: tuple[float, float],
    relief_scale: tuple[float, float],
    device: torch.device | str,
) -> torch.Tensor:
    """DEMs ``(batch, size, size)`` float32 m: real patches (share ``real_prob``) or fractal."""
    use_real = sampling.bernoulli(gen, real_prob, (batch,), device)
    fractal = fractal_dem(
        gen,
        batch,
        size,
        pixel_spacing_m=pixel_spacing_m,
        beta=beta,
        relief_m=relief_m,
        device=device,
    )
    real = real_dem_patches(gen, batch, size, zoom=zoom, relief_scale=relief_scale, device=device)
    base = sampling.uniform(gen, base_m, (batch, 1, 1), device)
    return torch.where(use_real[:, None, None], real, fractal) + base
