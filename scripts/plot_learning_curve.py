"""Learning curve of the shipped model and the training experiments, from their val.csv logs.

python scripts/plot_learning_curve.py  # -> training/learning_curve.png
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "shipped: 0.35 M params, H200, batch 256": ROOT / "training" / "val.csv",
    "capacity: 1.4 M params, H200, batch 256": ROOT
    / "training"
    / "experiments"
    / "gpu_medium_val.csv",
}


def read(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main() -> Path:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    zero = classical = None
    for label, path in RUNS.items():
        rows = read(path)
        x = [r["examples_seen"] for r in rows]
        ax.plot(x, [r["rmse_mm_model"] for r in rows], "o-", label=label)
        ax2.plot(x, [r["p99_nodef_mm_model"] for r in rows], "o-", label=label)
        zero = rows[-1]["rmse_mm_zero"]
        classical = min(
            rows[-1]["rmse_mm_elevation_stack_filter"], rows[-1]["rmse_mm_elevation_filter"]
        )
    ax.axhline(zero, color="k", ls="--", label=f"all-zero map ({zero:.2f} mm)")
    ax.set_xscale("log")
    ax.set_xlabel("training examples seen")
    ax.set_ylabel("validation RMSE of the cumulative map (mm)")
    ax.set_title(f"256 fixed validation examples (classical, σ = 2 px: {classical:.1f} mm)")
    ax.legend(fontsize=8)
    ax2.axhline(1.0, color="r", ls=":", label="target < 1 mm")
    ax2.set_xscale("log")
    ax2.set_xlabel("training examples seen")
    ax2.set_ylabel("p99 |output| without deformation (mm)")
    ax2.set_title("false signal on the no-deformation examples")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = ROOT / "training" / "learning_curve.png"
    fig.savefig(out, dpi=110)
    return out


if __name__ == "__main__":
    print(main())
