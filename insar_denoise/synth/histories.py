"""Normalised time histories of deformation: 0 at the first date, 1 at the last.

Codes follow :data:`insar_denoise.synth.config.HISTORY_NAMES`: ``none`` (all zero),
``step`` (an earthquake between two dates), ``linear`` (steady creep) and ``transient``
(slow slip: a smooth tanh ramp centred at a random time with a random duration).
"""

from __future__ import annotations

import torch

from insar_denoise.synth import sampling

NONE, STEP, LINEAR, TRANSIENT = 0, 1, 2, 3


def sample_histories(
    gen: torch.Generator,
    kind: torch.Tensor,
    times_days: torch.Tensor,
    *,
    duration_frac: tuple[float, float],
    device: torch.device | str,
) -> torch.Tensor:
    """Histories ``(B, T)`` float32 with ``h[:, 0] = 0`` and ``h[:, -1] = 1`` (0 for ``none``).

    Parameters
    ----------
    gen : torch.Generator
        Source of randomness.
    kind : Tensor
        ``(B,)`` int history codes.
    times_days : Tensor
        ``(T,)`` acquisition times (days), increasing.
    duration_frac : (float, float)
        Range of the transient's duration (the 10-90 % rise time is about this share of the
        window).
    device : str or torch.device
        Compute device.
    """
    b = kind.shape[0]
    t = times_days.to(device=device, dtype=torch.float32)
    t0, t1 = t[0], t[-1]
    span = t1 - t0
    tn = ((t - t0) / span)[None, :]
    # step: the event falls uniformly in (t0, t1]; dates at or after it have moved
    t_step = sampling.uniform(gen, (0.0, 1.0), (b, 1), device)
    step = (tn >= t_step).float()
    step[:, -1] = 1.0
    linear = tn.expand(b, -1)
    # transient: 0.5 (1 + tanh((t - c) / tau)), renormalised to 0 at t0 and 1 at t1
    centre = sampling.uniform(gen, (0.0, 1.0), (b, 1), device)
    tau = sampling.uniform(gen, duration_frac, (b, 1), device).clamp_min(1e-3) / 2.2
    s = torch.tanh((tn - centre) / tau)
    trans = (s - s[:, :1]) / (s[:, -1:] - s[:, :1]).clamp_min(1e-6)
    k = kind.to(device)[:, None]
    out = torch.zeros((b, t.shape[0]), device=device)
    out = torch.where(k == STEP, step, out)
    out = torch.where(k == LINEAR, linear, out)
    return torch.where(k == TRANSIENT, trans, out)
