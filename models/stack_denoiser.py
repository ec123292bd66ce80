"""Whole-stack denoiser (model v2): a temporal basis fit of every pixel, cleaned by a 2-D CNN.

Why: atmospheric delay is nearly independent from date to date while deformation is coherent
in time, so the information about deformation grows with the number of dates T. The model
first projects each pixel's whole series (any T, irregular sampling, gaps) onto a small
temporal basis by weighted least squares, where date-to-date atmosphere averages down with
about sqrt(T); then a small residual U-Net, which also sees the DEM and the propagated noise
of each coefficient, cleans the coefficient maps in units of their noise (so the same network
serves every T and noise level). Nothing is de-planed: broad signals pass at the gain of
the projection (1), and the network only learns corrections to it (its last layer starts at
zero, so an untrained model is the weighted least-squares fit itself).

Basis: a constant plus ``K`` piecewise-linear ramps over the normalised time
``u = (t - t0) / (t_last - t0)``: ``r_k(u) = clip(K u - k, 0, 1)``, ``k = 0..K-1``, so a
history is continuous, piecewise linear with knots at ``k / K``, and the cumulative
deformation (last minus first date) is the sum of the ramp coefficients. Date weights are
``1 / sigma_t^2`` with ``sigma_t`` estimated from the stack itself: every date shares the
first date's atmosphere, so ``var(d_t) = s_t^2 + s_0^2`` and the cross-date covariance is
``s_0^2`` (Emardson et al. 2003, JGR 108(B5), 2231: independent per-date delays).

Torch only (runs on the GPU training machine and in TorchScript).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: piecewise-linear ramps of the temporal basis
DEFAULT_SEGMENTS = 4
DEFAULT_WIDTHS = (32, 48, 64)
#: side (px) of the local mean removed from the CNN's inputs
LOCAL_PX = 33


def ramp_basis(times_days: Tensor, segments: int) -> Tensor:
    """Ramps ``(B, T, K)``: ``clip(K u - k, 0, 1)`` of the normalised time ``u`` in [0, 1]."""
    t0 = times_days[:, :1]
    span = (times_days[:, -1:] - t0).clamp_min(1e-6)
    u = (times_days - t0) / span
    k = torch.arange(segments, device=times_days.device, dtype=times_days.dtype)
    return (segments * u[:, :, None] - k[None, None, :]).clamp(0.0, 1.0)


def local_mean(x: Tensor, m: Tensor, size: int) -> Tensor:
    """Mean of ``x (B, C, H, W)`` over the ``m``-weighted pixels of a ``size`` box around
    each pixel (separable; zeros beyond the tile)."""
    return box_filter(x * m, size) / box_filter(m, size).clamp_min(1e-6)


def box_filter(v: Tensor, size: int) -> Tensor:
    """Separable ``size`` x ``size`` box mean with zeros beyond the edges (same shape)."""
    half = size // 2
    v = F.avg_pool2d(v, [1, size], [1, 1], [0, half], count_include_pad=True)
    return F.avg_pool2d(v, [size, 1], [1, 1], [half, 0], count_include_pad=True)


def masked_mean(x: Tensor, m: Tensor, dims: list[int]) -> Tensor:
    """Mean of ``x`` where ``m`` (float 0/1), over ``dims`` (kept)."""
    return (x * m).sum(dims, keepdim=True) / m.sum(dims, keepdim=True).clamp_min(1.0)


def robust_var(x: Tensor) -> Tensor:
    """(1.4826 MAD)^2 over the last dim, NaN ignored (robust to localised signals)."""
    med = torch.nanmedian(x, dim=-1, keepdim=True).values
    mad = torch.nanmedian((x - med).abs(), dim=-1).values
    return torch.nan_to_num(1.4826 * mad, nan=0.0) ** 2


def date_variances(d: Tensor) -> Tensor:
    """Per-date noise variances ``(B, T)`` mm^2 of a referenced stack (date 0 included).

    ``d`` (B, T, H, W) mm, NaN = missing. Differences of dates ``i < j`` one or two dates
    apart carry ``s_i^2 + s_j^2`` of independent atmosphere and little of a deformation that is
    coherent in time; their robust spatial variances give an over-determined linear system,
    solved by least squares (Emardson et al. 2003: independent per-date delays).
    """
    b, t = d.shape[0], d.shape[1]
    flat = d.reshape(b, t, -1)
    pairs_i: list[int] = []
    pairs_j: list[int] = []
    for lag in [1, 2]:
        for i in range(t - lag):
            pairs_i.append(i)
            pairs_j.append(i + lag)
    ii = torch.tensor(pairs_i, device=d.device, dtype=torch.long)
    jj = torch.tensor(pairs_j, device=d.device, dtype=torch.long)
    v = robust_var(flat[:, jj] - flat[:, ii])
    a = torch.zeros((len(pairs_i), t), device=d.device, dtype=d.dtype)
    r = torch.arange(len(pairs_i), device=d.device)
    a[r, ii] = 1.0
    a[r, jj] = 1.0
    if t == 2:
        own = v.repeat(1, 2) * 0.5
    else:
        own = v @ torch.linalg.pinv(a).transpose(0, 1)
    pos = own.clamp_min(0.0)
    floor = 0.25 * pos.median(dim=1, keepdim=True).values + 1e-3
    return torch.maximum(pos, floor)


def weighted_fit(y: Tensor, w: Tensor, basis: Tensor) -> tuple[Tensor, Tensor]:
    """Per-pixel weighted least squares of ``y (B, T, P)`` on ``basis (B, T, J)``.

    Returns coefficients ``(B, J, P)`` and the inverse normal matrices ``(B, P, J, J)``
    (the coefficient covariance when ``w`` are inverse variances).
    """
    b, j = basis.shape[0], basis.shape[2]
    outer = (basis[:, :, :, None] * basis[:, :, None, :]).reshape(b, -1, j * j)
    # batched matmuls over dates: no (B, T, P, J, J) intermediate
    normal = (w.transpose(1, 2) @ outer).reshape(b, -1, j, j)
    ridge = 1e-6 * torch.diagonal(normal, dim1=2, dim2=3).sum(-1).clamp_min(1e-12)
    eye = torch.eye(j, device=y.device, dtype=y.dtype)
    normal = normal + ridge[:, :, None, None] * eye
    rhs = (w * y).transpose(1, 2) @ basis
    inv = torch.linalg.inv(normal)
    coef = torch.einsum("bpij,bpj->bip", inv, rhs)
    return coef, inv


class Act(nn.Module):
    """LeakyReLU(0.1)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, 0.1)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="replicate"),
        Act(),
        nn.Conv2d(c_out, c_out, 3, padding=1, padding_mode="replicate"),
        Act(),
    )


