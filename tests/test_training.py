"""Trainer: loss goes down, exact resume, resume copies, metrics, CLI train -> export -> load."""

from __future__ import annotations

import math
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from insar_denoise.errors import ConfigError
from insar_denoise.models import load_model
from insar_denoise.training import (
    TrainConfig,
    Trainer,
    cumulative_metrics,
    learning_rate,
    load_state,
)

SIZE, WINDOW = 16, 5


def fake_batch(batch_size: int, gen: torch.Generator):
    """Gaussian bumps growing linearly in time + white noise + DEM-correlated delay."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
    source = (torch.rand(batch_size, generator=gen) > 0.25).long()
    amp = torch.rand(batch_size, generator=gen) * 10 * source
    cx = torch.rand(batch_size, 1, 1, generator=gen) - 0.5
    bump = amp.view(-1, 1, 1) * torch.exp(-((xx - cx) ** 2 + yy**2) / 0.1)
    t = torch.linspace(0, 1, WINDOW).view(1, -1, 1, 1)
    dem = torch.randn(batch_size, SIZE, SIZE, generator=gen).cumsum(-1).cumsum(-2) * 10
    strat = 0.003 * dem.unsqueeze(1) * torch.randn(batch_size, WINDOW, 1, 1, generator=gen)
    disp = (
        bump.unsqueeze(1) * t + strat + torch.randn(batch_size, WINDOW, SIZE, SIZE, generator=gen)
    )
    disp[:, :, :2, :3] = float("nan")
    return types.SimpleNamespace(
        displacement=disp, dem=dem, cumulative=bump, amplitude_mm=amp, source=source
    )


def small_config(**kw) -> TrainConfig:
    base = dict(
        window=WINDOW,
        channels=[4, 8, 8, 8],
        crop=SIZE,
        batch_size=4,
        lr=3e-3,
        warmup_examples=8,
        total_examples=100_000,
        val_examples=8,
        val_batch=8,
        log_every_steps=2,
        num_threads=1,
        ema_decay=0.9,
    )
    base.update(kw)
    return TrainConfig(**base)


def make_trainer(run_dir: Path, **kw) -> Trainer:
    return Trainer(
        small_config(**kw),
        run_dir,
        device="cpu",
        batch_fn=fake_batch,
        sim_config={"fake": True, "interval_days": 12.0},
    )


def test_config_rejects_unknown_and_invalid_keys() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ConfigError, match="crop"):
        TrainConfig.from_dict({"crop": 60})
    assert TrainConfig.from_dict(TrainConfig().to_dict()) == TrainConfig()


def test_schedule_warms_up_then_decays_to_the_floor() -> None:
    cfg = TrainConfig(lr=1e-3, warmup_examples=1000, total_examples=10_000, batch_size=10)
    warm = [learning_rate(cfg, n) for n in range(0, 1000, 100)]
    assert all(a < b for a, b in zip(warm, warm[1:], strict=False)) and warm[-1] <= cfg.lr
    assert learning_rate(cfg, 1000) == pytest.approx(cfg.lr)
    decay = [learning_rate(cfg, n) for n in range(1000, 10_001, 500)]
    assert all(a >= b for a, b in zip(decay, decay[1:], strict=False))
    assert learning_rate(cfg, 50_000) == pytest.approx(cfg.lr * cfg.min_lr_ratio)


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tmp_path: Path) -> None:
    fixed = fake_batch(8, torch.Generator().manual_seed(5))
    trainer = Trainer(
        small_config(batch_size=8, lr=1e-2), tmp_path, device="cpu", batch_fn=lambda n, g: fixed
    )
    first = trainer.train_step()
    for _ in range(12):
        last = trainer.train_step()
    assert last < 0.6 * first


def test_resume_is_bit_exact(tmp_path: Path) -> None:
    k = 2
    straight = make_trainer(tmp_path / "a")
    straight.fit(max_steps=2 * k)
    half = make_trainer(tmp_path / "b")
    half.fit(max_steps=k)
    resumed = make_trainer(tmp_path / "b")
    assert resumed.resume().endswith("resume.pt")
    assert resumed.examples_seen == k * 4
    resumed.fit(max_steps=k)
    for key in ("model", "ema"):
        a, b = straight.state_dict()[key], resumed.state_dict()[key]
        for name in a:
            assert torch.equal(a[name], b[name]), (key, name)
    assert straight.examples_seen == resumed.examples_seen == 2 * k * 4
    ea = straight.optimizer.state_dict()["state"][0]["exp_avg"]
    eb = resumed.optimizer.state_dict()["state"][0]["exp_avg"]
    assert torch.equal(ea, eb)


def test_resume_copy_continues_an_empty_run_dir(tmp_path: Path) -> None:
    copy = tmp_path / "committed" / "resume.pt"
    first = make_trainer(
        tmp_path / "run1",
        resume_copy=str(copy),
        log_copy_dir=str(tmp_path / "committed"),
        export_best=str(tmp_path / "best.pt"),
    )
    first.fit(max_steps=2)
    assert copy.is_file() and (tmp_path / "committed" / "val.csv").is_file()
    assert load_model(tmp_path / "best.pt").metadata["examples_seen"] == 8
    second = make_trainer(
        tmp_path / "run2", resume_copy=str(copy), log_copy_dir=str(tmp_path / "committed")
    )
    assert second.resume() == str(copy)
    assert second.examples_seen == 8 and (tmp_path / "run2" / "val.csv").is_file()


def test_resume_refuses_a_different_architecture(tmp_path: Path) -> None:
    make_trainer(tmp_path).fit(max_steps=1)
    other = make_trainer(tmp_path, channels=[4, 8, 8, 16])
    with pytest.raises(ConfigError, match="channels"):
        other.resume()


def test_metrics_of_truth_zero_and_shifted_estimates() -> None:
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(6, 16, 16, generator=g)
    truth[:2] = 0.0
    valid = torch.ones_like(truth, dtype=torch.bool)
    y = torch.arange(16.0).view(-1, 1)
    estimates = {"truth": truth, "zero": torch.zeros_like(truth), "ramped": truth + 3 + 0.5 * y}
    amp = truth.abs().amax((1, 2))
    m = cumulative_metrics(estimates, truth, valid, amp, amp == 0)
    assert m["all"]["rmse_mm"]["truth"] == pytest.approx(0.0, abs=1e-6)
    assert m["all"]["rmse_mm"]["ramped"] == pytest.approx(0.0, abs=1e-5)  # plane-free metrics
    assert m["all"]["corr"]["truth"] == pytest.approx(1.0)
    assert m["bins"]["none"]["n"] == 2 and m["p99_abs_no_deformation_mm"]["zero"] == 0.0
    expected = math.sqrt(float((truth[2:] - truth[2:].mean((1, 2), keepdim=True)).pow(2).mean()))
    assert m["all"]["rmse_mm"]["zero"] > 0.5 * expected


def test_cli_train_export_load(tmp_path: Path) -> None:
    from insar_denoise.cli.main import main

    cfg = tmp_path / "train.yaml"
    cfg.write_text(
        "window: 3\nchannels: [4, 8, 8, 8]\ncrop: 16\nbatch_size: 2\nval_examples: 4\n"
        "val_batch: 4\nwarmup_examples: 4\ntotal_examples: 1000\nnum_threads: 1\n"
    )
    run = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(
        main, ["train", "--config", str(cfg), "-o", str(run), "--device", "cpu", "--max-steps", "2"]
    )
    assert res.exit_code == 0, res.output
    state = load_state(run / "resume.pt")
    assert state["examples_seen"] == 4 and state["sim_config"]["size"] == 16
    again = runner.invoke(main, ["train", "--config", str(cfg), "-o", str(run)])
    assert again.exit_code == 2 and "--resume" in again.output
    out = tmp_path / "model.pt"
    res = runner.invoke(main, ["export", str(run), "-o", str(out)])
    assert res.exit_code == 0, res.output
    model = load_model(out)
    assert model.window == 3 and model.metadata["sim_config"]["n_dates"] == 3
    # inference tiles default to 1.5 training crops (16 px), half a crop of overlap
    assert (model.metadata["default_tile"], model.metadata["default_overlap"]) == (24, 8)
    assert model.metadata["val_metrics"]["metrics"]["all"]["n"] == 4
    bad = runner.invoke(main, ["export", str(tmp_path / "nothing"), "-o", str(out)])
    assert bad.exit_code == 2 and "no resume state" in bad.output


def test_a_changed_validation_set_resets_the_best_loss(tmp_path: Path) -> None:
    first = make_trainer(tmp_path)
    first.fit(max_steps=1)
    assert math.isfinite(first.best_val)
    same = make_trainer(tmp_path)
    same.resume()
    same.validation_set()
    assert same.best_val == first.best_val

    def louder(n: int, gen: torch.Generator):
        batch = fake_batch(n, gen)
        batch.displacement = batch.displacement * 2
        return batch

    changed = Trainer(small_config(), tmp_path, device="cpu", batch_fn=louder, sim_config={})
    changed.resume()
    changed.validation_set()
    assert changed.best_val == math.inf
