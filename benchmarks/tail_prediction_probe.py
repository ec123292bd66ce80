"""Probe (not shipped; model card design table (bi)): the second detector's noise prediction
made without the best-fitting source's tails.

The fill predicts the atmosphere inside its areas from the pixels around them (harmonic
interpolation), and a broad source's tails there are taken for atmosphere
(``benchmarks/gain_loss_stages.py``: a median 9 % of the peak on the reachable misses).
Here, at run time, the best-fitting elastic source (``elastic_sources.best_source`` on the
straight line's relief-free map) is subtracted from the pixels the prediction is made from;
the values outside the areas are not changed. ``--test`` chooses when:

- ``none``: always;
- ``differences`` / ``spectrum``: only where the source, fitted to the straight line of the
  even dates, lowers the misfit of the odd dates' on those pixels, and the other way round
  (the creep model's cross-validation), read by differences or with the line's noise maps'
  spectrum (``creep_model.residual_energy``);
- ``truth-tail`` (an oracle, design table (bl)): the true cumulative subtracted instead of a
  fitted source, and each date's true displacement from the pixels the areas' ramps predict
  each date from (``area_history``), the ceiling of any prediction that knows the tails;
- ``truth-residual`` (an oracle): the fill's residual set to the true cumulative inside the
  areas, the ceiling of any prediction at all (the areas' ramps still read their own).

Every run also records ``inside_areas``: the truth inside the filled areas, the engine's output
outside (its level matched on a 3 px ring), the ceiling of everything the fill does.

The scenes are the runs of ``--stages`` (``gain_loss_stages.json``) that reach the fill; each
prints and stores its scores beside those of that file (the shipped engine).

    python benchmarks/tail_prediction_probe.py --test spectrum \\
        --stages experiments/benchmarks/gain_loss_stages.json \\
        --output experiments/benchmarks/tail_prediction_probe_spectrum.json [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import json_ready


def _half_lines(referenced: np.ndarray, days: np.ndarray, date_var: np.ndarray) -> list:
    """The straight line's least-squares cumulatives of the even and the odd dates."""
    from insar_denoise.inference.creep_model import half_projections
    from insar_denoise.inference.significance import LINEAR_SEGMENTS

    return half_projections(referenced, days, date_var, LINEAR_SEGMENTS)