class StackDenoiser(nn.Module):
    """Whole-stack model: ``(displacement, dem, times) -> (series, detection)``.

    Parameters
    ----------
    segments : int
        Piecewise-linear ramps K of the temporal basis.
    widths : tuple of int
        Channels of the U-Net at strides 1, 2 and 4.

    Notes
    -----
    Input ``displacement (B, T, H, W)`` mm relative to the first date (NaN = missing, per
    pixel and date), ``dem (B, H, W)`` m, ``times_days (B, T)``; ``H`` and ``W`` multiples
    of 4. Output: the denoised series ``(B, T, H, W)`` mm relative to the first date (a
    piecewise-linear history per pixel, defined up to a constant per date) and the
    detection probability ``(B, H, W)`` that the cumulative deformation exceeds
    ``detect_mm`` there.
    """

    def __init__(
        self,
        segments: int = DEFAULT_SEGMENTS,
        widths: tuple[int, int, int] = DEFAULT_WIDTHS,
        detect_mm: float = 1.0,
    ) -> None:
        super().__init__()
        self.segments = int(segments)
        self.detect_mm = float(detect_mm)
        self.local_px = LOCAL_PX
        self.tile_multiple = 4
        c0, c1, c2 = widths
        c_in = self.segments + 4  # ramp coefs, linear cumulative, coef noise, dem, mask
        self.enc0 = _block(c_in, c0)
        self.enc1 = _block(c0, c1)
        self.enc2 = _block(c1, c2)
        self.dec1 = _block(c2 + c1, c1)
        self.dec0 = _block(c1 + c0, c0)
        self.head = nn.Conv2d(c0, self.segments + 2, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.channels = [c0, c1, c2]

    def features(
        self,
        displacement: Tensor,
        dem: Tensor,
        times_days: Tensor,
        date_var: Optional[Tensor] = None,  # noqa: UP045 (TorchScript)
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Projection: ``(inputs, ramp coefs, scale, ramps, pixel mask)``.

        ``inputs (B, K+4, H, W)`` for the CNN; ``coefs (B, K, H, W)`` mm; ``scale (B,)`` mm,
        the propagated noise of the cumulative of a pixel seen on every date; ``ramps (B, T,
        K)``; ``mask (B, H, W)``. ``date_var (B, T)`` mm^2: the dates' noise variances (default:
        estimated from this input; the engine passes one estimate per scene, so that all tiles
        weigh the dates alike and agree on every pixel).
        """
        b, t, h, w = displacement.shape
        k = self.segments
        m = torch.isfinite(displacement).float()
        var = date_variances(displacement) if date_var is None else date_var
        # no per-tile mean removal before the fit: the fit is pixel-local, so neighbouring
        # tiles agree on every pixel's level (no seams, broad signals kept)
        d = torch.nan_to_num(displacement, nan=0.0) * m
        wgt = (m / var[:, :, None, None]).reshape(b, t, h * w)
        y = d.reshape(b, t, h * w)
        ramps = ramp_basis(times_days.to(d.dtype), k)
        ones = torch.ones_like(ramps[:, :, :1])
        coef, inv = weighted_fit(y, wgt, torch.cat([ones, ramps], dim=2))
        u = ramps.sum(dim=2, keepdim=True) / float(k)
        lin, _ = weighted_fit(y, wgt, torch.cat([ones, u], dim=2))
        var_cum = inv[:, :, 1:, 1:].sum(dim=(-2, -1)).clamp_min(1e-12)
        sd_cum = var_cum.sqrt().reshape(b, h, w)
        n_valid = m.sum(dim=1)
        mask = (n_valid >= float(k + 2)).float()
        basis = torch.cat([ones, ramps], dim=2)
        full = (basis.transpose(1, 2) * (1.0 / var)[:, None, :]) @ basis
        scale = torch.linalg.inv(full)[:, 1:, 1:].sum(dim=(-2, -1)).clamp_min(1e-6).sqrt()
        s4 = scale[:, None, None, None]
        coefs = coef[:, 1:].reshape(b, k, h, w) * mask[:, None]
        lin_cum = lin[:, 1].reshape(b, 1, h, w) * mask[:, None]
        # the CNN sees maps without their local mean (a 33 px window): its corrections ignore
        # the reference and depend on local context only, so overlapping tiles agree
        m4 = mask[:, None]
        centred = torch.cat([coefs, lin_cum], dim=1)
        centred = (centred - local_mean(centred, m4, self.local_px)) * m4
        rel_sd = (sd_cum / scale[:, None, None]).clamp(0.0, 10.0)[:, None] * mask[:, None]
        z = torch.nan_to_num(dem, nan=0.0)
        zc = (z[:, None] - local_mean(z[:, None], m4, self.local_px)) * m4 / 1000.0  # km
        # asinh: linear within the noise, logarithmic for strong signals (bounded activations)
        signal = torch.asinh(centred / s4)
        inputs = torch.cat([signal, rel_sd, zc, mask[:, None]], dim=1)
        return inputs, coefs, scale, ramps, mask

    def correction(self, inputs: Tensor) -> Tensor:
        """U-Net output ``(B, K+2, H, W)``: ramp corrections (noise units), detection logit and
        the log of the cumulative map's error standard deviation (noise units)."""
        e0 = self.enc0(inputs)
        e1 = self.enc1(F.avg_pool2d(e0, 2))
        e2 = self.enc2(F.avg_pool2d(e1, 2))
        u1 = F.interpolate(e2, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        d1 = self.dec1(torch.cat([u1, e1], dim=1))
        u0 = F.interpolate(d1, size=e0.shape[-2:], mode="bilinear", align_corners=False)
        d0 = self.dec0(torch.cat([u0, e0], dim=1))
        return self.head(d0)

    def coefficients(
        self,
        displacement: Tensor,
        dem: Tensor,
        times_days: Tensor,
        date_var: Optional[Tensor] = None,  # noqa: UP045 (TorchScript)
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Cleaned ramp coefficients ``(B, K, H, W)`` mm, detection logit ``(B, H, W)``,
        log error std of the cumulative (noise units, ``(B, H, W)``), ramps ``(B, T, K)``,
        scale ``(B,)`` mm and pixel mask ``(B, H, W)``."""
        inputs, coefs, scale, ramps, mask = self.features(displacement, dem, times_days, date_var)
        out = self.correction(inputs)
        s4 = scale[:, None, None, None]
        k = self.segments
        cleaned = (coefs / s4 + out[:, :k]) * s4 * mask[:, None]
        return cleaned, out[:, k], out[:, k + 1].clamp(-6.0, 6.0), ramps, scale, mask

    def forward(
        self,
        displacement: Tensor,
        dem: Tensor,
        times_days: Tensor,
        date_var: Optional[Tensor] = None,  # noqa: UP045 (TorchScript)
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(series (B, T, H, W) mm, detection (B, H, W), sigma (B, H, W) mm)``; sigma is the
        predicted error standard deviation of the cumulative map (uncalibrated)."""
        cleaned, logit, log_sigma, ramps, scale, mask = self.coefficients(
            displacement, dem, times_days, date_var
        )
        series = torch.einsum("btk,bkhw->bthw", ramps, cleaned)
        nan = torch.full_like(mask, float("nan"))
        series = torch.where(mask[:, None] > 0, series, nan[:, None])
        sigma = torch.exp(log_sigma) * scale[:, None, None]
        cum = cleaned.sum(dim=1)
        detection = torch.where(mask > 0, exceedance(cum, sigma, self.detect_mm), nan)
        sigma = torch.where(mask > 0, sigma, nan)
        return series, detection, sigma


def exceedance(estimate: Tensor, sigma: Tensor, threshold: float) -> Tensor:
    """P(|truth| > threshold) when truth ~ N(estimate, sigma^2): the detection probability."""
    s = sigma.clamp_min(1e-6) * 2.0**0.5
    upper = 0.5 * torch.erfc((threshold - estimate) / s)
    lower = 0.5 * torch.erfc((threshold + estimate) / s)
    return (upper + lower).clamp(0.0, 1.0)


def receptive_field_px(widths_levels: int = 3) -> int:
    """Receptive field (px, full width) of the U-Net: two 3x3 convs per level at strides
    1, 2, 4 on the way down and 2, 1 on the way up."""
    rf, jump = 1, 1
    for level in range(widths_levels):
        rf += 2 * 2 * jump
        if level < widths_levels - 1:
            rf += jump
            jump *= 2
    for _ in range(widths_levels - 1):
        jump //= 2
        rf += 2 * 2 * jump
    return rf
