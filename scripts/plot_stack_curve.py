"""Learning curve of the whole-stack model from its log (``experiments/training/stack_log.csv``).

python scripts/plot_stack_curve.py [LOG] [PNG]
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path: Path) -> tuple[list[dict], list[int]]:
    """Rows of the log and the steps where a ``# restart`` comment line sits."""
    rows, restarts, last = [], [], 0
    with open(path) as fh:
        for line in fh:
            if line.startswith("#"):
                restarts.append(last)
                continue
            if line.startswith("step"):
                header = line.strip().split(",")
                continue
            row = dict(zip(header, next(csv.reader([line])), strict=False))
            last = int(row["step"])
            rows.append(row)
    return rows, restarts


def main() -> None:
    folder = "experiments/training"
    log = Path(sys.argv[1] if len(sys.argv) > 1 else f"{folder}/stack_log.csv")
    out = Path(sys.argv[2] if len(sys.argv) > 2 else f"{folder}/stack_learning_curve.png")
    rows, restarts = read(log)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for split, style in (("train", dict(alpha=0.3, lw=0.8)), ("val", dict(marker="o", lw=2))):
        sel = [r for r in rows if r["split"] == split]
        ex = [int(r["examples"]) / 1000 for r in sel]
        axes[0].plot(ex, [float(r["total"]) for r in sel], label=split, **style)
        axes[1].plot(ex, [float(r["rmse_mm"]) for r in sel], label=split, **style)
    for ax in axes:
        for step in restarts:
            ax.axvline(step * 12 / 1000, color="grey", ls=":", lw=1)
        ax.set_xlabel("examples seen (thousands, 64 x 64 px, T = 9-72)")
        ax.legend()
    axes[0].set_ylabel("loss (noise units)")
    axes[0].set_yscale("log")
    axes[1].set_ylabel("cumulative RMSE (mm, up to a constant)")
    axes[1].set_ylim(0, 8)
    fig.suptitle("whole-stack model: training (dotted: restarts with a changed input or prior)")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
