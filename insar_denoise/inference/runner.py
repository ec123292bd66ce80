"""The model side of the engine: wrap a model, and denoise one block of a scene.

A block arrives as numpy arrays (its core plus context, see :mod:`.tiling`); it is cut into
tiles, every ``(tile, time window)`` pair goes through the model in batches, the tile outputs
are blended (:mod:`.blending`) and the windows combined into a series (:mod:`.windows`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from insar_denoise.errors import ModelError
from insar_denoise.inference.blending import Mosaic, axis_weights
from insar_denoise.inference.tiling import Block, pad_block, round_up, tile_starts
from insar_denoise.inference.windows import combine_windows

log = logging.getLogger(__name__)

DEFAULT_METADATA: dict[str, Any] = {
    "window": 9,
    "tile_multiple": 8,
    "receptive_field_px": 64,
    "default_tile": 256,
    "default_overlap": 32,
}


@dataclass
class InferenceModel:
    """A model as the engine sees it: a callable and its metadata.

    Attributes
    ----------
    fn : ``fn(displacement (B, N, h, w) mm, dem (B, h, w) m) -> (B, h, w) mm`` torch callable.
    metadata : ``window``, ``tile_multiple``, ``receptive_field_px`` (pixels, full width),
        ``default_tile``, ``default_overlap`` (pixels); missing keys take
        :data:`DEFAULT_METADATA`.
    name : identifier written to the output provenance.
    """

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    name: str = "custom"

    def __post_init__(self) -> None:
        self.metadata = {**DEFAULT_METADATA, **dict(self.metadata)}

    @property
    def window(self) -> int:
        return int(self.metadata["window"])


def prepare_model(model: Any, device: torch.device) -> InferenceModel:
    """Turn ``None`` / a name or path / a loaded model / a module into an :class:`InferenceModel`.

    ``None`` means ``"default"``; strings go through ``insar_denoise.models.load_model``;
    objects with ``.module`` and ``.metadata`` (``LoadedModel``) are used as they are; a bare
    torch module takes its metadata from ``insar_metadata`` or ``metadata`` attributes.
    """
    if isinstance(model, InferenceModel):
        return model
    if model is None or isinstance(model, str | bytes) or hasattr(model, "__fspath__"):
        name = "default" if model is None else str(model)
        try:
            from insar_denoise.models import load_model
        except ImportError as exc:
            raise ModelError(f"cannot load model {name!r}: insar_denoise.models: {exc}") from None
        model = load_model(name, device=str(device))
        return InferenceModel(model.module, model.metadata, _model_id(name, model.metadata))
    if hasattr(model, "module") and hasattr(model, "metadata"):
        module = model.module.to(device) if hasattr(model.module, "to") else model.module
        path = getattr(model, "path", None)
        return InferenceModel(module, model.metadata, _model_id(str(path), model.metadata))
    if callable(model):
        meta = getattr(model, "insar_metadata", None) or getattr(model, "metadata", None) or {}
        if hasattr(model, "to"):
            model = model.to(device)
        return InferenceModel(model, dict(meta), type(model).__name__)
    raise ModelError(f"cannot use {type(model).__name__} as a model")


def _model_id(name: str, metadata: dict[str, Any]) -> str:
    sha = str(metadata.get("sha256", ""))[:12]
    return f"{name} (sha256 {sha})" if sha else name


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


class BlockDenoiser:
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
        model: InferenceModel,
        device: torch.device,
        tile: int,
        overlap: int,
        starts: np.ndarray,
        matrix: np.ndarray,
        batch_size: int,
        progress: Progress,
    ) -> None:
        self.model, self.device = model, device
        self.tile, self.overlap = tile, overlap
        self.starts, self.matrix = np.asarray(starts), matrix
        self.batch_size, self.progress = max(1, int(batch_size)), progress
        self.multiple = int(model.metadata["tile_multiple"])
        self.margin = int(model.metadata["receptive_field_px"]) // 2
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __call__(
        self, disp: np.ndarray, dem: np.ndarray, valid: np.ndarray | None, block: Block
    ) -> np.ndarray:
        disp = np.asarray(disp, dtype=np.float32)
        n_dates = disp.shape[0]
        ok = np.isfinite(disp).all(0)
        if valid is not None:
            ok &= np.asarray(valid, dtype=bool)
        disp = np.where(ok[None], disp, np.float32(np.nan))
        dem = np.asarray(dem, dtype=np.float32)
        dem = np.where(np.isfinite(dem), dem, np.nanmean(dem) if np.isfinite(dem).any() else 0)
        disp = pad_block(disp, block.pad_y, block.pad_x)
        dem = pad_block(dem, block.pad_y, block.pad_x)
        ok = pad_block(ok, block.pad_y, block.pad_x)
        he, we = ok.shape
        th = min(self.tile, round_up(he, self.multiple))
        tw = min(self.tile, round_up(we, self.multiple))
        ys, xs = tile_starts(he, th, self.overlap), tile_starts(we, tw, self.overlap)
        extra = (0, max(0, th - he)), (0, max(0, tw - we))
        disp, dem = pad_block(disp, *extra), pad_block(dem, *extra)
        ok = pad_block(ok, *extra)
        core = block.core_in_extended
        mosaic = Mosaic(len(self.starts), ok.shape)
        todo = []
        for y0 in ys:
            for x0 in xs:
                if ok[y0 : y0 + th, x0 : x0 + tw].any():
                    todo.append((y0, x0))
                else:
                    self.progress.update(1)
        wy = {y0: axis_weights(th, self.overlap, self.margin, y0 > 0, y0 + th < he) for y0 in ys}
        wx = {x0: axis_weights(tw, self.overlap, self.margin, x0 > 0, x0 + tw < we) for x0 in xs}
        items = [(y0, x0, i) for (y0, x0) in todo for i in range(len(self.starts))]
        n = self.model.window
        for b in range(0, len(items), self.batch_size):
            batch = items[b : b + self.batch_size]
            x = np.stack(
                [disp[s : s + n, y0 : y0 + th, x0 : x0 + tw] for y0, x0, s in self._at(batch)]
            )
            x = x - x[:, :1]
            h = np.stack([dem[y0 : y0 + th, x0 : x0 + tw] for y0, x0, _ in batch])
            out = self._run(x, h)
            for (y0, x0, i), o in zip(batch, out, strict=True):
                weight = np.outer(wy[y0], wx[x0]).astype(np.float32)
                mosaic.add(i, np.nan_to_num(o), weight, y0, x0)
                if i == len(self.starts) - 1:
                    mosaic.add_weight(weight, y0, x0)
                    self.progress.update(1)
        windows = mosaic.result()[:, core[0], core[1]]
        series = combine_windows(windows, self.matrix)
        assert series.shape[0] == n_dates
        series[:, ~ok[core]] = np.nan
        return series

    def _at(self, batch: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        return [(y0, x0, int(self.starts[i])) for y0, x0, i in batch]

    def _run(self, x: np.ndarray, dem: np.ndarray) -> np.ndarray:
        """One model call on a batch: ``(B, N, h, w)`` mm and ``(B, h, w)`` m -> ``(B, h, w)``."""
        with self._lock, torch.inference_mode():
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(self.device)
            ht = torch.from_numpy(np.ascontiguousarray(dem)).to(self.device)
            out = self.model.fn(xt, ht)
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(ht.shape):
                shape = getattr(out, "shape", None)
                raise ModelError(f"model returned {shape}, expected {tuple(ht.shape)}")
            return out.detach().float().cpu().numpy()
