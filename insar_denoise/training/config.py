"""Training configuration: one typed, validated dataclass (read from YAML by the CLI)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from insar_denoise.errors import ConfigError


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Parameters
    ----------
    seed : int
        Seeds the weights and the training-batch generator.
    window : int
        Dates per input window (the simulator makes series of exactly this length).
    channels : list of int
        Feature channels at strides 1, 2, 4, 8.
    crop : int
        Side of the simulated training tiles (pixels; a multiple of 8).
    batch_size : int
        Examples per optimiser step.
    lr, weight_decay : float
        AdamW peak learning rate and decoupled weight decay.
    warmup_examples, total_examples : int
        Linear warm-up, then cosine decay to ``min_lr_ratio × lr`` at ``total_examples``.
    min_lr_ratio : float
        Final learning rate as a fraction of ``lr``.
    ema_decay : float
        Exponential moving average of the weights (what validation and export use); 0 = off.
    huber_delta : float
        Huber threshold of the loss, in units of the input's robust amplitude scale.
    grad_clip : float
        Global gradient-norm clip (0 = off).
    sim : dict
        Overrides of :class:`insar_denoise.synth.SimConfig` (``n_dates`` and ``size`` are
        set from ``window`` and ``crop``).
    val_examples, val_seed, val_batch : int
        The fixed validation set: size, simulator seed, batch size.
    val_every_s, checkpoint_every_s : float
        Wall-clock seconds between validations and between checkpoints.
    log_every_steps : int
        Steps between rows of ``log.csv``.
    resume_copy : str or None
        Also write the resume state here at every checkpoint (e.g. a kept copy outside the run);
        ``--resume`` on an empty run folder starts from it.
    log_copy_dir : str or None
        Also copy ``log.csv``, ``val.csv`` and ``loss_curve.png`` here at every checkpoint.
    export_best : str or None
        Export the model here whenever the validation loss improves.
    amp : bool
        bfloat16 autocast of the network on CUDA (normalisation stays float32/64).
    num_threads : int
        CPU threads for torch (0 = leave torch's default).
    """

    seed: int = 0
    window: int = 9
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 96])
    crop: int = 64
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_examples: int = 20_000
    total_examples: int = 2_000_000
    min_lr_ratio: float = 0.02
    ema_decay: float = 0.999
    huber_delta: float = 0.5
    grad_clip: float = 1.0
    sim: dict[str, Any] = field(default_factory=dict)
    val_examples: int = 256
    val_seed: int = 20211119
    val_batch: int = 64
    val_every_s: float = 420.0
    checkpoint_every_s: float = 300.0
    log_every_steps: int = 50
    resume_copy: str | None = None
    log_copy_dir: str | None = None
    export_best: str | None = None
    amp: bool = True
    num_threads: int = 2

    def __post_init__(self) -> None:
        self.channels = [int(c) for c in self.channels]
        checks = [
            (self.window >= 1, "window must be >= 1"),
            (len(self.channels) == 4, "channels needs 4 entries"),
            (all(c > 0 for c in self.channels), "channels must be positive"),
            (self.crop > 0 and self.crop % 8 == 0, "crop must be a positive multiple of 8"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.total_examples > 0, "total_examples must be > 0"),
            (0 <= self.warmup_examples < self.total_examples, "need 0 <= warmup < total"),
            (0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)"),
            (self.huber_delta > 0, "huber_delta must be > 0"),
            (self.val_examples >= 1 and self.val_batch >= 1, "val sizes must be >= 1"),
            (isinstance(self.sim, dict), "sim must be a mapping of SimConfig fields"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"training config: {message}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python copy (JSON/YAML serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainConfig:
        """Build from a mapping, rejecting unknown keys with a one-line ``ConfigError``."""
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"training config: unknown key(s) {', '.join(unknown)}; known: "
                f"{', '.join(sorted(known))}"
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"training config: {exc}") from None


def learning_rate(config: TrainConfig, examples_seen: int) -> float:
    """Linear warm-up then cosine decay, as a function of the examples seen."""
    peak, floor = config.lr, config.lr * config.min_lr_ratio
    if examples_seen < config.warmup_examples:
        return peak * min(1.0, (examples_seen + config.batch_size) / config.warmup_examples)
    span = config.total_examples - config.warmup_examples
    progress = min(1.0, (examples_seen - config.warmup_examples) / span)
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))
