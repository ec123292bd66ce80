"""The shipped model against doing nothing and against the best classical correction.

A fixed held-out set (seed never used in training or validation) of simulated deforming
scenes, 6-20 mm, from the training distribution. The classical correction gets every filter
width and keeps the best one for the truth, so the comparison is generous to it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from insar_denoise.models import load_model
from insar_denoise.models.normalization import deplane

from insar_denoise.baselines import classical_cumulative
from insar_denoise.synth import SimConfig, simulate_batch

SIGMAS_PX = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@pytest.fixture(scope="module")
def held_out():
    cfg = SimConfig(size=64, n_dates=9, amplitude_mm=(6.0, 20.0))
    cfg = SimConfig.from_dict({**cfg.to_dict(), "source_probs": {**cfg.source_probs, "none": 0.0}})
    batch = simulate_batch(cfg, 64, generator=torch.Generator().manual_seed(4242))
    valid = batch.valid & torch.isfinite(batch.displacement).any(1)
    truth = deplane(batch.cumulative.double(), valid)
    model = load_model("default")
    with torch.no_grad():
        pred = model(batch.displacement, batch.dem).double()
    times = torch.arange(9, dtype=torch.float64) * cfg.interval_days
    return batch, valid, truth, deplane(torch.nan_to_num(pred), valid), times


def _rmse(est: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> float:
    return float(torch.sqrt(((est - truth)[valid] ** 2).mean()))


def test_model_beats_zero_and_tuned_classical(held_out):
    batch, valid, truth, pred, times = held_out
    rmse_model = _rmse(pred, truth, valid)
    rmse_zero = _rmse(torch.zeros_like(truth), truth, valid)
    rmse_classical = {}
    for method in ("filter", "best"):
        for sigma in SIGMAS_PX:
            maps = torch.stack(
                [
                    classical_cumulative(
                        method, batch.displacement[i], batch.dem[i], times, sigma
                    ).double()
                    for i in range(batch.displacement.shape[0])
                ]
            )
            est = deplane(torch.nan_to_num(maps), valid)
            rmse_classical[(method, sigma)] = _rmse(est, truth, valid)
    best_classical = min(rmse_classical.values())
    print(f"RMSE model {rmse_model:.3f}, zero {rmse_zero:.3f}, best classical {best_classical:.3f}")
    assert rmse_model < 0.95 * min(rmse_zero, best_classical)


def test_model_correlates_with_the_truth(held_out):
    _, valid, truth, pred, _ = held_out
    corr = []
    for p, t, v in zip(pred, truth, valid, strict=True):
        a, b = p[v] - p[v].mean(), t[v] - t[v].mean()
        corr.append(float((a * b).sum() / torch.sqrt((a * a).sum() * (b * b).sum())))
    print(f"median correlation {np.median(corr):.3f}")
    assert np.median(corr) > 0.5
