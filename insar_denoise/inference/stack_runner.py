"""The engine side of whole-stack models (metadata ``kind: "stack"``): one block at a time.

A whole-stack model sees every date of a tile at once (``(B, T, h, w)`` mm with NaN gaps,
``(B, h, w)`` m, ``(B, T)`` days) and returns the denoised series and a detection map. A
block is cut into tiles, the tiles run in batches, and their outputs are blended with the
same weights as window models (:mod:`.blending`), each tile's series first shifted by one
constant per date onto the tiles already blended (:func:`align_offsets`: the model's series
is defined up to such a constant, a different one per tile). Blocks are then brought onto
one another through the tiles they share (:func:`block_constants`, :func:`assemble_aligned`).
The block result stacks ``T`` series maps (gaps bridged: the engine puts NaN back at
missing dates), the
cumulative map (last minus first date of the model's series, defined on every pixel the
model keeps), the detection map and the model's predicted error std of the cumulative map
(mm, uncalibrated).
"""

from __future__ import annotations

import numpy as np
import torch

from insar_denoise.errors import ConfigError, ModelError
from insar_denoise.inference.blending import Mosaic, _clip
from insar_denoise.inference.planning import read_window
from insar_denoise.inference.runner import (
    Progress,
    TiledBlocks,
    _fill_nan,
    _sl,
)
from insar_denoise.inference.tiling import Block, pad_block
from insar_denoise.models.registry import LoadedModel


def scene_date_variances(disp, crop: int, samples: int = 16) -> np.ndarray:
    """Per-date noise variances ``(T,)`` mm^2 of a whole scene, as the model sees a crop.

    The model weighs dates by their noise; every tile must use the same weights, or tiles
    disagree on the level of each pixel. The variance is the median over up to ``samples``
    crops of ``crop`` px on a regular grid of the model's own per-crop estimate
    (:func:`insar_denoise.models.stack_denoiser.date_variances`), so it matches training.
    ``disp`` is a ``(T, H, W)`` numpy or dask array (only the crops are read).
    """
    from insar_denoise.models.stack_denoiser import date_variances

    _, h, w = disp.shape
    cy, cx = min(crop, h), min(crop, w)
    n = max(1, int(np.sqrt(samples)))
    ys = np.linspace(0, h - cy, n).astype(int)
    xs = np.linspace(0, w - cx, n).astype(int)
    crops = [disp[:, y : y + cy, x : x + cx] for y in np.unique(ys) for x in np.unique(xs)]
    # one crop at a time, by dates: computing all at once would hold every chunk they touch
    crops = [read_window(c) for c in crops]
    stack = np.stack([np.asarray(c, dtype=np.float32) for c in crops])
    good = np.isfinite(stack).mean(axis=(1, 2, 3)) > 0.5
    stack = stack[good] if good.any() else stack
    var = date_variances(torch.from_numpy(stack)).numpy()
    return np.median(var, axis=0).astype(np.float32)


def min_dates(model: LoadedModel) -> int:
    """Fewest valid dates a pixel needs for the model (its basis size plus one)."""
    return int(model.metadata.get("min_valid_dates", 6))


def check_stack_options(window: int | None, stride: int) -> None:
    """A whole-stack model has no window: ``window=`` and ``stride=`` (other than 1) are
    refused (``ConfigError`` naming the option) rather than silently ignored."""
    if window is not None:
        raise ConfigError(
            f"window={window}: this model sees the whole stack at once (no time window); "
            "leave window= out"
        )
    if int(stride) != 1:
        raise ConfigError(
            f"stride={stride}: this model sees the whole stack at once (no windows to "
            "stride over); leave stride= out"
        )


def align_offsets(
    mosaic: Mosaic, series: np.ndarray, weight: np.ndarray, y0: int, x0: int
) -> np.ndarray:
    """Per-date constants (mm) that bring a tile's series onto the mosaic so far.

    A whole-stack model's series is defined up to a constant per date, and each tile gets its
    own: blended as they are, tiles would meet in steps. The constant is the mean difference
    between the blended mosaic and the tile where both have weight; 0 where they share no
    pixel (the first tile anchors the block).
    """
    n_dates = series.shape[0]
    dst, src = _clip(y0, x0, weight.shape, mosaic.den.shape)
    if dst is None:
        return np.zeros(n_dates, np.float32)
    den = mosaic.den[dst]
    both = (den > 0) & (weight[src] > 0)
    tile = series[(slice(None), *src)]
    both &= np.isfinite(tile).all(0)
    if not both.any():
        return np.zeros(n_dates, np.float32)
    blended = mosaic.num[(slice(n_dates), *dst)][:, both] / den[both]
    return np.mean(blended - tile[:, both], axis=1).astype(np.float32)


