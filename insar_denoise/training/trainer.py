"""Training loop: simulated batches on the fly, AdamW + warm-up/cosine, EMA, exact resume.

The loss is a Huber loss on the cumulative map over the window, over the pixels valid in at
least one date, in units of the input's robust amplitude scale (so quiet and loud examples
weigh alike). Prediction and truth both have their least-squares plane removed, exactly as
the model's output does (see :mod:`insar_denoise.models.normalization`).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from insar_denoise.baselines import raw_cumulative
from insar_denoise.devices import resolve_device
from insar_denoise.models.autoencoder import DenoisingAutoencoder
from insar_denoise.models.normalization import deplane, normalize_dem, normalize_displacement
from insar_denoise.training import checkpoint as ckpt
from insar_denoise.training.config import TrainConfig, learning_rate
from insar_denoise.training.logs import RunLogger
from insar_denoise.training.validation import classical_estimates, cumulative_metrics

log = logging.getLogger(__name__)

#: ``batch_fn(batch_size, generator)`` returns an object with ``displacement (B,N,H,W)``,
#: ``dem (B,H,W)``, ``cumulative (B,H,W)``, ``amplitude_mm (B,)`` and ``source (B,)``.
BatchFn = Callable[[int, torch.Generator], Any]


def simulator_batches(config: TrainConfig, device: torch.device) -> tuple[BatchFn, dict]:
    """Batch function drawing from :func:`insar_denoise.synth.simulate_batch`."""
    from insar_denoise.synth import SimConfig, simulate_batch

    sim = SimConfig.from_dict({**config.sim, "n_dates": config.window, "size": config.crop})

    def make(batch_size: int, generator: torch.Generator) -> Any:
        return simulate_batch(sim, batch_size, generator=generator, device=device)

    return make, sim.to_dict()


def loss_terms(pred: Tensor, scale: Tensor, truth: Tensor, valid: Tensor, delta: float) -> Tensor:
    """Per-example mean Huber loss of de-planed ``pred`` vs ``truth`` in scale units ``(B,)``."""
    target = deplane(truth.float(), valid)
    diff = torch.where(valid, pred - target, torch.zeros_like(pred)) / scale.view(-1, 1, 1)
    huber = F.huber_loss(diff, torch.zeros_like(diff), reduction="none", delta=delta)
    return (huber * valid).sum((1, 2)) / valid.sum((1, 2)).clamp_min(1)


class Trainer:
    """Owns the model, its EMA, the optimiser, the RNG streams and the run folder.

    Parameters
    ----------
    config : TrainConfig
        The run's configuration.
    run_dir : str or Path
        Folder for ``resume.pt``, logs and plots.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    batch_fn : BatchFn, optional
        Source of training and validation batches (default: the simulator).
    sim_config : dict, optional
        Description of the data distribution stored with checkpoints (with ``batch_fn``).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: str | Path,
        device: str = "auto",
        batch_fn: BatchFn | None = None,
        sim_config: dict | None = None,
    ) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.device = resolve_device(device)
        # the validation set is drawn on the CPU when it comes from the simulator, so every
        # device (CPU or CUDA) validates on the very same examples
        self.val_device = self.device
        self.val_batch_fn = batch_fn
        if batch_fn is None:
            batch_fn, sim_config = simulator_batches(config, self.device)
            self.val_device = torch.device("cpu")
            self.val_batch_fn = simulator_batches(config, self.val_device)[0]
        self.batch_fn = batch_fn
        self.sim_config = sim_config
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2**32)
        random.seed(config.seed)
        self.model = DenoisingAutoencoder(config.window, tuple(config.channels)).to(self.device)
        self.ema = None
        if config.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.step = 0
        self.examples_seen = 0
        self.wall_s = 0.0
        self.best_val = math.inf
        self.history: list[dict[str, Any]] = []
        self.val_fingerprint: str | None = None
        self._val: dict[str, Any] | None = None
        self._stop = False
        self.logger = RunLogger(self.run_dir)

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-exactly."""
        rng = {
            "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(),
            "python": random.getstate(),
            "data": self.generator.get_state(),
        }
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": ckpt.RESUME_FORMAT,
            "version": ckpt.RESUME_VERSION,
            "config": self.config.to_dict(),
            "sim_config": self.sim_config,
            "model": self.model.state_dict(),
            "ema": None if self.ema is None else self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "examples_seen": self.examples_seen,
            "wall_s": self.wall_s,
            "best_val": self.best_val,
            "val_fingerprint": self.val_fingerprint,
            "history": self.history,
            "rng": rng,
        }

    def load_state_dict(self, state: dict[str, Any], source: str | Path = "state") -> None:
        """Restore a state written by :meth:`state_dict` (frozen config keys must match)."""
        ckpt.check_compatible(state["config"], self.config, source)
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"] if state["ema"] is not None else state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.examples_seen = int(state["examples_seen"])
        self.wall_s = float(state["wall_s"])
        self.best_val = float(state["best_val"])
        self.history = list(state["history"])
        self.val_fingerprint = state.get("val_fingerprint")
        rng = state["rng"]
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        try:
            self.generator.set_state(rng["data"])
        except (RuntimeError, TypeError):  # the run moved between CPU and CUDA
            log.warning("data generator state is for another device: reseeding the data stream")
            self.generator.manual_seed(self.config.seed + 1 + self.examples_seen)
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    def save_checkpoint(self) -> Path:
        """Write ``RUN_DIR/resume.pt`` (and the configured copies) atomically."""
        path = ckpt.save_state(self.state_dict(), self.run_dir / ckpt.RESUME_NAME)
        if self.config.resume_copy:
            ckpt.copy_atomic(path, self.config.resume_copy)
        if self.config.log_copy_dir:
            self.logger.copy_to(self.config.log_copy_dir)
        log.info("checkpoint at %d examples -> %s", self.examples_seen, path)
        return path

    def resume(self) -> str:
        """Continue from ``RUN_DIR/resume.pt``, else from ``resume_copy``; returns the source."""
        own = self.run_dir / ckpt.RESUME_NAME
        if own.is_file():
            source = own
        elif self.config.resume_copy and Path(self.config.resume_copy).is_file():
            source = Path(self.config.resume_copy)
            if self.config.log_copy_dir:
                self.logger.seed_from(self.config.log_copy_dir)
        else:
            return "scratch"
        self.load_state_dict(ckpt.load_state(source), source)
        return str(source)

    def request_stop(self) -> None:
        """Finish the current step, checkpoint and return from :meth:`fit`."""
        self._stop = True

    # -- steps -------------------------------------------------------------------------
    def _autocast(self):
        enabled = self.config.amp and self.device.type == "cuda"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def predict(self, model: DenoisingAutoencoder, displacement: Tensor, dem: Tensor):
        """Model output (mm, de-planed) and amplitude scale, the network under autocast."""
        x, valid, scale = normalize_displacement(displacement.float())
        dem_n = normalize_dem(dem.float())
        with self._autocast():
            net = model.network(x, valid, dem_n)
        return deplane(net.float() * scale.view(-1, 1, 1), valid.any(1)), scale, valid.any(1)

    def train_step(self) -> float:
        """One optimiser step on a fresh simulated batch; returns the loss."""
        cfg = self.config
        lr = learning_rate(cfg, self.examples_seen)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.batch_fn(cfg.batch_size, self.generator)
        disp = batch.displacement.to(self.device)
        dem = batch.dem.to(self.device)
        truth = batch.cumulative.to(self.device)
        self.model.train()
        pred, scale, valid = self.predict(self.model, disp, dem)
        loss = loss_terms(pred, scale, truth, valid, cfg.huber_delta).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            # warm-up of the average: short memory while the weights still move fast
            decay = min(cfg.ema_decay, (1.0 + self.step) / (10.0 + self.step))
            with torch.no_grad():
                for e, p in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                    e.lerp_(p, 1.0 - decay)
        self.step += 1
        self.examples_seen += cfg.batch_size
        return float(loss.detach())

    # -- validation --------------------------------------------------------------------
    def validation_set(self) -> dict[str, Any]:
        """The fixed validation set (simulated once from ``val_seed``, cached in memory)."""
        if self._val is None:
            cfg = self.config
            gen = torch.Generator(device=self.val_device).manual_seed(cfg.val_seed)
            parts = []
            for i in range(0, cfg.val_examples, cfg.val_batch):
                parts.append(self.val_batch_fn(min(cfg.val_batch, cfg.val_examples - i), gen))
            cat = {
                k: torch.cat([getattr(p, k).cpu() for p in parts])
                for k in ("displacement", "dem", "cumulative", "amplitude_mm", "source")
            }
            cat["valid"] = torch.isfinite(cat["displacement"]).any(1)
            interval = float((self.sim_config or {}).get("interval_days", 12.0))
            refs = {"zero": torch.zeros_like(cat["cumulative"])}
            refs["raw"] = raw_cumulative(cat["displacement"], time_axis=1)
            refs.update(classical_estimates(cat["displacement"], cat["dem"], interval))
            cat["references"] = refs
            self._val = cat
            self._check_fingerprint(cat)
        return self._val

    def _check_fingerprint(self, val: dict[str, Any]) -> None:
        """Reset the best validation loss when the validation set changed (new simulator)."""
        digest = hashlib.sha256()
        for key in ("displacement", "dem", "cumulative"):
            digest.update(torch.nan_to_num(val[key]).numpy().tobytes())
        fingerprint = digest.hexdigest()[:16]
        if self.history and fingerprint != self.val_fingerprint:
            log.warning(
                "validation set differs from the saved run's (simulator changed?): "
                "best validation loss reset"
            )
            self.best_val = math.inf
        self.val_fingerprint = fingerprint

    def validate(self) -> dict[str, Any]:
        """Validation loss and per-bin metrics of the EMA model; appended to the history."""
        val = self.validation_set()
        model = self.ema if self.ema is not None else self.model
        model.eval()
        preds, losses = [], []
        n = val["displacement"].shape[0]
        with torch.no_grad():
            for i in range(0, n, self.config.val_batch):
                sl = slice(i, i + self.config.val_batch)
                pred, scale, valid = self.predict(
                    model, val["displacement"][sl].to(self.device), val["dem"][sl].to(self.device)
                )
                truth = val["cumulative"][sl].to(self.device)
                losses.append(loss_terms(pred, scale, truth, valid, self.config.huber_delta).cpu())
                preds.append(pred.float().cpu())
        estimates = {"model": torch.cat(preds), **val["references"]}
        metrics = cumulative_metrics(
            estimates,
            val["cumulative"],
            val["valid"],
            val["amplitude_mm"].float(),
            val["source"] == 0,
        )
        record = {
            "step": self.step,
            "examples_seen": self.examples_seen,
            "wall_s": round(self.wall_s, 1),
            "val_loss": float(torch.cat(losses).mean()),
            "metrics": metrics,
        }
        self.history.append(record)
        self.logger.validation(record)
        return record

    # -- loop --------------------------------------------------------------------------
    def fit(self, max_steps: int | None = None, max_seconds: float | None = None) -> None:
        """Train until ``total_examples`` (or a step/time budget), validating and saving.

        Validation runs at the start of a fresh run, every ``val_every_s`` seconds and at
        the end (not after :meth:`request_stop`); checkpoints every ``checkpoint_every_s``
        seconds and at the end.
        """
        cfg = self.config
        start = time.monotonic()
        last_val = last_ckpt = last_log = start
        steps_here, loss_sum, loss_n = 0, 0.0, 0
        if not self.history:
            self._after_validation(self.validate())
        while self.examples_seen < cfg.total_examples and not self._stop:
            if max_steps is not None and steps_here >= max_steps:
                break
            if max_seconds is not None and time.monotonic() - start >= max_seconds:
                break
            t0 = time.monotonic()
            loss = self.train_step()
            now = time.monotonic()
            self.wall_s += now - t0
            steps_here += 1
            loss_sum, loss_n = loss_sum + loss, loss_n + 1
            if not math.isfinite(loss):
                raise FloatingPointError(f"non-finite training loss at step {self.step}")
            if self.step % cfg.log_every_steps == 0:
                rate = loss_n * cfg.batch_size / max(now - last_log, 1e-9)
                self.logger.train_row(
                    self.step,
                    self.examples_seen,
                    self.wall_s,
                    learning_rate(cfg, self.examples_seen),
                    loss_sum / loss_n,
                    rate,
                )
                loss_sum, loss_n, last_log = 0.0, 0, now
            if now - last_val >= cfg.val_every_s:
                self._after_validation(self.validate())
                last_val = time.monotonic()
            if now - last_ckpt >= cfg.checkpoint_every_s:
                self.save_checkpoint()
                last_ckpt = time.monotonic()
        if steps_here and not self._stop:  # on a signal, save first and fast
            self._after_validation(self.validate())
        self.save_checkpoint()

    def _after_validation(self, record: dict[str, Any]) -> None:
        all_ = record["metrics"]["all"]["rmse_mm"]
        log.info(
            "validation at %d examples: loss %.4f, RMSE model %.2f mm, raw %.2f mm",
            record["examples_seen"],
            record["val_loss"],
            all_["model"],
            all_["raw"],
        )
        if record["val_loss"] < self.best_val:
            self.best_val = record["val_loss"]
            if self.config.export_best and self.examples_seen > 0:
                ckpt.export_from_state(self.state_dict(), self.config.export_best)
                log.info("new best model exported to %s", self.config.export_best)
        self.logger.plot()
