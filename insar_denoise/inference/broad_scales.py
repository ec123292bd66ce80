"""Scene-wide Wiener shrinkage of the broad scales of a whole-stack model's output.

The whole-stack model's network sees each map minus its local (33 px) mean, so it cleans
local structure but passes the broad scales of the temporal projection at gain one: broad
deformation is kept whole, and so is the broad part of the atmosphere that the stack does
not average away. Which of the two dominates is a question of signal-to-noise ratio per
spatial scale, and only the whole scene can answer it. This step estimates both power
spectra from the scene itself and applies the Wiener gain ``G(k) = max(0, 1 - N(k) / D(k))``
(Wiener 1949; the spectral-subtraction form of Boll 1979, IEEE TASSP 27(2)) to the broad
scales only:

- ``D(k)``: radially averaged power spectrum of the model's cumulative map;
- ``N(k)``: the same for noise-only maps with the cumulative's temporal weighting: the
  removed part of every date (input minus denoised series, nearly pure noise) combined with
  the weights ``a_t`` that make the weighted least-squares cumulative (``sum_t a_t d_t``),
  with random signs ``s_t`` (so any leftover signal cancels): ``sum_t s_t a_t r_t``;
- the gain acts on the low-pass part (Gaussian of ``sigma_px``) of every date of the
  series, so that the cumulative map stays the last minus the first date.

Strong broad signals (``D >> N``) pass at gain one; broad atmosphere left by a short or
noisy stack (``D ~ N``) is shrunk towards zero.
"""

from __future__ import annotations

import numpy as np

# the detection map sits with the model's exceedance (reference.py needs it below inference)
from insar_denoise.models.detection import detection_from_base, detection_map  # noqa: F401

#: Gaussian low-pass (px) that defines "broad": about half the model's local-mean window
BROAD_SIGMA_PX = 12.0
#: random-sign noise realisations averaged for N(k)
N_REALISATIONS = 4


def history_basis(times_days: np.ndarray, segments: int) -> np.ndarray:
    """``(T, 1 + segments)``: a constant and ``segments`` piecewise-linear ramps in normalised
    time (NumPy face of :func:`insar_denoise.models.stack_denoiser.ramp_basis`)."""
    t = np.asarray(times_days, dtype=np.float64)
    u = (t - t[0]) / max(t[-1] - t[0], 1e-6)
    k = np.arange(segments)
    return np.c_[np.ones_like(u), np.clip(segments * u[:, None] - k[None, :], 0.0, 1.0)]


def cumulative_weights(
    times_days: np.ndarray, date_var: np.ndarray, segments: int, pinv: bool = False
) -> np.ndarray:
    """Weights ``a (T,)`` with ``sum_t a_t d_t`` = the weighted least-squares cumulative of a
    pixel seen on every date (the model's projection; ``date_var`` in mm^2). ``pinv``: the
    pseudo-inverse of the normal matrix (dates that leave a segment empty: the cumulative is
    still defined, as the model's ridge-regularised fit finds it)."""
    basis = history_basis(times_days, segments)
    w = 1.0 / np.asarray(date_var, dtype=np.float64)
    normal = basis.T @ (w[:, None] * basis)
    sel = np.r_[0.0, np.ones(segments)]
    if pinv:
        return (sel @ np.linalg.pinv(normal) @ basis.T) * w
    return (sel @ np.linalg.solve(normal, basis.T)) * w