class StackBlockDenoiser(TiledBlocks):
    """Callable ``(disp, dem, valid, block) -> (T + 3, h, w)`` float32 for a stack model:
    the series (on every date, gaps bridged), the cumulative map, the detection map and the
    predicted error std (mm); NaN on pixels not kept."""

    def __init__(
        self,
        model: LoadedModel,
        device: torch.device,
        tile: int,
        overlap: int,
        times_days: np.ndarray,
        batch_size: int,
        progress: Progress | None,
        min_valid_dates: int | None = None,
        date_var: np.ndarray | None = None,
    ) -> None:
        super().__init__(model, device, tile, overlap, batch_size, progress)
        self.times = np.asarray(times_days, dtype=np.float32)
        self.min_valid = max(min_dates(model), int(min_valid_dates or 0))
        self.date_var = None if date_var is None else np.asarray(date_var, dtype=np.float32)

    def __call__(
        self, disp: np.ndarray, dem: np.ndarray, valid: np.ndarray | None, block: Block
    ) -> np.ndarray:
        return self.run(disp, dem, valid, block)[0]

    def run(
        self,
        disp: np.ndarray,
        dem: np.ndarray,
        valid: np.ndarray | None,
        block: Block,
        reuse: bool = False,
    ) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
        """The block result and the per-date constant added to each tile, keyed by the
        tile's top-left corner in scene pixels (for :func:`block_constants`). ``reuse``:
        ``disp`` is a float32 array the caller gives up (NaN is written into it instead of
        a copy: one block of input less in memory)."""
        disp = np.asarray(disp, dtype=np.float32) if reuse else np.array(disp, np.float32)
        present = np.isfinite(disp)
        ok = present.sum(0) >= self.min_valid
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        disp[:, ~ok] = np.nan
        disp = pad_block(disp, block.pad_y, block.pad_x)
        dem = pad_block(np.asarray(dem, dtype=np.float32), block.pad_y, block.pad_x)
        ok = pad_block(ok, block.pad_y, block.pad_x)
        present = pad_block(present, block.pad_y, block.pad_x)
        cy, cx = block.core_in_extended
        n_dates = disp.shape[0]
        mosaic = Mosaic(n_dates + 2, block.core_shape)
        gy, gx = block.read_y[0] - block.pad_y[0], block.read_x[0] - block.pad_x[0]
        applied: dict[tuple[int, int], np.ndarray] = {}
        todo = self.tiles_to_run(block, ok)
        for b in range(0, len(todo), self.batch_size):
            batch = todo[b : b + self.batch_size]
            x = np.stack([disp[:, _sl(ty), _sl(tx)] for ty, tx in batch])
            h = np.stack([_fill_nan(dem[_sl(ty), _sl(tx)]) for ty, tx in batch])
            series, detection, sigma = self._run(x, h)
            for (ty, tx), s, p, e in zip(batch, series, detection, sigma, strict=True):
                weight = self._weights(ty, tx)
                y0, x0 = ty.start - cy.start, tx.start - cx.start
                shift = align_offsets(mosaic, s, weight, y0, x0)
                applied[(gy + ty.start, gx + tx.start)] = shift
                s = s + shift[:, None, None]
                for i in range(n_dates):
                    mosaic.add(i, np.nan_to_num(s[i]), weight, y0, x0)
                mosaic.add(n_dates, np.nan_to_num(p), weight, y0, x0)
                mosaic.add(n_dates + 1, np.nan_to_num(e), weight, y0, x0)
                mosaic.add_weight(weight, y0, x0)
                self.progress.update(1)
        out = mosaic.result()
        series = out[:n_dates]
        keep = ok[cy, cx]
        cumulative = series[-1] - series[0]
        result = np.concatenate([series, cumulative[None], out[n_dates:]], axis=0)
        result[:, ~keep] = np.nan
        return result.astype(np.float32), applied

    def _run(self, x: np.ndarray, dem: np.ndarray) -> tuple[np.ndarray, ...]:
        """One model call: ``(B, T, h, w)`` mm, ``(B, h, w)`` m -> series, detection, sigma."""
        with self._lock, torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
            ht = torch.from_numpy(np.ascontiguousarray(dem)).to(self.device)
            tt = torch.from_numpy(np.ascontiguousarray(self.times)).to(self.device)
            tb = tt[None].expand(xt.shape[0], -1).contiguous()
            if self.date_var is None:
                out = self.model.module(xt, ht, tb)
            else:
                var = torch.from_numpy(self.date_var).to(self.device)
                out = self.model.module(xt, ht, tb, var[None].expand(xt.shape[0], -1).contiguous())
            if not isinstance(out, tuple | list) or len(out) != 3:
                raise ModelError("a stack model must return (series, detection, sigma)")
            series, detection, sigma = out
            maps = (tuple(detection.shape), tuple(sigma.shape))
            if tuple(series.shape) != tuple(xt.shape) or maps != (tuple(ht.shape),) * 2:
                raise ModelError(
                    f"stack model returned {tuple(series.shape)}, {maps[0]} and {maps[1]}, "
                    f"expected {tuple(xt.shape)} and twice {tuple(ht.shape)}"
                )
            return tuple(o.float().cpu().numpy() for o in (series, detection, sigma))


