"""Classical (non-learned) estimates of cumulative deformation, for comparison with the model.

Every function takes a displacement stack ``disp`` of shape ``(T, H, W)`` in mm of LOS
(NaN = no data) as a numpy array or a torch tensor and returns the same kind (numpy in,
numpy out; torch in, torch out, on the input's device). Elevations ``dem`` are ``(H, W)`` in
metres, times ``times_days`` are ``(T,)`` in days (any origin). Computation is float64 inside,
results are cast back to the input's floating dtype.

Only torch and numpy are imported here: this module runs where scipy, dask and rasterio are
absent (the GPU training machine).

Methods (``classical_series`` / ``classical_cumulative`` names in brackets):

- ``raw``       last minus first date, no correction.
- ``elevation`` per-date removal of the linear phase-elevation correlation.
- ``filter``    ``elevation`` then a NaN-aware spatial Gaussian filter of each date.
- ``stack``     per-pixel least-squares linear rate times the time span.
- ``best``      ``elevation`` then ``stack`` then the Gaussian filter of the rate map.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

from insar_denoise.methods import CLASSICAL_METHODS

Array = TypeVar("Array", np.ndarray, torch.Tensor)

METHODS = CLASSICAL_METHODS


def _to_torch(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Float64 torch view of ``x`` (a copy for numpy input)."""
    if isinstance(x, torch.Tensor):
        return x.to(torch.float64)
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def _like(result: torch.Tensor, template: np.ndarray | torch.Tensor):
    """Return ``result`` as the same kind (numpy/torch) and float dtype as ``template``."""
    if isinstance(template, torch.Tensor):
        dtype = template.dtype if template.is_floating_point() else torch.float32
        return result.to(device=template.device, dtype=dtype)
    dtype = template.dtype if np.issubdtype(np.asarray(template).dtype, np.floating) else np.float32
    return result.cpu().numpy().astype(dtype, copy=False)


def raw_cumulative(disp: Array, time_axis: int = 0) -> Array:
    """Cumulative displacement, last minus first date (mm), without any correction.

    Parameters
    ----------
    disp : (T, H, W) displacement in mm, NaN = no data (``time_axis``: where T is, e.g. 1
        for a batch ``(B, T, H, W)``).

    Returns
    -------
    (H, W) cumulative displacement in mm.
    """
    # Definition of cumulative displacement (MintPy timeseries convention, relative to date 0)
    d = _to_torch(disp)
    return _like(d.select(time_axis, -1) - d.select(time_axis, 0), disp)


