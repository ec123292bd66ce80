"""Run logs: ``log.csv`` (training), ``val.csv`` (validation), ``log.jsonl`` and a PNG plot."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from insar_denoise.training.checkpoint import copy_atomic

log = logging.getLogger(__name__)

TRAIN_CSV = "log.csv"
VAL_CSV = "val.csv"
JSONL = "log.jsonl"
PLOT = "loss_curve.png"
TRAIN_FIELDS = ("step", "examples_seen", "wall_s", "lr", "loss", "examples_per_s")


def _val_row(record: dict[str, Any]) -> dict[str, float]:
    m = record["metrics"]
    row: dict[str, float] = {
        "step": record["step"],
        "examples_seen": record["examples_seen"],
        "wall_s": record["wall_s"],
        "val_loss": record["val_loss"],
    }
    for name, value in m["all"]["rmse_mm"].items():
        row[f"rmse_mm_{name}"] = value
    for name, value in m["all"]["corr"].items():
        row[f"corr_{name}"] = value
    for name, value in m["p99_abs_no_deformation_mm"].items():
        row[f"p99_nodef_mm_{name}"] = value
    return row


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


class RunLogger:
    """Appends rows to the run folder's logs and redraws the loss curve."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def _path(self, name: str) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        return self.run_dir / name

    def train_row(
        self, step: int, examples: int, wall_s: float, lr: float, loss: float, rate: float
    ) -> None:
        row = dict(
            zip(
                TRAIN_FIELDS,
                (step, examples, round(wall_s, 2), lr, loss, round(rate, 2)),
                strict=True,
            )
        )
        _append_csv(self._path(TRAIN_CSV), row)
        with self._path(JSONL).open("a") as fh:
            fh.write(json.dumps({"kind": "train", **row}) + "\n")

    def validation(self, record: dict[str, Any]) -> None:
        _append_csv(self._path(VAL_CSV), _val_row(record))
        with self._path(JSONL).open("a") as fh:
            fh.write(json.dumps({"kind": "validation", **record}) + "\n")
        (self._path("val_metrics.json")).write_text(json.dumps(record, indent=1))

    def copy_to(self, folder: str | Path) -> None:
        """Copy the logs and plot (atomically, each) into ``folder``."""
        for name in (TRAIN_CSV, VAL_CSV, PLOT, "val_metrics.json"):
            src = self.run_dir / name
            if src.is_file():
                copy_atomic(src, Path(folder) / name)

    def seed_from(self, folder: str | Path) -> None:
        """Start this run folder's logs from copies in ``folder`` (continuing a run)."""
        for name in (TRAIN_CSV, VAL_CSV):
            src = Path(folder) / name
            if src.is_file() and not (self.run_dir / name).exists():
                copy_atomic(src, self._path(name))

    def plot(self) -> Path | None:
        """Draw training and validation loss against examples seen (matplotlib, lazily)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            log.warning("matplotlib not available: no loss-curve plot")
            return None
        train = _read_csv(self.run_dir / TRAIN_CSV)
        val = _read_csv(self.run_dir / VAL_CSV)
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        if train:
            ax.plot(
                [r["examples_seen"] for r in train],
                [r["loss"] for r in train],
                lw=0.8,
                label="train (Huber, scale units)",
            )
        if val:
            ax.plot(
                [r["examples_seen"] for r in val],
                [r["val_loss"] for r in val],
                "o-",
                label="validation",
            )
            for key, label in (
                ("rmse_mm_model", "model"),
                ("rmse_mm_raw", "raw last-first"),
                ("rmse_mm_zero", "all-zero map"),
                ("rmse_mm_elevation_filter", "elevation + filter"),
            ):
                if key in val[0]:
                    ax2.plot(
                        [r["examples_seen"] for r in val], [r[key] for r in val], "o-", label=label
                    )
        ax.set_xlabel("examples seen")
        ax.set_ylabel("loss")
        ax.set_yscale("log")
        ax.legend()
        ax2.set_xlabel("examples seen")
        ax2.set_ylabel("validation RMSE of the cumulative map (mm)")
        ax2.set_yscale("log")
        ax2.legend()
        fig.tight_layout()
        out = self._path(PLOT)
        fig.savefig(out, dpi=90)
        plt.close(fig)
        return out


def _read_csv(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        rows = []
        for row in csv.DictReader(fh):
            try:
                rows.append({k: float(v) for k, v in row.items()})
            except (TypeError, ValueError):
                continue
        return rows