def block_constants(applied: list[dict[tuple[int, int], np.ndarray]], n_dates: int) -> np.ndarray:
    """Per-block, per-date constants (mm) that put every block on the first one.

    A tile straddling a block border is run by both blocks on the same data, so it gives the
    same series there, shifted by ``applied[a][t]`` in block ``a`` and ``applied[b][t]`` in
    ``b``: the two blocks' constants differ by the difference of these shifts. The constants
    are the least-squares solution of these equations over every shared tile, with the first
    block fixed at 0 (blocks sharing no tile with the others keep 0).

    Returns
    -------
    (n_blocks, n_dates) float64, to be subtracted from each block's series.
    """
    n = len(applied)
    owners: dict[tuple[int, int], list[int]] = {}
    for k, tiles in enumerate(applied):
        for tile in tiles:
            owners.setdefault(tile, []).append(k)
    rows, rhs = [np.eye(1, n, 0)[0]], [np.zeros(n_dates)]
    for tile, ks in owners.items():
        for a, b in zip(ks[:-1], ks[1:], strict=True):
            row = np.zeros(n)
            row[a], row[b] = 1.0, -1.0
            rows.append(row)
            rhs.append(np.asarray(applied[a][tile], np.float64) - applied[b][tile])
    if len(rows) == 1:
        return np.zeros((n, n_dates))
    design, values = np.stack(rows), np.stack(rhs)
    linked = np.abs(design).sum(0) > 0
    out = np.zeros((n, n_dates))
    out[linked] = np.linalg.lstsq(design[:, linked], values, rcond=None)[0]
    return out


def shift_block(result: np.ndarray, constants: np.ndarray, index: int) -> np.ndarray:
    """A block result ``(T + 3, h, w)`` with its series moved by ``-constants[index]`` and its
    cumulative map by the matching last-minus-first change."""
    c = np.asarray(constants[index], np.float32)
    if not c.any():
        return result
    n_dates = c.size
    out = result.copy()
    out[:n_dates] -= c[:, None, None]
    out[n_dates] -= c[-1] - c[0]
    return out


def assemble_aligned(fn: StackBlockDenoiser, disp, dem, valid, blocks: list[list[Block]]):
    """The lazy mosaic ``(T + 3, H, W)`` of every block of a stack model, the blocks brought
    onto one another (:func:`block_constants`). Every block is computed before any part of
    the result can be: the whole result is held in memory while it is computed."""
    import dask
    import dask.array as da

    n_dates = disp.shape[0]
    runs, shapes = [], []
    for row in blocks:
        for b in row:
            sy, sx = slice(*b.read_y), slice(*b.read_x)
            part = None if valid is None else valid[sy, sx]
            runs.append(
                dask.delayed(fn.run, pure=False, nout=2)(disp[:, sy, sx], dem[sy, sx], part, b)
            )
            shapes.append(b.core_shape)
    constants = dask.delayed(block_constants)([r[1] for r in runs], n_dates)
    parts = [
        da.from_delayed(
            dask.delayed(shift_block)(r[0], constants, k),
            shape=(n_dates + 3, *shape),
            dtype=np.float32,
        )
        for k, (r, shape) in enumerate(zip(runs, shapes, strict=True))
    ]
    width = len(blocks[0])
    return da.block([parts[i : i + width] for i in range(0, len(parts), width)])
