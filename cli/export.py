"""``insar-denoise export``: turn a training run's resume state into a model file."""

from __future__ import annotations

from pathlib import Path

import click

from insar_denoise.errors import ModelError


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help="Model file to write (TorchScript + metadata.json).",
)
@click.option(
    "--weights",
    type=click.Choice(["ema", "raw"]),
    default="ema",
    show_default=True,
    help="Exponential moving average of the weights, or the last raw weights.",
)
def export(run_dir, output, weights) -> None:
    """Export the model of RUN_DIR/resume.pt (or a resume file) to a TorchScript file."""
    from insar_denoise.models import load_model
    from insar_denoise.training import export_from_state, load_state

    src = Path(run_dir)
    state_path = src / "resume.pt" if src.is_dir() else src
    if not state_path.is_file():
        raise ModelError(f"{state_path}: no resume state to export (train first)")
    path = export_from_state(load_state(state_path), output, weights)
    model = load_model(path)
    meta = model.metadata
    click.echo(
        f"{path}: {meta['model_id']}, window {meta['window']}, "
        f"{meta['examples_seen']} examples seen, sha256 {meta['sha256'][:12]}"
    )
