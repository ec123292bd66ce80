"""Convolutional autoencoder after Rouet-Leduc et al. (2021), Nat. Commun. 12, 6480.

The encoder sees the window as a 3-D volume (time, y, x) with three input channels
(normalised displacement, validity mask, normalised DEM). Its 3-D convolutions use temporal
kernels *without temporal padding*, so time shrinks from ``window`` dates to one while space
is average-pooled by two at each level. Each encoder level hands a 2-D skip map to the
decoder (a convolution whose temporal kernel spans the dates left at that level). The 2-D
decoder upsamples by bilinear interpolation followed by 3 × 3 convolutions (no transposed
convolutions) and receives the normalised DEM, average-pooled to its scale, at every level.
The output is the deformation cumulated over the window (last minus first date) in mm,
defined up to an offset and a ramp (see :mod:`insar_denoise.models.normalization`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from insar_denoise.models.normalization import deplane, normalize_dem, normalize_displacement

DEFAULT_CHANNELS = (16, 32, 64, 96)


def temporal_kernels(window: int, slots: int = 4) -> list[int]:
    """Split the ``window - 1`` dates to remove over ``slots`` unpadded temporal kernels."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    reduce = window - 1
    return [1 + reduce // slots + (1 if i < reduce % slots else 0) for i in range(slots)]


class Act(nn.Module):
    """LeakyReLU(0.1): cheap on CPU and keeps a gradient for negative inputs."""

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, 0.1)


