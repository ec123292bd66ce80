"""Random draws on a ``torch.Generator``, returned on the compute device.

Everything is drawn on the generator's own device and then moved, so one CPU generator
gives the same examples whether the computation runs on the CPU or on a GPU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def uniform(
    gen: torch.Generator,
    bounds: Sequence[float],
    shape: tuple[int, ...],
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Uniform draws in ``[bounds[0], bounds[1]]`` (``min == max`` gives a constant)."""
    lo, hi = float(bounds[0]), float(bounds[1])
    u = torch.rand(shape, generator=gen, device=gen.device, dtype=torch.float64)
    return (lo + (hi - lo) * u).to(device=device, dtype=dtype)


def log_uniform(
    gen: torch.Generator,
    bounds: Sequence[float],
    shape: tuple[int, ...],
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Log-uniform draws in ``[bounds[0], bounds[1]]`` (both > 0)."""
    log_b = (math.log(float(bounds[0])), math.log(float(bounds[1])))
    return torch.exp(uniform(gen, log_b, shape, device, torch.float64)).to(dtype)


def normal(
    gen: torch.Generator,
    shape: tuple[int, ...],
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal draws."""
    return torch.randn(shape, generator=gen, device=gen.device, dtype=dtype).to(device)


def bernoulli(
    gen: torch.Generator, p: float, shape: tuple[int, ...], device: torch.device | str
) -> torch.Tensor:
    """Boolean draws, True with probability ``p``."""
    return (torch.rand(shape, generator=gen, device=gen.device) < p).to(device)


def categorical(
    gen: torch.Generator, probs: Sequence[float], n: int, device: torch.device | str
) -> torch.Tensor:
    """``n`` int64 codes drawn with the (unnormalised, non-negative) weights ``probs``."""
    w = torch.as_tensor(probs, dtype=torch.float64, device=gen.device)
    return torch.multinomial(w, n, replacement=True, generator=gen).to(device)


def sign(gen: torch.Generator, shape: tuple[int, ...], device: torch.device | str) -> torch.Tensor:
    """Random +1 / -1 (float32)."""
    return bernoulli(gen, 0.5, shape, device).float() * 2.0 - 1.0