def run_one(split: str, index: int, draw: int, test: str) -> dict[str, Any]:
    """The engine on one scene with the fill's prediction made without the source's tail."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).parent))
    import fresh_draws as fd
    from scipy import ndimage

    from insar_denoise.evaluation.referee_scoring import offset_free_scores
    from insar_denoise.inference import area_history, stack_path
    from insar_denoise.inference import bilaplacian_support as bs
    from insar_denoise.inference.creep_model import residual_energy
    from insar_denoise.inference.elastic_sources import best_source

    cap: dict[str, Any] = {}
    detect, banded, fill, creep = (
        bs.detect,
        bs.elevation_free_banded,
        bs.harmonic_fill,
        stack_path.creep_series,
    )

    def _creep(referenced, dem, days, date_var, segments):
        cap["series"] = (referenced, days, date_var)
        return creep(referenced, dem, days, date_var, segments)

    def _detect(gate_map, maps, shape, *a, **k):
        cap["noise"] = np.nan_to_num(bs.noise_stack(maps[2], shape[0], np.float64))
        found = detect(gate_map, maps, shape, *a, **k)
        cap["area"] = found.new
        return found

    def _banded(lin, ok, dem, band, fit_on):
        cap["ok"], cap["dem"] = ok.copy(), dem
        return banded(lin, ok, dem, band, fit_on=fit_on)

    def _fill(values, unknown):
        ok, dem = cap["ok"], cap["dem"]
        area, pixels = unknown & ok, ok & ~unknown
        if test.startswith("truth"):
            cap["family"] = test
            true = np.where(ok, cap["truth"], 0.0)
            if test == "truth-residual":
                return np.where(unknown, values - true, values)
            return np.where(unknown, fill(values - true, unknown), values)
        if test != "none":
            halves = _half_lines(*cap["series"])
            noise = cap["noise"] if test == "spectrum" else None

            def energy(x):
                return residual_energy(np.where(pixels & np.isfinite(x), x, np.nan), dem, noise)

            fitted = 0.0
            for a, b in ((0, 1), (1, 0)):
                half = np.where(ok, np.nan_to_num(halves[a]), np.nan)
                fitted += energy(halves[b] - best_source(half, area, ok, dem).cumulative)
            cap["held_out_ratio"] = fitted / max(sum(energy(h) for h in halves), 1e-300)
            if not cap["held_out_ratio"] < 1.0:
                return fill(values, unknown)
        source = best_source(np.where(ok, values, np.nan), area, ok, dem)
        cap["family"] = source.family
        tail = np.where(ok, source.cumulative, 0.0)
        return np.where(unknown, fill(values - tail, unknown), values)

    date_residual = area_history._DateResidual.__call__

    def _date_residual(self, image):
        # the prediction made from the date less its truth: the prediction is linear, so the
        # shipped residual plus the prediction of the (relief-free) truth
        k = cap["date"] = cap.get("date", -1) + 1
        true = cap["true_series"][k]
        true = true - self.basis @ (self.fit @ true[self.outside])
        return date_residual(self, image) + self.predict(true)[self.keep]

    if test == "truth-tail":
        area_history._DateResidual.__call__ = _date_residual
    bs.detect, bs.elevation_free_banded, bs.harmonic_fill = _detect, _banded, _fill
    stack_path.creep_series = _creep
    try:
        item = f"{split}:{index}" + (f":{draw}" if draw else "")
        spec, batch, ds, truth, valid = fd.scene_draw(item)
        series = batch.deformation[0].numpy().astype(np.float64)
        cap["truth"], cap["true_series"] = truth, series - series[0]
        res = fd.run_shipped(ds, spec.n_dates)
        rec = fd.output_record(res, truth, valid)
    finally:
        bs.detect, bs.elevation_free_banded, bs.harmonic_fill = detect, banded, fill
        stack_path.creep_series = creep
        area_history._DateResidual.__call__ = date_residual
    ceiling = None
    if cap.get("area") is not None:
        cum = np.asarray(res["cumulative_deformation"].values, np.float64)
        mask = np.asarray(valid, bool) & np.isfinite(cum) & np.isfinite(truth)
        area = cap["area"] & mask
        ring = ndimage.binary_dilation(area, iterations=3) & ~area & mask
        level = np.median((cum - truth)[ring if ring.any() else mask])
        ceiling = offset_free_scores(np.where(area, truth + level, cum), truth, mask)
    return {
        "split": split,
        "index": index,
        "draw": draw,
        "tail_family": cap.get("family"),
        "held_out_ratio": cap.get("held_out_ratio"),
        "probe": rec["model"],
        "inside_areas": ceiling,
        "zero_rmse_mm": rec["zero_rmse_mm"],
    }


def inside(s: dict[str, Any]) -> bool:
    """Gain 0.9-1.1 and r >= 0.9."""
    from insar_denoise.evaluation.gain_bound import in_gain_target

    return in_gain_target(s["gain"], s["r"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--test",
        choices=("none", "differences", "spectrum", "truth-tail", "truth-residual"),
        default="spectrum",
    )
    p.add_argument("--stages", type=Path, required=True, help="gain_loss_stages.json")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    runs = [r for r in json.loads(args.stages.read_text())["scenes"] if "line" in r["peak_bias"]]
    jobs = [(r["split"], r["index"], r["draw"], args.test) for r in runs]
    rows = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for base, row in zip(runs, pool.map(run_one, *zip(*jobs, strict=True)), strict=True):
            row["shipped"] = base["scores"]
            rows.append(row)
            a, b = row["shipped"], row["probe"]
            print(
                f"{row['split']:8s} {row['index']:3d} draw {row['draw']}  RMSE "
                f"{a['rmse_mm']:.2f} -> {b['rmse_mm']:.2f}  gain {a['gain']:.3f} -> "
                f"{b['gain']:.3f}  tail {row['tail_family']} ratio {row['held_out_ratio']}",
                flush=True,
            )
    diff = [r["probe"]["rmse_mm"] - r["shipped"]["rmse_mm"] for r in rows]
    summary = {
        "test": args.test,
        "n": len(rows),
        "tail_taken_out": sum(r["tail_family"] is not None for r in rows),
        "better_by_0.02mm": sum(d < -0.02 for d in diff),
        "worse_by_0.02mm": sum(d > 0.02 for d in diff),
        "inside_shipped": sum(inside(r["shipped"]) for r in rows),
        "inside_probe": sum(inside(r["probe"]) for r in rows),
        "inside_with_truth_inside_areas": sum(
            r["inside_areas"] is not None and inside(r["inside_areas"]) for r in rows
        ),
        "rmse_change_sum_mm": float(np.sum(diff)),
    }
    report = {"kind": "tail_prediction_probe", "summary": summary, "runs": rows}
    args.output.write_text(json.dumps(json_ready(report), indent=1, allow_nan=False))
    print(json.dumps(json_ready(summary), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
