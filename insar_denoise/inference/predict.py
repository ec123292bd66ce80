"""Run a window model over a batch of examples in chunks (benchmark and calibration scenes)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def predict_in_batches(
    predict: Callable[[Tensor, Tensor], Tensor],
    displacement: Tensor,
    dem: Tensor,
    batch: int,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Run ``predict`` over the first axis in chunks, returning CPU float32 ``(B, H, W)``."""
    outs = []
    with torch.no_grad():
        for i in range(0, displacement.shape[0], batch):
            d = displacement[i : i + batch].to(device)
            z = dem[i : i + batch].to(device)
            outs.append(predict(d, z).float().cpu())
    return torch.cat(outs)