def _radial_bins(shape: tuple[int, int], n_bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """Radial frequency (cycles/px) of every rfft2 coefficient and log-spaced bin edges."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    k = np.sqrt(ky**2 + kx**2)
    kmin = 1.0 / max(shape)
    edges = np.r_[0.0, np.geomspace(kmin, 0.71, n_bins)]
    return k, edges


def radial_power(image: np.ndarray, k: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean power per radial bin of a tapered, zero-filled, median-removed image."""
    img = np.where(np.isfinite(image), image - np.nanmedian(image), 0.0)
    taper = np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    spec = np.abs(np.fft.rfft2(img * taper)) ** 2
    idx = np.digitize(k, edges) - 1
    power = np.bincount(idx.ravel(), spec.ravel(), minlength=len(edges))
    count = np.bincount(idx.ravel(), minlength=len(edges))[: len(edges) - 1]
    return np.where(count > 0, power[: len(edges) - 1] / np.maximum(count, 1), np.nan)


def wiener_gain(
    cumulative: np.ndarray,
    removed: np.ndarray,
    weights: np.ndarray,
    seed: int = 0,
    n_params: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gain per radial bin and the bin edges (cycles/px).

    ``cumulative (H, W)`` mm; ``removed (T, H, W)`` mm, input minus denoised series;
    ``weights (T,)`` from :func:`cumulative_weights`; ``n_params``: temporal parameters
    fitted per pixel, whose share ``n_params / T`` of each date's noise the residuals lack
    (their power is scaled back by ``T / (T - n_params)``).
    """
    k, edges = _radial_bins(cumulative.shape)
    data = radial_power(cumulative, k, edges)
    rng = np.random.default_rng(seed)
    r = np.where(np.isfinite(removed), removed, 0.0)
    noise = np.zeros_like(data)
    for _ in range(N_REALISATIONS):
        signs = rng.choice([-1.0, 1.0], size=len(weights))
        noise += radial_power(np.tensordot(signs * weights, r, axes=1), k, edges)
    noise /= N_REALISATIONS
    noise *= len(weights) / max(len(weights) - n_params, 1)
    gain = np.clip(1.0 - noise / np.maximum(data, 1e-30), 0.0, 1.0)
    return gain, edges  # NaN in bins without a frequency


def filter_response(
    shape: tuple[int, int], gain: np.ndarray, edges: np.ndarray, sigma_px: float
) -> np.ndarray:
    """rfft2 multiplier ``1 + (G(k) - 1) L(k)``: the Wiener gain on the Gaussian low-pass."""
    k, _ = _radial_bins(shape)
    centres = np.sqrt(np.maximum(edges[:-1], 1e-12) * edges[1:])
    centres[0] = 0.0
    known = np.isfinite(gain)
    g = np.interp(k, centres[known], gain[known]) if known.any() else np.ones_like(k)
    low = np.exp(-2.0 * (np.pi * sigma_px * k) ** 2)
    return 1.0 + (g - 1.0) * low


def apply_response(image: np.ndarray, response_fn, pad: int) -> np.ndarray:
    """Filter one map (NaN kept) with the multiplier of its reflect-padded shape."""
    ok = np.isfinite(image)
    if not ok.any():
        return image
    base = float(np.median(image[ok]))
    filled = np.where(ok, image - base, 0.0)
    padded = np.pad(filled, pad, mode="reflect")
    out = np.fft.irfft2(np.fft.rfft2(padded) * response_fn(padded.shape), s=padded.shape)
    out = out[pad:-pad, pad:-pad] + base
    return np.where(ok, out, np.nan).astype(np.float32)


def shrink_broad_scales(
    series: np.ndarray,
    removed: np.ndarray,
    times_days: np.ndarray,
    date_var: np.ndarray,
    segments: int,
    sigma_px: float = BROAD_SIGMA_PX,
) -> tuple[np.ndarray, np.ndarray]:
    """Series ``(T, H, W)`` with the Wiener gain on the broad scales, and the gain per bin.

    ``removed``: input minus ``series`` (mm). Scenes smaller than 4 sigma are returned as
    they are (gain 1).
    """
    t, h, w = series.shape
    if min(h, w) < 4 * sigma_px:
        return series, np.ones(1)
    weights = cumulative_weights(times_days, date_var, segments)
    gain, edges = wiener_gain(series[-1] - series[0], removed, weights, n_params=segments + 1)
    pad = int(3 * sigma_px)
    cache: dict[tuple[int, int], np.ndarray] = {}

    def response(shape: tuple[int, int]) -> np.ndarray:
        if shape not in cache:
            cache[shape] = filter_response(shape, gain, edges, sigma_px)
        return cache[shape]

    out = np.stack([apply_response(series[i], response, pad) for i in range(t)])
    return out, gain
