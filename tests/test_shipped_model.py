"""The shipped models on held-out simulated scenes (seeds never used in training or validation).

The whole-stack default (``default``) runs through the engine (``denoise_dataset``: tiling,
blending) on 96 px scenes of 18 and 36 dates drawn from its training distribution
(:meth:`insar_denoise.training.stack.StackTrainConfig.sim_config`); its outputs are defined
up to a constant, so every map is compared with its median removed. The thresholds are
properties any reasonably trained model of this architecture meets, not this snapshot's
scores. The packaged window model (``window_v1``) keeps its own checks: against doing nothing
and the best classical correction, de-planed as it was trained.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from insar_denoise.baselines import classical_cumulative
from insar_denoise.inference import denoise_dataset
from insar_denoise.io.scene import scene_dataset
from insar_denoise.models import load_model
from insar_denoise.models.normalization import deplane
from insar_denoise.synth import SimConfig, simulate_batch, simulate_scene
from insar_denoise.training.stack import StackTrainConfig

SIGMAS_PX = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
SEED = 50_000_000
#: (source, max |LOS| of the cumulative truth in mm, turbulence std range in mm, dates);
#: the first four are the strong-signal scenes (>= 30 mm under <= 4 mm of turbulence)
DESIGN = (
    ("okada", 30.0, (1.0, 4.0), 18),
    ("mogi", 40.0, (1.0, 4.0), 36),
    ("okada", 50.0, (1.0, 4.0), 36),
    ("mogi", 60.0, (1.0, 4.0), 18),
    ("okada", 10.0, (2.0, 8.0), 36),
    ("mogi", 15.0, (2.0, 8.0), 18),
    ("bowl", 20.0, (2.0, 8.0), 36),
    ("okada", 25.0, (2.0, 8.0), 18),
)
STRONG_MM, CALM_MM = 30.0, 4.0


@pytest.fixture(scope="module")
def stack_scenes():
    """Per scene: strong?, truth, model, raw cumulative (mm, finite pixels) and detection."""
    model = load_model("default")
    rows = []
    for i, (source, amp, turbulence, n_dates) in enumerate(DESIGN):
        cfg = StackTrainConfig().sim_config(n_dates, irregular=False)
        cfg = dataclasses.replace(cfg, size=96, turbulence_std_mm=turbulence)
        scene = simulate_scene(cfg, SEED + i, source=source, amplitude_mm=amp)
        out = denoise_dataset(
            scene_dataset(scene)[["displacement", "dem"]],
            model,
            progress=False,
            return_noise=False,
        )
        est = out["cumulative_deformation"].values.astype(np.float64)
        truth = scene["cumulative"].astype(np.float64)
        raw = (scene["displacement"][-1] - scene["displacement"][0]).astype(np.float64)
        ok = np.isfinite(est) & np.isfinite(truth) & np.isfinite(raw)
        assert ok.mean() > 0.5  # decorrelation holes are NaN
        strong = amp >= STRONG_MM and turbulence[1] <= CALM_MM
        rows.append((strong, truth[ok], est[ok], raw[ok], out["detection"].values[ok]))
    return rows


def _centred(a: np.ndarray) -> np.ndarray:
    return a - np.median(a)


def _rmse(est: np.ndarray, truth: np.ndarray) -> float:
    """RMSE up to a constant: both maps with their median removed."""
    return float(np.sqrt(np.mean((_centred(est) - _centred(truth)) ** 2)))


def test_default_beats_zero_and_raw(stack_scenes):
    """Median RMSE over the scenes below the map of zeros' and the raw cumulative's."""
    rmse = np.array(
        [[_rmse(e, t), _rmse(np.zeros_like(t), t), _rmse(r, t)] for _, t, e, r, _ in stack_scenes]
    )
    model, zero, raw = np.median(rmse, axis=0)
    print(f"median RMSE model {model:.2f}, zero {zero:.2f}, raw {raw:.2f} mm")
    assert model < zero and model < raw


def test_default_keeps_strong_signals_at_full_gain(stack_scenes):
    """Strong scenes (pixels pooled): least-squares slope of output on truth in 0.8-1.2,
    correlation >= 0.8."""
    pairs = [(_centred(t), _centred(e)) for strong, t, e, _, _ in stack_scenes if strong]
    assert len(pairs) >= 3
    truth = np.concatenate([t for t, _ in pairs])
    est = np.concatenate([e for _, e in pairs])
    gain = float(np.sum(est * truth) / np.sum(truth * truth))
    r = float(np.corrcoef(est, truth)[0, 1])
    print(f"strong scenes: gain {gain:.3f}, r {r:.3f}")
    assert 0.8 <= gain <= 1.2 and r >= 0.8


def test_default_detection_is_higher_where_the_ground_moves(stack_scenes):
    """Mean detection on pixels moving > 5 mm above that on pixels moving < 0.2 mm."""
    moving = np.concatenate([d[np.abs(t) > 5.0] for _, t, _, _, d in stack_scenes])
    still = np.concatenate([d[np.abs(t) < 0.2] for _, t, _, _, d in stack_scenes])
    assert moving.size > 1000 and still.size > 1000
    print(f"detection: moving {moving.mean():.3f}, still {still.mean():.3f}")
    assert moving.mean() > still.mean()


@pytest.fixture(scope="module")
def window_held_out():
    """64 deforming 9-date scenes (6-20 mm) and the window model's de-planed outputs."""
    cfg = SimConfig(size=64, n_dates=9, amplitude_mm=(6.0, 20.0))
    cfg = SimConfig.from_dict({**cfg.to_dict(), "source_probs": {**cfg.source_probs, "none": 0.0}})
    batch = simulate_batch(cfg, 64, generator=torch.Generator().manual_seed(4242))
    valid = batch.valid & torch.isfinite(batch.displacement).any(1)
    truth = deplane(batch.cumulative.double(), valid)
    model = load_model("window_v1")
    with torch.no_grad():
        pred = model(batch.displacement, batch.dem).double()
    times = torch.arange(9, dtype=torch.float64) * cfg.interval_days
    return batch, valid, truth, deplane(torch.nan_to_num(pred), valid), times


def _torch_rmse(est: torch.Tensor, truth: torch.Tensor, valid: torch.Tensor) -> float:
    return float(torch.sqrt(((est - truth)[valid] ** 2).mean()))


def test_window_model_beats_zero_and_tuned_classical(window_held_out):
    """The classical correction gets every filter width and keeps the best one for the truth,
    so the comparison is generous to it."""
    batch, valid, truth, pred, times = window_held_out
    rmse_model = _torch_rmse(pred, truth, valid)
    rmse_zero = _torch_rmse(torch.zeros_like(truth), truth, valid)
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
            rmse_classical[(method, sigma)] = _torch_rmse(est, truth, valid)
    best_classical = min(rmse_classical.values())
    print(f"RMSE model {rmse_model:.3f}, zero {rmse_zero:.3f}, best classical {best_classical:.3f}")
    assert rmse_model < 0.95 * min(rmse_zero, best_classical)


def test_window_model_correlates_with_the_truth(window_held_out):
    _, valid, truth, pred, _ = window_held_out
    corr = []
    for p, t, v in zip(pred, truth, valid, strict=True):
        a, b = p[v] - p[v].mean(), t[v] - t[v].mean()
        corr.append(float((a * b).sum() / torch.sqrt((a * a).sum() * (b * b).sum())))
    print(f"median correlation {np.median(corr):.3f}")
    assert np.median(corr) > 0.5