class DenoisingAutoencoder(nn.Module):
    """Purely convolutional InSAR time-series denoiser.

    Parameters
    ----------
    window : int
        Number of consecutive displacement maps per input (default 9).
    channels : tuple of int
        Feature channels at strides 1, 2, 4 and 8 (the bottleneck).

    Notes
    -----
    Input ``displacement (B, window, H, W)`` mm (NaN allowed) and ``dem (B, H, W)`` m, with
    ``H`` and ``W`` multiples of ``tile_multiple`` (8). Output ``(B, H, W)`` mm, NaN where the
    pixel is invalid in every date of the window; elsewhere the model fills the holes.
    """

    def __init__(self, window: int = 9, channels: tuple[int, ...] = DEFAULT_CHANNELS) -> None:
        super().__init__()
        if len(channels) != 4:
            raise ValueError(f"channels needs 4 entries (strides 1, 2, 4, 8), got {channels}")
        c0, c1, c2, c3 = channels
        k = temporal_kernels(window)
        self.window = window
        self.tile_multiple = 8
        self.channels = list(channels)
        t1 = window - (k[0] - 1) - (k[1] - 1)
        t2 = t1 - (k[2] - 1)
        self.enc0 = nn.Sequential(
            nn.Conv3d(3, c0, (k[0], 3, 3), padding=(0, 1, 1)),
            Act(),
            nn.Conv3d(c0, c0, (k[1], 3, 3), padding=(0, 1, 1)),
            Act(),
        )
        self.skip0 = nn.Conv3d(c0, c0, (t1, 1, 1))
        self.enc1 = nn.Sequential(nn.Conv3d(c0, c1, (k[2], 3, 3), padding=(0, 1, 1)), Act())
        self.skip1 = nn.Conv3d(c1, c1, (t2, 1, 1))
        self.enc2 = nn.Sequential(nn.Conv3d(c1, c2, (k[3], 3, 3), padding=(0, 1, 1)), Act())
        self.bottleneck = nn.Sequential(
            nn.Conv2d(c2 + 1, c3, 3, padding=1),
            Act(),
            nn.Conv2d(c3, c3, 3, padding=1),
            Act(),
        )
        self.dec2 = nn.Sequential(nn.Conv2d(c3 + c2 + 1, c2, 3, padding=1), Act())
        self.dec1 = nn.Sequential(nn.Conv2d(c2 + c1 + 1, c1, 3, padding=1), Act())
        self.dec0 = nn.Sequential(
            nn.Conv2d(c1 + c0 + 1, c0, 3, padding=1),
            Act(),
            nn.Conv2d(c0, 1, 1),
        )

    def _check(self, displacement: Tensor, dem: Tensor) -> None:
        if displacement.dim() != 4 or dem.dim() != 3:
            raise ValueError(
                "expected displacement (B, N, H, W) and dem (B, H, W), got "
                + str(list(displacement.shape))
                + " and "
                + str(list(dem.shape))
            )
        n, h, w = displacement.shape[1], displacement.shape[2], displacement.shape[3]
        if n != self.window:
            raise ValueError(
                "this model takes windows of " + str(self.window) + " dates, got " + str(n)
            )
        if h % self.tile_multiple != 0 or w % self.tile_multiple != 0 or h == 0 or w == 0:
            raise ValueError(
                "tile sides must be positive multiples of "
                + str(self.tile_multiple)
                + ", got "
                + str(h)
                + " x "
                + str(w)
            )
        if dem.shape[0] != displacement.shape[0] or dem.shape[1] != h or dem.shape[2] != w:
            raise ValueError(
                "dem shape " + str(list(dem.shape)) + " does not match the displacement tile"
            )

    def network(self, x: Tensor, valid: Tensor, dem_n: Tensor) -> Tensor:
        """Run the network on normalised inputs; returns ``(B, H, W)`` in scale units."""
        n = x.shape[1]
        dem3 = dem_n.unsqueeze(1).unsqueeze(1).expand(-1, 1, n, -1, -1)
        vol = torch.cat([x.unsqueeze(1), valid.to(x.dtype).unsqueeze(1), dem3], dim=1)
        e0 = self.enc0(vol)
        s0 = self.skip0(e0).squeeze(2)
        e1 = self.enc1(F.avg_pool3d(e0, (1, 2, 2)))
        s1 = self.skip1(e1).squeeze(2)
        e2 = self.enc2(F.avg_pool3d(e1, (1, 2, 2))).squeeze(2)
        d = dem_n.unsqueeze(1)
        d1 = F.avg_pool2d(d, 2)
        d2 = F.avg_pool2d(d1, 2)
        d3 = F.avg_pool2d(d2, 2)
        b = self.bottleneck(torch.cat([F.avg_pool2d(e2, 2), d3], dim=1))
        u = F.interpolate(b, scale_factor=2.0, mode="bilinear", align_corners=False)
        u = self.dec2(torch.cat([u, e2, d2], dim=1))
        u = F.interpolate(u, scale_factor=2.0, mode="bilinear", align_corners=False)
        u = self.dec1(torch.cat([u, s1, d1], dim=1))
        u = F.interpolate(u, scale_factor=2.0, mode="bilinear", align_corners=False)
        return self.dec0(torch.cat([u, s0, d], dim=1)).squeeze(1)

    def forward_with_scale(self, displacement: Tensor, dem: Tensor) -> tuple[Tensor, Tensor]:
        """Like :meth:`forward`, also returning the per-example amplitude scale ``(B,)`` mm."""
        self._check(displacement, dem)
        x, valid, scale = normalize_displacement(displacement.float())
        dem_n = normalize_dem(dem.float())
        out = self.network(x, valid, dem_n).float() * scale.view(-1, 1, 1)
        return deplane(out, valid.any(dim=1)), scale

    def forward(self, displacement: Tensor, dem: Tensor) -> Tensor:
        """Cumulative deformation over the window (last minus first date), mm, ``(B, H, W)``."""
        return self.forward_with_scale(displacement, dem)[0]


def receptive_field(model: DenoisingAutoencoder) -> int:
    """Spatial receptive field (pixels) of one output pixel, computed layer by layer."""
    rf, jump = 1, 1

    def conv(k: int) -> None:
        nonlocal rf
        rf += (k - 1) * jump

    def pool() -> None:
        nonlocal rf, jump
        rf += jump
        jump *= 2

    # encoder path through the bottleneck (the deepest, widest path)
    conv(3), conv(3), pool(), conv(3), pool(), conv(3), pool(), conv(3), conv(3)
    # decoder: bilinear upsampling adds ~1 coarse pixel, then a 3x3 conv per level
    for _ in range(3):
        rf += jump
        jump //= 2
        conv(3)
    return rf


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
