"""Smooth blending of overlapping tile outputs (a partition of unity).

Each tile output is multiplied by a separable weight ``w(y) w(x)`` and the mosaic is
``sum(w * out) / sum(w)``. Along a side shared with a neighbouring tile, over the ``overlap``
pixels the 1-D weight is

- 0 on the first ``margin`` pixels (where the model sees past the tile edge and its output
  is least trustworthy; the engine uses the receptive-field half-width, at most a quarter
  of the overlap, so that the ramp spans at least half of it: no hard cut between tiles),
- a squared-sine (Hann) ramp over the next ``overlap - 2 margin`` pixels,
- 1 beyond.

Two tiles stepping by ``tile - overlap`` meet with ramps ``sin^2`` and ``cos^2`` of the same
argument, so the weights already sum to one; the division by ``sum(w)`` keeps the mosaic
exact where the last tile of a row overlaps more, and at sides without a neighbour (the
block edge) the weight is 1.
"""

from __future__ import annotations

import numpy as np


def edge_ramp(overlap: int, margin: int = 0) -> np.ndarray:
    """Rising 1-D weight over ``overlap`` pixels: ``margin`` zeros, a Hann ramp, then ones.

    Parameters
    ----------
    overlap : pixels shared by two neighbouring tiles.
    margin : leading pixels of weight 0 (clipped to ``overlap // 2``).

    Returns
    -------
    (overlap,) float64 array with ``ramp + ramp[::-1] == 1``.
    """
    margin = min(int(margin), overlap // 2)
    length = overlap - 2 * margin
    ramp = np.zeros(overlap)
    i = np.arange(length)
    ramp[margin : margin + length] = np.sin(0.5 * np.pi * (i + 0.5) / max(length, 1)) ** 2
    ramp[margin + length :] = 1.0
    return ramp


def axis_weights(
    size: int, overlap: int, margin: int, taper_start: bool, taper_end: bool
) -> np.ndarray:
    """1-D weight of a tile of ``size`` pixels, tapered on the sides that have neighbours."""
    w = np.ones(size)
    n = min(overlap, size)
    ramp = edge_ramp(overlap, margin)[:n]
    if taper_start:
        w[:n] *= ramp
    if taper_end:
        w[size - n :] *= ramp[::-1]
    return w


class Mosaic:
    """Weighted accumulation of tiles of ``channels`` maps onto a ``(channels, H, W)`` grid.

    Parameters
    ----------
    channels : number of maps per tile (e.g. one per time window).
    shape : ``(H, W)`` of the mosaic in pixels.
    """

    def __init__(self, channels: int, shape: tuple[int, int]) -> None:
        self.num = np.zeros((channels, *shape), dtype=np.float32)
        self.den = np.zeros(shape, dtype=np.float32)

    def add(self, channel: int, values: np.ndarray, weight: np.ndarray, y0: int, x0: int) -> None:
        """Add ``values * weight`` (both ``(h, w)``) with its top-left corner at ``(y0, x0)``;
        the parts outside the mosaic are dropped."""
        dst, src = _clip(y0, x0, values.shape, self.den.shape)
        if dst is not None:
            self.num[(channel, *dst)] += values[src] * weight[src]

    def add_weight(self, weight: np.ndarray, y0: int, x0: int) -> None:
        """Add a tile's weight once (it is shared by all channels)."""
        dst, src = _clip(y0, x0, weight.shape, self.den.shape)
        if dst is not None:
            self.den[dst] += weight[src]

    def result(self) -> np.ndarray:
        """Blended ``(channels, H, W)`` maps, NaN where no tile contributed (computed in place:
        call once)."""
        empty = self.den <= 0
        self.den[empty] = 1.0
        self.num /= self.den
        self.num[:, empty] = np.nan
        return self.num


def _clip(y0: int, x0: int, shape: tuple[int, int], bounds: tuple[int, int]):
    """Destination and source slices of a ``shape`` patch at ``(y0, x0)`` inside ``bounds``."""
    ys, ye = max(0, y0), min(bounds[0], y0 + shape[0])
    xs, xe = max(0, x0), min(bounds[1], x0 + shape[1])
    if ye <= ys or xe <= xs:
        return None, None
    dst = (slice(ys, ye), slice(xs, xe))
    src = (slice(ys - y0, ye - y0), slice(xs - x0, xe - x0))
    return dst, src
