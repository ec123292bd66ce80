"""Learning curve of the shipped model and the training experiments, from their val.csv logs.

The shipped model was pre-trained on the simulator's full prior (on a lent H200) and then
fine-tuned on two CPU cores with the conservative prior of
``experiments/training/default.yaml``. The two
stages validate on different fixed sets, so the left panel shows RMSE relative to the map
of zeros on the same set (below 1 = better than doing nothing).

python scripts/plot_learning_curve.py  # -> experiments/training/learning_curve.png
"""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT / "training" / "experiments"
RUNS = {
    "pre-training: full prior, 0.35 M params, H200": EXP / "pretrain_gpu_val.csv",
    "capacity: 1.4 M params, H200": EXP / "gpu_medium_val.csv",
    "fine-tune (shipped): conservative prior, 2 CPU cores": ROOT / "training" / "val.csv",
}


def read(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


FINETUNE_START = 1_750_272  # examples seen by the pre-trained state the fine-tune started from


def main() -> Path:
    fig, (ax, ax_ft, ax2) = plt.subplots(1, 3, figsize=(16, 4.5))
    for label, path in RUNS.items():
        rows = read(path)
        x = [r["examples_seen"] for r in rows]
        ratio = [r["rmse_mm_model"] / r["rmse_mm_zero"] for r in rows]
        if "fine-tune" in label:
            ft = [v - FINETUNE_START for v in x]
            ax_ft.plot(ft, ratio, "o-", color="C2", label=label)
            changed = [
                ft[i]
                for i in range(1, len(rows))
                if rows[i]["rmse_mm_zero"] != rows[i - 1]["rmse_mm_zero"]
            ]
            for c in changed:
                ax_ft.axvline(
                    c, color="grey", ls=":", label="amplitudes 0.3-12 -> 0.3-20 mm (new val set)"
                )
        else:
            ax.plot(x, ratio, "o-", label=label)
        ax2.plot(x, [r["p99_nodef_mm_model"] for r in rows], "o-", label=label)
    for a in (ax, ax_ft):
        a.axhline(1.0, color="k", ls="--", label="all-zero map")
        a.set_ylabel("validation RMSE / all-zero map RMSE")
        a.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("training examples seen")
    ax.set_title("pre-training (full prior, 256 val. examples)")
    ax_ft.set_xlabel("fine-tune examples seen (after 1.75 M pre-training)")
    ax_ft.set_title("fine-tune (conservative prior, 128 val. examples)")
    ax2.axhline(1.0, color="r", ls=":", label="target < 1 mm")
    ax2.set_xscale("log")
    ax2.set_xlabel("training examples seen")
    ax2.set_ylabel("p99 |output| without deformation (mm)")
    ax2.set_title("false signal on the no-deformation examples")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = ROOT / "training" / "learning_curve.png"
    fig.savefig(out, dpi=100)
    return out


if __name__ == "__main__":
    print(main())
