"""Normalisation done inside the scripted model, so that users pass raw mm and metres.

Input side, per example:

1. per date, a robust least-squares plane (offset + east and north ramps) is fitted to the
   valid pixels and removed: an ordinary least-squares fit followed by ``n_irls`` Huber
   reweightings (threshold 2 × 1.4826 × the median absolute residual of that date);
2. the de-planed window is divided by a robust amplitude scale, 1.4826 × the median of
   ``|x|`` over the valid pixels of all dates (floored at 1e-3 mm);
3. NaN holes are filled with 0 and the validity mask becomes an input channel;
4. the DEM has its mean removed and is divided by 1.4826 × its median absolute deviation,
   floored at 50 m so that flat terrain stays near 0.

Output side: the network's map is multiplied back by the amplitude scale and its
ordinary least-squares plane (fitted on the pixels valid in at least one date) is removed.
The model therefore returns the window's cumulative deformation *up to an offset and a
ramp*, and training and evaluation compare it to the truth with its own plane removed the
same way (``deplane``). Every function here is TorchScript-compatible.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

# TorchScript cannot read module-level floats, so the constants are literals below:
# MAD -> sigma factor 1.4826, amplitude-scale floor 1e-3 mm, DEM-scale floor 50 m.


def plane_basis(height: int, width: int, device: torch.device) -> Tensor:
    """Offset, x-ramp and y-ramp on a ``[-1, 1]`` grid, float64 of shape ``(3, H, W)``."""
    y = torch.linspace(-1.0, 1.0, height, dtype=torch.float64, device=device)
    x = torch.linspace(-1.0, 1.0, width, dtype=torch.float64, device=device)
    yy = y.view(-1, 1).expand(height, width)
    xx = x.view(1, -1).expand(height, width)
    return torch.stack([torch.ones_like(xx), xx, yy])


def fit_plane(values: Tensor, weight: Tensor) -> Tensor:
    """Weighted least-squares plane of each map.

    Parameters
    ----------
    values : Tensor
        ``(..., H, W)`` finite values (anything where ``weight`` is 0).
    weight : Tensor
        ``(..., H, W)`` non-negative weights (0 outside the valid pixels).

    Returns
    -------
    Tensor
        ``(..., H, W)`` float64 plane; 0 for a map without weight.
    """
    h, w = values.shape[-2], values.shape[-1]
    basis = plane_basis(h, w, values.device)
    b = basis.view(3, -1)
    lead = values.shape[:-2]
    vals = values.reshape(-1, h * w).double()
    wts = weight.reshape(-1, h * w).double()
    ata = torch.einsum("np,ip,jp->nij", wts, b, b)
    atb = torch.einsum("np,ip->ni", wts * vals, b)
    trace = ata.diagonal(dim1=-2, dim2=-1).sum(-1)
    ridge = (1e-10 * (trace + 1.0)).view(-1, 1, 1) * torch.eye(
        3, dtype=torch.float64, device=values.device
    )
    coef = torch.linalg.solve(ata + ridge, atb.unsqueeze(-1)).squeeze(-1)
    plane = coef @ b
    out_shape: list[int] = list(lead) + [h, w]
    return plane.view(out_shape)


def robust_plane(values: Tensor, valid: Tensor, n_irls: int = 2) -> Tensor:
    """Huber-reweighted least-squares plane of each map (float64, same shape as ``values``)."""
    w = valid.double()
    plane = fit_plane(values, w)
    for _ in range(n_irls):
        resid = (values.double() - plane).abs()
        masked = torch.where(valid, resid, torch.full_like(resid, float("nan")))
        mad = torch.nanmedian(masked.flatten(-2), dim=-1).values
        mad = torch.nan_to_num(mad, nan=0.0)
        c = (2.0 * 1.4826 * mad).unsqueeze(-1).unsqueeze(-1)
        huber = torch.where(resid <= c, torch.ones_like(resid), c / resid.clamp_min(1e-30))
        plane = fit_plane(values, w * huber)
    return plane


def robust_scale(values: Tensor, valid: Tensor) -> Tensor:
    """1.4826 × median ``|x|`` over valid pixels of each example, floored; shape ``(B,)``."""
    b = values.shape[0]
    masked = torch.where(valid, values.abs(), torch.full_like(values, float("nan")))
    med = torch.nanmedian(masked.reshape(b, -1), dim=-1).values
    med = torch.nan_to_num(med, nan=0.0)
    return (1.4826 * med).clamp_min(1e-3)


def normalize_displacement(displacement: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """De-plane, scale and fill a window of displacement maps.

    Parameters
    ----------
    displacement : Tensor
        ``(B, N, H, W)`` mm, NaN in holes.

    Returns
    -------
    tuple of Tensor
        normalised window ``(B, N, H, W)`` float32 (0 in holes), validity mask
        ``(B, N, H, W)`` bool, amplitude scale ``(B,)`` mm float32.
    """
    valid = torch.isfinite(displacement)
    x = torch.where(valid, displacement, torch.zeros_like(displacement))
    resid = (x.double() - robust_plane(x, valid)) * valid.double()
    scale = robust_scale(resid, valid)
    norm = (resid / scale.view(-1, 1, 1, 1)).float()
    return norm, valid, scale.float()


def normalize_dem(dem: Tensor) -> Tensor:
    """Remove the mean and divide by a floored robust scale; NaN become 0. ``(B, H, W)``."""
    b = dem.shape[0]
    valid = torch.isfinite(dem)
    filled = torch.where(valid, dem, torch.zeros_like(dem)).double()
    count = valid.reshape(b, -1).sum(-1).clamp_min(1)
    mean = filled.reshape(b, -1).sum(-1) / count
    centred = (filled - mean.view(-1, 1, 1)) * valid.double()
    masked = torch.where(valid, centred.abs(), torch.full_like(centred, float("nan")))
    mad = torch.nan_to_num(torch.nanmedian(masked.reshape(b, -1), dim=-1).values, nan=0.0)
    scale = (1.4826 * mad).clamp_min(50.0)
    return (centred / scale.view(-1, 1, 1)).float()


def deplane(values: Tensor, valid: Tensor) -> Tensor:
    """Remove the ordinary least-squares plane fitted on ``valid``; NaN outside ``valid``.

    Parameters
    ----------
    values : Tensor
        ``(B, H, W)`` maps (NaN allowed outside ``valid``).
    valid : Tensor
        ``(B, H, W)`` bool.
    """
    filled = torch.where(valid, values, torch.zeros_like(values))
    plane = fit_plane(filled, valid.double())
    out = (filled.double() - plane).to(values.dtype)
    return torch.where(valid, out, torch.full_like(out, float("nan")))


def deplane_np(maps: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """:func:`deplane` of numpy ``maps`` ``(H, W)`` or ``(B, H, W)`` over ``ok`` (broadcast);
    NaN outside ``ok``, dtype kept (pass float64 for float64 arithmetic)."""
    single = maps.ndim == 2
    batch = maps[None] if single else maps
    mask = np.broadcast_to(ok, batch.shape)
    out = deplane(torch.from_numpy(np.where(mask, batch, 0.0)), torch.from_numpy(mask.copy()))
    return out[0].numpy() if single else out.numpy()
