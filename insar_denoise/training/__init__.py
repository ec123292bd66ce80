"""Training of the denoising autoencoder on simulated batches (torch + numpy only).

    from insar_denoise.training import TrainConfig, Trainer
    trainer = Trainer(TrainConfig(), "runs/default")
    trainer.resume()
    trainer.fit()

The resume state is one file, ``RUN_DIR/resume.pt`` (optionally copied to
``TrainConfig.resume_copy``); ``insar-denoise export`` turns it into a model file.
"""

from __future__ import annotations

from insar_denoise.devices import resolve_device
from insar_denoise.training.checkpoint import (
    export_from_state,
    load_state,
    metadata_from_state,
    model_from_state,
    save_state,
)
from insar_denoise.training.config import TrainConfig, learning_rate
from insar_denoise.training.trainer import Trainer, loss_terms
from insar_denoise.training.validation import cumulative_metrics, format_table

__all__ = [
    "TrainConfig",
    "Trainer",
    "cumulative_metrics",
    "export_from_state",
    "format_table",
    "learning_rate",
    "load_state",
    "loss_terms",
    "metadata_from_state",
    "model_from_state",
    "resolve_device",
    "save_state",
]