def fit_elevation_correlation(
    disp: np.ndarray | torch.Tensor, dem: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-date least-squares fit ``d_t = a_t + k_t * h`` over the valid pixels.

    Parameters
    ----------
    disp : (T, H, W) displacement in mm, NaN = no data.
    dem : (H, W) elevation in m, NaN = no data.

    Returns
    -------
    a, k : (T,) float64 tensors: offsets in mm and slopes in mm/m. Dates with fewer than two
        valid pixels (or a flat DEM) get ``a`` = the mean and ``k`` = 0.
    """
    # Doin et al. (2009), J. Appl. Geophys. 69, eq. 1; MintPy tropo_phase_elevation
    d = _to_torch(disp)
    h = _to_torch(dem).to(d.device).expand_as(d)
    mask = torch.isfinite(d) & torch.isfinite(h)
    m = mask.to(torch.float64)
    d0 = torch.where(mask, d, 0.0)
    h0 = torch.where(mask, h, 0.0)
    sums = [m.sum((1, 2)), h0.sum((1, 2)), d0.sum((1, 2))]
    sums += [(h0 * h0).sum((1, 2)), (h0 * d0).sum((1, 2))]
    a, k = elevation_coefficients_from_sums(*sums)
    return a, k


def elevation_coefficients_from_sums(
    n: torch.Tensor, sh: torch.Tensor, sd: torch.Tensor, shh: torch.Tensor, shd: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets ``a`` (mm) and slopes ``k`` (mm/m) from per-date sums over valid pixels.

    ``n`` = count, ``sh`` = sum h, ``sd`` = sum d, ``shh`` = sum h^2, ``shd`` = sum h d (all
    ``(T,)``); lets a scene be fitted from block-wise partial sums.
    """
    # Normal equations of the straight-line least-squares fit d = a + k h
    n, sh, sd, shh, shd = (_to_torch(v) for v in (n, sh, sd, shh, shd))
    n_safe = n.clamp(min=1.0)
    var = shh - sh * sh / n_safe
    cov = shd - sh * sd / n_safe
    ok = (n >= 2) & (var > 1e-12 * shh.clamp(min=1e-300))
    k = torch.where(ok, cov / torch.where(ok, var, 1.0), 0.0)
    a = (sd - k * sh) / n_safe
    return a, k


def remove_elevation_correlation(
    disp: Array,
    dem: np.ndarray | torch.Tensor,
    coefficients: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Array:
    """Remove the per-date linear phase-elevation correlation ``a_t + k_t * h``.

    No deforming area is masked out (as MintPy's ``height_correlation`` without mask).

    Parameters
    ----------
    disp : (T, H, W) displacement in mm, NaN = no data (stays NaN).
    dem : (H, W) elevation in m.
    coefficients : optional ``(a, k)`` from :func:`fit_elevation_correlation`, e.g. fitted
        once on a whole scene and applied block by block.

    Returns
    -------
    (T, H, W) corrected displacement in mm.
    """
    # Doin et al. (2009), J. Appl. Geophys. 69, eq. 1 (empirical stratified-delay correction)
    d = _to_torch(disp)
    h = _to_torch(dem).to(d.device)
    a, k = coefficients if coefficients is not None else fit_elevation_correlation(d, h)
    a = a.to(d.device, torch.float64)[:, None, None]
    k = k.to(d.device, torch.float64)[:, None, None]
    return _like(d - a - k * h[None], disp)


def gaussian_kernel(sigma_px: float, truncate: float = 4.0) -> torch.Tensor:
    """Normalised 1-D Gaussian kernel (float64), radius ``int(truncate * sigma + 0.5)`` px."""
    # Same support and normalisation as scipy.ndimage.gaussian_filter1d
    radius = int(truncate * float(sigma_px) + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (x / float(sigma_px)) ** 2)
    return w / w.sum()


def gaussian_filter_nan(image: Array, sigma_px: float, *, keep_nan: bool = True) -> Array:
    """NaN-aware spatial Gaussian filter by normalised convolution.

    ``out = G * (x m) / G * m`` with ``m`` the finite-pixel mask; pixels outside the image
    count as missing, so a constant stays exactly constant up to the borders and holes.

    Parameters
    ----------
    image : (H, W) or (T, H, W) map(s) in any unit, NaN = no data; each 2-D slice is filtered.
    sigma_px : standard deviation of the Gaussian in pixels (0 returns a copy).
    keep_nan : if True (default) pixels that were NaN stay NaN; otherwise they are filled
        from their neighbours where any lie within the kernel.

    Returns
    -------
    Filtered array of the input's shape, kind and dtype.
    """
    # Knutsson & Westin (1993), normalized convolution; spatial filter as MintPy / LiCSBAS step 16
    x = _to_torch(image)
    if float(sigma_px) <= 0:
        return _like(x.clone(), image)
    stack = x.reshape((-1, *x.shape[-2:]))[:, None]
    mask = torch.isfinite(stack)
    m = mask.to(torch.float64)
    v = torch.where(mask, stack, 0.0)
    g = gaussian_kernel(sigma_px).to(x.device)
    r = (g.numel() - 1) // 2
    gy, gx = g.view(1, 1, -1, 1), g.view(1, 1, 1, -1)

    def conv(a: torch.Tensor) -> torch.Tensor:
        a = torch.nn.functional.conv2d(a, gy, padding=(r, 0))
        return torch.nn.functional.conv2d(a, gx, padding=(0, r))

    num, den = conv(v), conv(m)
    out = torch.where(den > 1e-12, num / den.clamp(min=1e-300), torch.nan)
    if keep_nan:
        out = torch.where(mask, out, torch.nan)
    return _like(out.reshape(x.shape), image)


def elevation_filter(disp: Array, dem: np.ndarray | torch.Tensor, sigma_px: float) -> Array:
    """Elevation-correlation removal then the NaN-aware Gaussian filter of each date (mm)."""
    # MintPy tropo_phase_elevation + spatial_filter; LiCSBAS step 16 (spatial part)
    return gaussian_filter_nan(remove_elevation_correlation(disp, dem), sigma_px)


def linear_rate(disp: Array, times_days: np.ndarray | torch.Tensor) -> tuple[Array, Array]:
    """Per-pixel least-squares line ``d(t) = c + r t`` over the finite dates.

    Parameters
    ----------
    disp : (T, H, W) displacement in mm, NaN = no data (a pixel needs two finite dates).
    times_days : (T,) acquisition times in days.

    Returns
    -------
    rate : (H, W) in mm/day; intercept : (H, W) in mm at ``t = times_days[0]``. NaN where
        fewer than two dates are finite.
    """
    # Ordinary least squares per pixel (normal equations), as MintPy timeseries2velocity
    d = _to_torch(disp)
    t = _to_torch(times_days).to(d.device)
    t = (t - t[0])[:, None, None]
    mask = torch.isfinite(d)
    m = mask.to(torch.float64)
    d0 = torch.where(mask, d, 0.0)
    n, st, stt = m.sum(0), (m * t).sum(0), (m * t * t).sum(0)
    sd, std = d0.sum(0), (d0 * t).sum(0)
    det = n * stt - st * st
    ok = (n >= 2) & (det > 1e-12)
    det_safe = torch.where(ok, det, 1.0)
    rate = torch.where(ok, (n * std - st * sd) / det_safe, torch.nan)
    intercept = torch.where(ok, (stt * sd - st * std) / det_safe, torch.nan)
    return _like(rate, disp), _like(intercept, disp)


def linear_rate_stack(disp: Array, times_days: np.ndarray | torch.Tensor) -> Array:
    """Least-squares linear rate per pixel times the time span: a cumulative (H, W) in mm."""
    # Stacking / linear velocity fit (e.g. MintPy timeseries2velocity) times the duration
    rate, _ = linear_rate(disp, times_days)
    t = _to_torch(times_days)
    return _like(_to_torch(rate) * float(t[-1] - t[0]), disp)


def best_classical(
    disp: Array, dem: np.ndarray | torch.Tensor, times_days, sigma_px: float
) -> Array:
    """Elevation removal, linear-rate stack, then Gaussian filter of the cumulative (H, W) mm."""
    # Combination of Doin et al. (2009) correction, rate stacking and spatial filtering
    return classical_cumulative("best", disp, dem, times_days, sigma_px)


def classical_series(
    method: str,
    disp: Array,
    dem: np.ndarray | torch.Tensor | None,
    times_days: np.ndarray | torch.Tensor | None,
    sigma_px: float = 2.0,
    *,
    coefficients: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Array:
    """Denoised displacement series ``(T, H, W)`` in mm relative to the first date.

    Parameters
    ----------
    method : one of ``raw``, ``elevation``, ``filter``, ``stack``, ``best``.
    disp : (T, H, W) displacement in mm.
    dem : (H, W) elevation in m (needed by ``elevation``, ``filter``, ``best``).
    times_days : (T,) times in days (needed by ``stack`` and ``best``).
    sigma_px : Gaussian filter standard deviation in pixels (``filter`` and ``best``).
    coefficients : optional precomputed ``(a, k)`` elevation fit (see
        :func:`fit_elevation_correlation`).

    Returns
    -------
    (T, H, W) series in mm: for ``stack`` and ``best`` the fitted line ``r (t - t_0)`` over
    each pixel's finite dates; otherwise relative to each pixel's first finite date, NaN
    where the input is.
    """
    if method not in METHODS:
        raise ValueError(f"unknown classical method {method!r}; choose one of {METHODS}")
    d = _to_torch(disp)
    if method in ("elevation", "filter", "best"):
        if dem is None:
            raise ValueError(f"method {method!r} needs a DEM")
        d = _to_torch(remove_elevation_correlation(d, dem, coefficients))
    if method in ("stack", "best"):
        if times_days is None:
            raise ValueError(f"method {method!r} needs the acquisition times")
        t = _to_torch(times_days).to(d.device)
        rate, _ = linear_rate(d, t)
        if method == "best":
            rate = gaussian_filter_nan(rate, sigma_px)
        return _like(rate[None] * (t - t[0])[:, None, None], disp)
    if method == "filter":
        d = _to_torch(gaussian_filter_nan(d, sigma_px))
    return _like(d - first_valid(d), disp)


def first_valid(disp: Array) -> Array:
    """``(1, H, W)``: each pixel's value at its first finite date (NaN if it has none)."""
    d = _to_torch(disp)
    first = torch.argmax(torch.isfinite(d).to(torch.uint8), dim=0, keepdim=True)
    return _like(torch.gather(d, 0, first), disp)


def classical_cumulative(
    method: str,
    disp: Array,
    dem: np.ndarray | torch.Tensor | None = None,
    times_days: np.ndarray | torch.Tensor | None = None,
    sigma_px: float = 2.0,
) -> Array:
    """Cumulative deformation ``(H, W)`` in mm (last minus first date) by a classical method.

    See :func:`classical_series` for the parameters; ``method`` is one of
    ``raw|elevation|filter|stack|best``.
    """
    series = _to_torch(classical_series(method, disp, dem, times_days, sigma_px))
    return _like(series[-1] - series[0], disp)


def filter_radius_px(sigma_px: float, truncate: float = 4.0) -> int:
    """Half-width in pixels of the Gaussian kernel used by :func:`gaussian_filter_nan`."""
    return int(math.floor(truncate * float(sigma_px) + 0.5))
