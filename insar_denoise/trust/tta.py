"""Test-time copies of a stack: the 8 flips / 90-degree rotations of the grid (times the sign
flip), applied to the inputs and undone on the outputs (:func:`tta_batch`)."""

from __future__ import annotations

import numpy as np
import torch

from insar_denoise.models.registry import LoadedModel

#: the 8 elements of the dihedral group of the square: (number of 90-degree turns, flip)
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))


def augmentations(sign: bool = True, augment: bool = True) -> list[tuple[int, bool, float]]:
    """``(turns, flip, sign)`` of every test-time copy (8 or 16; 1, the identity, without
    ``augment``)."""
    if not augment:
        return [(0, False, 1.0)]
    return [(k, f, s) for s in ((1.0, -1.0) if sign else (1.0,)) for k, f in DIHEDRAL]


def _forward(a: np.ndarray | torch.Tensor, turns: int, flip: bool):
    """Apply a dihedral transform on the last two axes (numpy or torch)."""
    if isinstance(a, torch.Tensor):
        a = torch.flip(a, dims=(-1,)) if flip else a
        return torch.rot90(a, turns, dims=(-2, -1))
    a = a[..., ::-1] if flip else a
    return np.rot90(a, turns, axes=(-2, -1))


def _inverse(a: np.ndarray | torch.Tensor, turns: int, flip: bool):
    if isinstance(a, torch.Tensor):
        a = torch.rot90(a, -turns, dims=(-2, -1))
        return torch.flip(a, dims=(-1,)) if flip else a
    a = np.rot90(a, -turns, axes=(-2, -1))
    return a[..., ::-1] if flip else a


def tta_batch(
    model: LoadedModel,
    displacement: torch.Tensor,
    dem: torch.Tensor,
    sign: bool = True,
    batch: int = 16,
    augment: bool = True,
) -> torch.Tensor:
    """``(K, B, H, W)`` outputs of ``model`` on the test-time copies of a batch of windows."""
    from insar_denoise.inference.predict import predict_in_batches

    outs = []
    for turns, flip, s in augmentations(sign, augment):
        d = _forward(displacement, turns, flip) * s
        z = _forward(dem, turns, flip)
        out = predict_in_batches(model, d.contiguous(), z.contiguous(), batch)
        outs.append(s * _inverse(out, turns, flip))
    return torch.stack(outs)
