"""Training of the whole-stack model: batches, losses, exact resume, release calibration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
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


def _jump_ratios(cfg: StackTrainConfig, seeds: range) -> list[float]:
    """Per deforming example: largest neighbour jump of the cumulative truth / its max |LOS|;
    asserts that every deforming example of ``cfg`` creeps linearly when ``cfg.creep_prob``
    is 1 (truth at date t = cumulative x elapsed share)."""
    out = []
    for seed in seeds:
        batch = draw(cfg, torch.Generator().manual_seed(seed), cfg.batch_size)
        truth, times = batch["truth"].double(), batch["times"][0].double()
        share = (times - times[0]) / (times[-1] - times[0])
        for k in range(truth.shape[0]):
            cum = truth[k, -1] - truth[k, 0]
            peak = float(cum.abs().max())
            if peak < 0.5:  # no deformation
                continue
            if cfg.creep_prob == 1.0:
                expected = truth[k, 0] + share[:, None, None] * cum
                assert torch.allclose(truth[k], expected, atol=1e-3 * peak)
            jx = (cum[:, 1:] - cum[:, :-1]).abs().max()
            jy = (cum[1:] - cum[:-1]).abs().max()
            out.append(float(max(jx, jy)) / peak)
    return out


def test_creep_batches_are_steady_steps_along_a_line():
    """``creep_prob = 1``: steady creep with a step across a surface trace (neighbour jumps
    of 0.2-1.2 x the peak, against < 0.1 for most of the default prior's smooth sources)."""
    cfg = dataclasses.replace(TINY, crop=48, creep_prob=1.0, batch_size=8, gap_prob=0.0)
    creep = _jump_ratios(cfg, range(3))
    default = _jump_ratios(dataclasses.replace(cfg, creep_prob=0.0), range(3))
    assert len(creep) >= 12 and len(default) >= 12
    assert np.median(creep) > 0.25 and np.median(creep) > 3 * np.median(default)


def test_difference_loss_is_the_mean_squared_neighbour_step():
    from insar_denoise.training.stack import _difference_loss

    y, x = torch.meshgrid(torch.arange(6.0), torch.arange(5.0), indexing="ij")
    m = torch.ones(1, 6, 5)
    assert float(_difference_loss((3.0 * x + 7.0)[None], m)) == pytest.approx(9.0 * 24 / 49)
    assert float(_difference_loss(torch.full((1, 6, 5), 4.0), m)) == 0.0
    step = (x >= 2).float()[None] * 10.0  # a step between columns 1 and 2
    m[0, :, 2] = 0.0  # pairs touching a masked pixel do not count
    assert float(_difference_loss(step, m)) == 0.0


def test_gain_loss_is_the_squared_shortfall_of_strong_examples_only():
    from insar_denoise.training.stack import _gain_loss

    y, x = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    bump = torch.exp(-((x - 3.5) ** 2 + (y - 3.5) ** 2) / 6.0) * 10.0  # RMS about 3.3 mm
    truth = torch.stack([bump, bump * 0.01])  # the second stands out of no noise
    m = torch.ones(2, 8, 8)
    scale = torch.tensor([1.0, 1.0])
    # gain 0.6 on the strong example, any offset: (1 - 0.6)^2; the weak one is not counted
    out = torch.stack([0.6 * bump + 5.0, torch.zeros(8, 8)])
    assert float(_gain_loss(out, truth, m, scale, 0.5)) == pytest.approx(0.16, rel=1e-5)
    assert float(_gain_loss(truth + 3.0, truth, m, scale, 0.5)) == pytest.approx(0.0, abs=1e-9)
    # noise on the output that is orthogonal to the truth leaves the gain at 1
    noise = torch.stack([torch.sign(x - 3.5) * torch.sign(y - 3.5), torch.zeros(8, 8)])
    assert float(_gain_loss(truth + noise, truth, m, scale, 0.5)) == pytest.approx(0.0, abs=1e-9)
    # with a larger noise scale no example is strong enough: no term
    assert float(_gain_loss(out, truth, m, scale * 100.0, 0.5)) == 0.0


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


def test_gpu_continuation_resumes_and_feeds_the_release(tmp_path):
    # scripts/train_stack_device.py on the CPU: it continues a CPU run's state, counts its
    # own (larger) batches, and its state is what the release reads
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "train_stack_device.py"
    spec = importlib.util.spec_from_file_location("train_stack_device", path)
    device_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(device_script)
    resume = train(TINY, tmp_path / "cpu")  # 4 steps of 2 examples
    before = torch.load(resume, weights_only=False)
    out = tmp_path / "gpu"
    argv = ["--out", str(out), "--resume", str(resume), "--seconds", "2", "--batch", "3"]
    assert device_script.main([*argv, "--workers", "0", "--device", "cpu"]) == 0
    state = torch.load(out / "resume.pt", weights_only=False)
    steps = state["step"] - before["step"]
    assert steps >= 1 and state["examples"] == 4 * 2 + 3 * steps
    assert any(not torch.equal(state["model"][k], before["model"][k]) for k in state["model"])
    assert (out / "best.pt").is_file() and (out / "device_log.csv").read_text().count("val") >= 2
    meta = release(out / "resume.pt", tmp_path / "m.pt", out / "best.pt", n_scenes=2)
    assert meta["examples_seen"] == state["examples"]
