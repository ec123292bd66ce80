"""The three benchmark scenes where the shipped model does worst against the all-zero map.

Scenes of ``evaluate`` (in-distribution split, seed 0); per scene the de-planed RMSE of the
model and of the all-zero map; the three largest ``RMSE_model - RMSE_zero`` are drawn (truth,
raw last - first, model output, DEM) with their stratum, for the model card.

    python benchmarks/worst_scenes.py   # -> experiments/benchmarks/worst_scenes.{json,png}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from insar_denoise.inference.predict import predict_in_batches
from insar_denoise.models import load_model
from insar_denoise.models.normalization import deplane
from insar_denoise.scoring import benchmark_scenes as scn

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=40, help="scenes per amplitude")
    p.add_argument("--split", default="in", choices=scn.SPLITS)
    p.add_argument("--output", type=Path, default=OUT / "worst_scenes.json")
    args = p.parse_args(argv)
    model = load_model("default")
    sc = scn.generate(args.n, 0, size=64, n_dates=int(model.metadata["window"]), split=args.split)
    mask = sc.valid
    truth = deplane(torch.nan_to_num(sc.cumulative.double()), mask)
    pred = predict_in_batches(model, sc.displacement, sc.dem, 32).double()
    pred = deplane(torch.nan_to_num(pred), mask)
    disp = sc.displacement.double()
    raw = deplane(torch.nan_to_num(disp[:, -1] - disp[:, 0]), mask)

    def rmse(est: torch.Tensor) -> np.ndarray:
        err = torch.where(mask, est - truth, torch.zeros_like(est)) ** 2
        return torch.sqrt(err.sum((1, 2)) / mask.sum((1, 2)).clamp_min(1)).numpy()

    r_model, r_zero = rmse(pred), rmse(torch.zeros_like(truth))
    worst = np.argsort(r_model - r_zero)[::-1][:3]
    rows = []
    for i in worst:
        rows.append(
            {
                "scene": int(i),
                "amplitude_mm": float(sc.amplitude_mm[i]),
                "noise": str(sc.noise[i]),
                "source": str(sc.source[i]),
                "dem": str(sc.dem_kind[i]),
                "rmse_model_mm": float(r_model[i]),
                "rmse_zero_mm": float(r_zero[i]),
                "valid_fraction": float(mask[i].float().mean()),
                "p99_abs_model_mm": float(np.nanpercentile(np.abs(pred[i][mask[i]].numpy()), 99)),
            }
        )
    report = {
        "split": args.split,
        "n_scenes": len(sc),
        "share_model_worse_than_zero": float(np.mean(r_model > r_zero)),
        "worst": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    figure(worst, rows, truth, raw, pred, sc.dem, mask, args.output.with_suffix(".png"))
    print(json.dumps(report, indent=1))
    return 0


def figure(worst, rows, truth, raw, pred, dem, mask, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(13, 9.5))
    for r, (i, row) in enumerate(zip(worst, rows, strict=True)):
        m = mask[i].numpy()
        lim = max(
            1.0, float(np.abs(truth[i].numpy()[m]).max()), float(np.abs(pred[i].numpy()[m]).max())
        )
        panels = [
            ("truth (de-planed)", truth[i], "RdBu_r", lim),
            ("raw last - first", raw[i], "RdBu_r", None),
            ("model", pred[i], "RdBu_r", lim),
            ("DEM (m)", dem[i], "terrain", None),
        ]
        for c, (title, img, cmap, vlim) in enumerate(panels):
            a = np.where(m, img.numpy(), np.nan)
            ax = axes[r, c]
            if vlim is None and cmap == "RdBu_r":
                vlim = float(np.nanpercentile(np.abs(a), 99))
            kw = {"vmin": -vlim, "vmax": vlim} if vlim else {}
            im = ax.imshow(a, cmap=cmap, **kw)
            fig.colorbar(im, ax=ax, shrink=0.75, label="m" if cmap == "terrain" else "LOS (mm)")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("x (px)")
            ax.set_ylabel("y (px)")
        axes[r, 0].set_ylabel(
            f"{row['amplitude_mm']:g} mm {row['source']}, noise {row['noise']}\n"
            f"RMSE model {row['rmse_model_mm']:.2f} vs zero {row['rmse_zero_mm']:.2f} mm"
        )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
