"""Test fields shared by the second detector's tests: steep-spectrum turbulence and a bump."""

import numpy as np


def power_law(rng, n: int, size: int, beta: float = 3.5) -> np.ndarray:
    """``n`` fields of ``size²`` px with spectrum ``k^-beta``, unit std."""
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    amp = np.where(k > 0, np.maximum(k, 1.0 / size) ** (-beta / 2.0), 0.0)
    f = np.fft.ifft2(amp * np.fft.fft2(rng.standard_normal((n, size, size)))).real
    return f / f.std(axis=(1, 2), keepdims=True)


def gaussian_bump(size: int, width: float) -> np.ndarray:
    """A unit Gaussian of ``width`` px at the centre of a ``size²`` grid."""
    yy, xx = np.mgrid[:size, :size] - size / 2.0
    return np.exp(-(xx**2 + yy**2) / (2.0 * width**2))
