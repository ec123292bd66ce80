"""Training of the whole-stack model: batches, losses, exact resume, release calibration."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from insar_denoise.models import load_model
from insar_denoise.training.stack import StackTrainConfig, draw, losses, train
from insar_denoise.trust.stack_release import release

TINY = StackTrainConfig(
    crop=16,
    dates=(8, 12),
    batch_size=2,
    widths=(4, 4, 4),
    total_steps=4,
    val_every_steps=2,
    val_examples=8,
    checkpoint_every_s=1e9,
)


def test_batches_have_gaps_in_time_and_a_series_truth():
    cfg = dataclasses.replace(TINY, gap_prob=1.0, batch_size=3)
    batch = draw(cfg, torch.Generator().manual_seed(1), 3)
    disp, truth = batch["displacement"], batch["truth"]
    assert disp.shape == truth.shape and batch["times"].shape == disp.shape[:2]
    missing = ~torch.isfinite(disp) & batch["valid"][:, None]
    assert missing[:, 1:].any()  # some pixels miss some dates (not only holes in space)
    assert not missing[:, 0].any()  # the reference date is never dropped


def test_losses_are_finite_and_zero_head_gives_the_projection_error():
    batch = draw(TINY, torch.Generator().manual_seed(2), 2)
    from insar_denoise.models.stack_denoiser import StackDenoiser

    out = losses(StackDenoiser(widths=(4, 4, 4)), batch, TINY)
    assert all(torch.isfinite(v) for v in out.values())
    assert float(out["det"]) == np.float32(np.log(2.0))  # untrained detection: p = 0.5


def test_resume_is_exact(tmp_path):
    torch.set_num_threads(1)  # bitwise reproducible kernels
    straight = train(TINY, tmp_path / "a")
    half = dataclasses.replace(TINY, total_steps=2)
    train(half, tmp_path / "b")
    resumed = train(TINY, tmp_path / "b")
    a = torch.load(straight, weights_only=False)["model"]
    b = torch.load(resumed, weights_only=False)["model"]
    for key in a:  # AdamW's reloaded state differs in the last float32 bits
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-3)


def test_release_writes_a_loadable_calibrated_model(tmp_path):
    resume = train(TINY, tmp_path / "run")
    meta = release(resume, tmp_path / "m.pt", n_scenes=2)
    cal = meta["sigma_calibration"]
    assert 0 < cal["k68"] < cal["k95"]
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.metadata["kind"] == "stack"
    assert loaded.metadata["sigma_calibration"]["k95"] == cal["k95"]
