"""Full-resolution maps processed in row strips: memory is a strip, whatever the scene.

A map is read as rows ``[lo, hi)`` from any store indexable as ``store[lo:hi]`` (a numpy
``(H, W)`` array, a :class:`MapView` of one map of a ``(C, H, W)`` store such as a
:class:`.disk_stack.DiskStack`). Gaussian filters are computed strip by strip with a halo of
the filter's radius: scipy's separable filter gives every output pixel from the same input
values in the same order, so the strips are bit for bit the whole-map filter. Medians collect
the selected values of every strip in one buffer (4 bytes a pixel for float32 maps) and
partition it in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
from scipy.ndimage import gaussian_filter

#: pixels in a strip's core (rows = this / width): ~16 MB of float32 per strip
STRIP_PX = 4_000_000


class MapView:
    """Map ``index`` of a ``(C, H, W)`` store (numpy array or disk stack), read and written
    by rows: ``view[lo:hi]``, ``view[lo:hi] = rows``."""

    def __init__(self, store, index: int) -> None:
        self.store, self.index = store, int(index)
        self.shape = tuple(store.shape[1:])

    def __getitem__(self, rows: slice) -> np.ndarray:
        return np.asarray(self.store[self.index, rows])

    def __setitem__(self, rows: slice, value: np.ndarray) -> None:
        self.store[self.index, rows] = value


class StackRows:
    """Maps ``start .. start + n - 1`` of a ``(C, H, W)`` store, read as ``[j, rows]``."""

    def __init__(self, store, start: int, n: int) -> None:
        self.store, self.start, self.n = store, int(start), int(n)
        self.shape = (self.n, *tuple(store.shape[1:]))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, key: tuple[int, slice]) -> np.ndarray:
        j, rows = key
        return np.asarray(self.store[self.start + int(j), rows])


def row_strips(height: int, width: int) -> Iterator[tuple[int, int]]:
    """Row ranges ``(a, b)`` covering ``height`` rows, about :data:`STRIP_PX` pixels each."""
    step = max(1, STRIP_PX // max(1, width))
    for a in range(0, height, step):
        yield a, min(height, a + step)


def radius(sigma: float) -> int:
    """Radius (px) of scipy's Gaussian kernel (``truncate=4``, its default)."""
    return int(4.0 * float(sigma) + 0.5)


def apply_filter(image: np.ndarray, sigma: float, kind: str = "smooth") -> np.ndarray:
    """A whole map through a Gaussian filter (``mode="reflect"``): ``smooth`` the Gaussian,
    ``bandpass`` it minus the Gaussian of ``2 sigma``, ``slope_x`` / ``slope_y`` its first
    derivative along columns / rows (Lindeberg 1998, Int. J. Comput. Vision 30(2), eq. 7)."""
    if kind == "smooth":
        return gaussian_filter(image, sigma, mode="reflect")
    if kind == "bandpass":
        wide = gaussian_filter(image, 2.0 * sigma, mode="reflect")
        return gaussian_filter(image, sigma, mode="reflect") - wide
    if kind in ("slope_x", "slope_y"):
        order = (0, 1) if kind == "slope_x" else (1, 0)
        return gaussian_filter(image, sigma, order=order, mode="reflect")
    raise ValueError(f"unknown filter kind {kind!r}")


def filtered_rows(
    read: Callable[[int, int], np.ndarray],
    height: int,
    a: int,
    b: int,
    sigma: float,
    kind: str = "smooth",
) -> np.ndarray:
    """Rows ``[a, b)`` of ``apply_filter(M, sigma, kind)`` of the map ``M`` whose rows
    ``[lo, hi)`` are ``read(lo, hi)`` (exactly the whole-map filter's rows)."""
    halo = radius(2.0 * sigma if kind == "bandpass" else sigma)
    lo, hi = max(0, a - halo), min(height, b + halo)
    return apply_filter(read(lo, hi), sigma, kind)[a - lo : b - lo]


def median(
    read: Callable[[int, int], np.ndarray],
    shape: tuple[int, int],
    select: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.floating | float, np.ndarray]:
    """``np.median`` of the values ``select(rows)`` (default: all) of a map read by rows, and
    the buffer of those values (partitioned: the same values, reordered); NaN if none."""
    h, w = shape
    buf, n = None, 0
    for a, b in row_strips(h, w):
        rows = read(a, b)
        v = rows.ravel() if select is None else select(rows)
        buf = np.empty(h * w, v.dtype) if buf is None else buf
        buf[n : n + v.size] = v
        n += v.size
    buf = buf[:n]
    if n == 0:
        return float("nan"), buf
    return np.median(buf, overwrite_input=True), buf


def finite(rows: np.ndarray) -> np.ndarray:
    """The finite values of ``rows``."""
    return rows[np.isfinite(rows)]


def robust_std(read: Callable[[int, int], np.ndarray], shape: tuple[int, int]) -> float:
    """1.4826 x median absolute deviation of the finite values of a map read by rows."""
    med, v = median(read, shape, finite)
    if v.size == 0:
        return float("nan")
    v -= med
    np.abs(v, out=v)
    return float(1.4826 * np.median(v, overwrite_input=True))
