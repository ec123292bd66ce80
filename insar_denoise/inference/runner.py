"""The model side of the engine: wrap a model, and denoise one block of a scene.

A block arrives as numpy arrays (its core plus context, see :mod:`.tiling`); it is cut into
tiles, every ``(tile, time window)`` pair goes through the model in batches, the tile outputs
are blended (:mod:`.blending`) and the windows combined into a series (:mod:`.windows`).
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import torch

from insar_denoise.errors import ModelError
from insar_denoise.inference.blending import Mosaic, axis_weights
from insar_denoise.inference.tiling import AxisTile, Block, pad_block
from insar_denoise.inference.windows import combine_windows
from insar_denoise.models.registry import LoadedModel, ModelLike, as_model

log = logging.getLogger(__name__)


def prepare_model(model: ModelLike, device: torch.device) -> LoadedModel:
    """The model on ``device`` (:func:`insar_denoise.models.as_model`: loaded only when
    given by name or path; a :class:`LoadedModel` is used as it is)."""
    return as_model(model, device).to(device)


class Progress:
    """Thread-safe tqdm bar opened on the first update (so lazy graphs show it at compute)."""

    def __init__(self, total: int, enabled: bool, desc: str = "denoising") -> None:
        self.total, self.enabled, self.desc = total, enabled, desc
        self._bar = None
        self._lock = threading.Lock()

    def update(self, n: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            if self._bar is None:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=self.total, desc=self.desc, unit="tile")
            self._bar.update(n)
            if self._bar.n >= self.total:
                self._bar.close()

    def __getstate__(self) -> dict:
        return {"total": self.total, "enabled": False, "desc": self.desc}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)


class TiledBlocks:
    """What the block runners of window and whole-stack models share: tile size, overlap,
    blending weights (cached per taper pattern), the tiles of a block that need the model,
    batching, a progress bar and a lock around model calls (picklable for dask)."""

    def __init__(
        self,
        model: LoadedModel,
        device: torch.device,
        tile: int,
        overlap: int,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        self.model, self.device = model, device
        self.tile, self.overlap = tile, overlap
        self.batch_size = max(1, int(batch_size))
        self.progress = progress if progress is not None else Progress(0, False)
        # zero weight on the outer quarter of the overlap (at most the receptive-field
        # half-width): the Hann ramp always spans at least half of it, no hard cut
        self.margin = min(int(model.metadata["receptive_field_px"]) // 2, overlap // 4)
        self._lock = threading.Lock()
        self._weight_cache: dict[tuple, np.ndarray] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def tiles_to_run(self, block: Block, ok: np.ndarray) -> list[tuple[AxisTile, AxisTile]]:
        """Tiles of ``block`` with a valid pixel where they count (in the core); the others
        are counted as done without running the model."""
        cy, cx = block.core_in_extended
        todo = []
        for ty in block.tiles_y:
            for tx in block.tiles_x:
                y0, y1 = max(ty.start, cy.start), min(ty.start + ty.size, cy.stop)
                x0, x1 = max(tx.start, cx.start), min(tx.start + tx.size, cx.stop)
                if y1 > y0 and x1 > x0 and ok[y0:y1, x0:x1].any():
                    todo.append((ty, tx))
                else:  # nothing valid where this tile counts: skip the model
                    self.progress.update(1)
        return todo

    def _weights(self, ty: AxisTile, tx: AxisTile) -> np.ndarray:
        """Blending weight ``(h, w)`` of a tile (cached: few distinct taper patterns)."""
        key = (ty.size, ty.taper_start, ty.taper_end, tx.size, tx.taper_start, tx.taper_end)
        if key not in self._weight_cache:
            wy = axis_weights(ty.size, self.overlap, self.margin, ty.taper_start, ty.taper_end)
            wx = axis_weights(tx.size, self.overlap, self.margin, tx.taper_start, tx.taper_end)
            self._weight_cache[key] = np.outer(wy, wx).astype(np.float32)
        return self._weight_cache[key]


class BlockDenoiser(TiledBlocks):
    """Callable denoising one block: ``(disp, dem, valid, block) -> (T, h, w)`` float32 mm.

    Parameters
    ----------
    model : the wrapped model.
    device : torch device for the model.
    tile, overlap : tile side and overlap between tiles in pixels (multiples of
        ``tile_multiple`` for ``tile``).
    starts : (M,) window starts; ``matrix`` : (T, M) window combination (:mod:`.windows`).
    batch_size : tiles per model call.
    progress : shared progress bar, counted in tiles (all windows of a tile).
    """

    def __init__(
        self,
        model: LoadedModel,
        device: torch.device,
        tile: int,
        overlap: int,
        starts: np.ndarray,
        matrix: np.ndarray,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        super().__init__(model, device, tile, overlap, batch_size, progress)
        self.starts, self.matrix = np.asarray(starts), matrix

    def __call__(
        self, disp: np.ndarray, dem: np.ndarray, valid: np.ndarray | None, block: Block
    ) -> np.ndarray:
        disp = np.array(disp, dtype=np.float32)  # a private copy, modified in place
        ok = np.isfinite(disp).all(0)
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        disp[:, ~ok] = np.nan
        disp = pad_block(disp, block.pad_y, block.pad_x)
        dem = pad_block(np.asarray(dem, dtype=np.float32), block.pad_y, block.pad_x)
        ok = pad_block(ok, block.pad_y, block.pad_x)
        cy, cx = block.core_in_extended
        mosaic = Mosaic(len(self.starts), block.core_shape)
        todo = self.tiles_to_run(block, ok)
        items = [(ty, tx, i) for ty, tx in todo for i in range(len(self.starts))]
        last = len(self.starts) - 1
        for b in range(0, len(items), self.batch_size):
            batch = items[b : b + self.batch_size]
            x = np.stack([disp[self._window(i), _sl(ty), _sl(tx)] for ty, tx, i in batch])
            h = np.stack([_fill_nan(dem[_sl(ty), _sl(tx)]) for ty, tx, _ in batch])
            out = self._run(x - x[:, :1], h)
            for (ty, tx, i), o in zip(batch, out, strict=True):
                weight = self._weights(ty, tx)
                y0, x0 = ty.start - cy.start, tx.start - cx.start
                mosaic.add(i, np.nan_to_num(o), weight, y0, x0)
                if i == last:
                    mosaic.add_weight(weight, y0, x0)
                    self.progress.update(1)
        series = combine_windows(mosaic.result(), self.matrix)
        series[:, ~ok[cy, cx]] = np.nan
        return series

    def _window(self, i: int) -> slice:
        start = int(self.starts[i])
        return slice(start, start + self.model.window)

    def _run(self, x: np.ndarray, dem: np.ndarray) -> np.ndarray:
        """One model call on a batch: ``(B, N, h, w)`` mm and ``(B, h, w)`` m -> ``(B, h, w)``."""
        with self._lock, torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
            ht = torch.from_numpy(np.ascontiguousarray(dem)).to(self.device)
            out = self.model.module(xt, ht)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(ht.shape):
                shape = getattr(out, "shape", None)
                raise ModelError(f"model returned {shape}, expected {tuple(ht.shape)}")
            return out.detach().float().cpu().numpy()


def _sl(t: AxisTile) -> slice:
    return slice(t.start, t.start + t.size)


def _fill_nan(dem: np.ndarray) -> np.ndarray:
    """DEM tile with NaN replaced by the tile's mean elevation (0 m if none is known)."""
    bad = ~np.isfinite(dem)
    if not bad.any():
        return dem
    good = dem[~bad]
    return np.where(bad, good.mean() if good.size else 0.0, dem).astype(np.float32)
