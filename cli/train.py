"""``insar-denoise train``: train the autoencoder on simulated batches, resumably."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path

import click

from insar_denoise.errors import ConfigError


def read_config(path: str | None):
    """Read a YAML training config (``None`` → defaults)."""
    from insar_denoise.training import TrainConfig

    if path is None:
        return TrainConfig()
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the training config: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the training config must be a mapping of keys to values")
    return TrainConfig.from_dict(data)


@click.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML training config (default: built-in defaults).",
)
@click.option(
    "-o",
    "--output",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Run folder (resume.pt, logs, loss_curve.png).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue RUN_DIR/resume.pt, or the config's resume_copy if RUN_DIR has none.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, ...")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps.")
@click.option("--max-seconds", type=float, default=None, help="Stop after this many seconds.")
def train(config_path, run_dir, resume, device, max_steps, max_seconds) -> None:
    """Train (or continue training) the denoising autoencoder on simulated data."""
    import torch

    from insar_denoise.training import Trainer

    logging.getLogger("insar_denoise").setLevel(logging.INFO)
    config = read_config(config_path)
    run = Path(run_dir)
    if (run / "resume.pt").exists() and not resume:
        raise ConfigError(f"{run / 'resume.pt'} exists: pass --resume or choose another folder")
    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    trainer = Trainer(config, run, device=device)
    source = trainer.resume() if resume else "scratch"
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps(config.to_dict(), indent=1))
    click.echo(
        f"training on {trainer.device} from {source}: {trainer.examples_seen} examples seen, "
        f"target {config.total_examples}",
        err=True,
    )

    def stop(signum, frame) -> None:
        trainer.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    trainer.fit(max_steps=max_steps, max_seconds=max_seconds)
    click.echo(f"stopped at {trainer.examples_seen} examples; state in {run / 'resume.pt'}")
