"""Fault-trace profile widths on fresh creep scenes: gain, r and RMSE through the engine.

``inference/fault_trace.py`` fits the profile across a detected trace with a dislocation of
width ``W`` (and top depth) plus an offset and a linear slope over ±``HALF_WIDTH_PX``, then
inserts the dislocation (tapered from 3/4 of that half-width). This script runs the whole
engine (``denoise_dataset``, shipped model) on every creep scene of fresh Benchmark v2 designs
(seeds 1 and 2 by default, both splits, 192 px) once per width set, and reports per scene and
in total: r, gain (slope of output on truth), RMSE and the zero map's RMSE, all up to a
constant, on the scored pixels (``valid``), and the fitted width. JSON out.

    python benchmarks/creep_widths.py -o experiments/benchmarks/creep_widths.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference import fault_trace as ft
from insar_denoise.models import load_model

#: width sets compared (px): the shipped one first
WIDTH_SETS: dict[str, tuple[float, ...]] = {
    "shipped": ft.PROFILE_WIDTHS,
    "up_to_64": (2.0, 4.0, 8.0, 16.0, 32.0, 64.0),
}


def score(cum: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> dict:
    """r, gain, RMSE and the zero map's RMSE of ``cum`` against ``truth``, medians removed."""
    ok = valid & np.isfinite(cum)
    o, t = cum[ok] - np.median(cum[ok]), truth[ok] - np.median(truth[ok])
    r = float(np.corrcoef(o, t)[0, 1]) if o.std() > 0 else 0.0
    return dict(
        r=round(r, 4),
        gain=round(float((o * t).sum() / (t * t).sum()), 4),
        rmse_mm=round(float(np.sqrt(np.mean((o - t) ** 2))), 4),
        zero_rmse_mm=round(float(np.sqrt(np.mean(t**2))), 4),
    )


def summarise(rows: list[dict]) -> dict:
    """Per width set: scenes detected (r >= 0.7), median gain and median |gain - 1| of the
    detected, total RMSE."""
    out = {}
    for name in WIDTH_SETS:
        res = [r[name] for r in rows]
        det = [x for x in res if x["r"] >= 0.7]
        out[name] = dict(
            n=len(res),
            detected=len(det),
            median_gain_detected=round(statistics.median([x["gain"] for x in det]), 3)
            if det
            else None,
            median_abs_gain_error_detected=round(
                statistics.median([abs(x["gain"] - 1) for x in det]), 3
            )
            if det
            else None,
            rmse_sum_mm=round(sum(x["rmse_mm"] for x in res), 2),
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n", type=int, default=84, help="scenes per split in the design")
    ap.add_argument("-o", "--output", type=Path, default=Path("creep_widths.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model("default")
    rows = []
    for seed in args.seeds:
        for split in ("in", "shifted"):
            for spec in design(args.n, seed, split):
                if spec.source_type != "creep":
                    continue
                batch, ds = simulate(spec, split, 192)
                truth, valid = batch.cumulative[0].numpy(), batch.valid[0].numpy()
                row = dict(seed=seed, split=split, index=spec.index, n_dates=spec.n_dates)
                row["amplitude_mm"] = round(float(spec.amplitude_mm), 3)
                for name, widths in WIDTH_SETS.items():
                    ft.PROFILE_WIDTHS = widths
                    out = denoise_dataset(ds, model, progress=False)
                    note = out.attrs.get(ft.TRACE_ATTR, "")
                    row[name] = score(out["cumulative_deformation"].values, truth, valid)
                    row[name]["width_px"] = (
                        json.loads(note)["width_px"] if note[:1] == "{" else None
                    )
                ft.PROFILE_WIDTHS = WIDTH_SETS["shipped"]
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = dict(width_sets=WIDTH_SETS, seeds=args.seeds, summary=summarise(rows), scenes=rows)
    print(json.dumps(result["summary"], indent=1))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
