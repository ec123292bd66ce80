"""Spatial blocks and tiles: pure index arithmetic, no arrays of data and no model.

Two levels cut a scene of ``H x W`` pixels:

- **blocks** (one dask task each): a *core* of at most ``chunk x chunk`` pixels plus a
  *context* of ``depth`` pixels on every side. The block function sees the extended region
  and returns the core only, so outputs of neighbouring blocks never need blending; at the
  scene edges the missing context is filled by reflection (or NaN, see :func:`pad_block`).
- **tiles** (one model input each): inside an extended block, windows of ``tile`` pixels
  that step by ``tile - overlap`` pixels; the last tile of a row/column is aligned to the end,
  so every pixel is covered. Their outputs are blended (:mod:`.blending`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Block:
    """One block of a scene (all indices in scene pixels, end-exclusive).

    Attributes
    ----------
    core_y, core_x : ``(start, stop)`` of the pixels this block outputs.
    read_y, read_x : ``(start, stop)`` of the pixels to read (core plus context, clipped to
        the scene).
    pad_y, pad_x : ``(before, after)`` pixels of context missing at scene edges, to be added
        by :func:`pad_block`.
    """

    core_y: tuple[int, int]
    core_x: tuple[int, int]
    read_y: tuple[int, int]
    read_x: tuple[int, int]
    pad_y: tuple[int, int]
    pad_x: tuple[int, int]

    @property
    def core_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the core."""
        return self.core_y[1] - self.core_y[0], self.core_x[1] - self.core_x[0]

    @property
    def core_in_extended(self) -> tuple[slice, slice]:
        """Slices of the core inside the padded, extended block."""
        oy = self.core_y[0] - self.read_y[0] + self.pad_y[0]
        ox = self.core_x[0] - self.read_x[0] + self.pad_x[0]
        h, w = self.core_shape
        return slice(oy, oy + h), slice(ox, ox + w)


def axis_chunks(length: int, chunk: int) -> list[tuple[int, int]]:
    """Split ``[0, length)`` into consecutive ``(start, stop)`` pieces of at most ``chunk``."""
    if length < 1 or chunk < 1:
        raise ValueError(f"length and chunk must be positive, got {length}, {chunk}")
    return [(s, min(s + chunk, length)) for s in range(0, length, chunk)]


def iter_blocks(shape: tuple[int, int], chunk: int, depth: int) -> Iterator[list[Block]]:
    """Yield the blocks of a ``shape = (H, W)`` scene row by row (a list per block row).

    Parameters
    ----------
    shape : scene size in pixels ``(H, W)``.
    chunk : core side in pixels.
    depth : context on each side in pixels (>= the model's receptive-field half-width).
    """
    h, w = shape
    xs = axis_chunks(w, chunk)
    for y0, y1 in axis_chunks(h, chunk):
        row = []
        for x0, x1 in xs:
            ry = (max(0, y0 - depth), min(h, y1 + depth))
            rx = (max(0, x0 - depth), min(w, x1 + depth))
            pad_y = (ry[0] - (y0 - depth), (y1 + depth) - ry[1])
            pad_x = (rx[0] - (x0 - depth), (x1 + depth) - rx[1])
            row.append(Block((y0, y1), (x0, x1), ry, rx, pad_y, pad_x))
        yield row


def pad_block(
    array: np.ndarray, pad_y: tuple[int, int], pad_x: tuple[int, int], mode: str = "reflect"
) -> np.ndarray:
    """Pad the last two axes of ``array``: ``mode`` is ``"reflect"`` (mirror without repeating
    the edge pixel, any width) or ``"nan"`` (missing data)."""
    if not any(pad_y) and not any(pad_x):
        return array
    widths = [(0, 0)] * (array.ndim - 2) + [tuple(pad_y), tuple(pad_x)]
    if mode == "nan":
        return np.pad(array, widths, mode="constant", constant_values=np.nan)
    if mode != "reflect":
        raise ValueError(f"unknown pad mode {mode!r}")
    if min(array.shape[-2:]) < 2:
        return np.pad(array, widths, mode="edge")
    return np.pad(array, widths, mode="reflect")


def round_up(n: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``n``."""
    return -(-int(n) // int(multiple)) * int(multiple)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of side ``tile`` stepping by ``tile - overlap`` over ``[0, length)``.

    The last tile ends exactly at ``length`` (its overlap with the previous one may be
    larger). ``length <= tile`` gives one tile at 0 (the caller pads to the tile side).
    """
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap} px) must be smaller than the tile ({tile} px)")
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile + 1, step))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def count_tiles(shape: tuple[int, int], chunk: int, depth: int, tile: int, overlap: int) -> int:
    """Number of model tiles over all blocks of a scene (for progress bars)."""
    total = 0
    for row in iter_blocks(shape, chunk, depth):
        for b in row:
            he = b.core_shape[0] + 2 * depth
            we = b.core_shape[1] + 2 * depth
            total += len(tile_starts(he, tile, overlap)) * len(tile_starts(we, tile, overlap))
    return total
