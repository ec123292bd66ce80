"""Spatial blocks and tiles: pure index arithmetic, no arrays of data and no model.

Two levels cut a scene of ``H x W`` pixels:

- **tiles** (one model input each) lie on one *global* grid: along each axis they start
  at ``-pad + g (tile - overlap)``, ``g = 0, 1, ...``, until the scene plus ``pad`` pixels is
  covered (``pad`` = the overlap, so the first tile's untrustworthy edge falls outside the
  scene, in reflected data). Their outputs are blended (:mod:`.blending`).
- **blocks** (one dask task each): a *core* of at most ``chunk x chunk`` scene pixels. A
  block computes every tile of the global grid whose non-zero blending weight reaches its
  core, reads the region those tiles span (reflecting the scene at its edges) and returns
  its core. Because the grid is global, each core pixel gets exactly the same blend of tiles
  as in one whole-scene mosaic: the result does not depend on ``chunk`` and block borders
  leave no seam, whatever the model does inside a tile (e.g. per-tile normalisation).

:func:`iter_blocks` (a fixed ``depth`` of context, for the classical filters) uses the
same :class:`Block` without tiles.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AxisTile:
    """One tile along one axis: ``start`` (pixels, in the padded block), ``size`` (pixels),
    and whether it has a neighbour before / after it on the global grid (tapered sides)."""

    start: int
    size: int
    taper_start: bool
    taper_end: bool


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
    tiles_y, tiles_x : the tiles along each axis, with starts relative to the padded block.
    """

    core_y: tuple[int, int]
    core_x: tuple[int, int]
    read_y: tuple[int, int]
    read_x: tuple[int, int]
    pad_y: tuple[int, int]
    pad_x: tuple[int, int]
    tiles_y: tuple[AxisTile, ...] = ()
    tiles_x: tuple[AxisTile, ...] = ()

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


def grid_starts(length: int, tile: int, overlap: int, pad: int) -> list[int]:
    """Global tile starts along an axis of ``length`` pixels (scene coordinates, may be < 0).

    Tiles of ``tile`` pixels step by ``tile - overlap`` from ``-pad`` until ``length + pad``
    is covered.
    """
    if overlap >= tile:
        raise ValueError(f"overlap ({overlap} px) must be smaller than the tile ({tile} px)")
    step = tile - overlap
    count = 1 + max(0, -(-(length + 2 * pad - tile) // step))
    return [-pad + g * step for g in range(count)]


def _axis_plan(
    core: tuple[int, int], length: int, starts: list[int], tile: int, margin: int
) -> tuple[tuple[int, int], tuple[int, int], tuple[AxisTile, ...]]:
    """Read range, pads and tiles of a block core along one axis."""
    last = len(starts) - 1
    used = []
    for g, s in enumerate(starts):
        lo = s + (margin if g > 0 else 0)
        hi = s + tile - (margin if g < last else 0)
        if lo < core[1] and hi > core[0]:
            used.append((g, s))
    ext = (used[0][1], used[-1][1] + tile)
    read = (max(0, ext[0]), min(length, ext[1]))
    pad = (read[0] - ext[0], ext[1] - read[1])
    tiles = tuple(AxisTile(s - ext[0], tile, g > 0, g < last) for g, s in used)
    return read, pad, tiles


def iter_tiled_blocks(
    shape: tuple[int, int],
    chunk: int,
    tile: tuple[int, int],
    overlap: int,
    margin: int,
    pad: int | None = None,
) -> Iterator[list[Block]]:
    """Yield blocks (a list per block row) with their tiles on the global tile grid.

    Parameters
    ----------
    shape : scene ``(H, W)`` in pixels.
    chunk : block core side in pixels.
    tile : tile ``(rows, cols)`` in pixels.
    overlap : pixels shared by neighbouring tiles.
    margin : pixels of zero blending weight at tapered tile sides (clipped to
        ``overlap // 2``, as in :func:`insar_denoise.inference.blending.edge_ramp`).
    pad : reflected context beyond the scene edges (default: ``overlap``).
    """
    pad = overlap if pad is None else int(pad)
    margin = min(int(margin), overlap // 2)
    h, w = shape
    sy = grid_starts(h, tile[0], overlap, pad)
    sx = grid_starts(w, tile[1], overlap, pad)
    xs = [(c, _axis_plan(c, w, sx, tile[1], margin)) for c in axis_chunks(w, chunk)]
    for cy in axis_chunks(h, chunk):
        ry, py, ty = _axis_plan(cy, h, sy, tile[0], margin)
        yield [Block(cy, cx, ry, rx, py, px, ty, tx) for cx, (rx, px, tx) in xs]


def count_tiles(blocks: list[list[Block]]) -> int:
    """Number of model tiles over all blocks (for progress bars)."""
    return sum(len(b.tiles_y) * len(b.tiles_x) for row in blocks for b in row)
