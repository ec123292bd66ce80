"""The step scan's margins (insar_denoise.inference.step_scan): its largest z on the
no-deformation scenes of Benchmark v2 and on the signals at ideal SNR >= 10 that an
evaluation missed (r < 0.7), with the step date it picks and the z at the true one.

    python benchmarks/step_scan_margins.py --split shifted   # ~2 min a split on one thread
    python benchmarks/step_scan_margins.py --split in --fresh-seed 1   # fresh nulls only

The stack is prepared as the engine does before the gate (single-date unwrapping errors
removed, the stratified-delay correction where the relief check asks for it); every stack is
scanned here, but the engine scans only those of ``step_scan.MIN_DATES`` dates or more (the
summary's ``*_scanned`` numbers). Prints a row
per scene and writes ``experiments/benchmarks/step_scan_margins_{split}.json``; with
``--fresh-seed`` the no-deformation scenes of another seed (none tuned on) and
``step_scan_margins_{split}_seed{N}.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from detector_margins import chosen  # benchmarks/ is on the path when run

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import step_scan, stratification
from insar_denoise.inference.stack_runner import scene_date_variances
from insar_denoise.inference.unwrapping import MIN_DATES, unwrapping_fix

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
REPORT = OUT / "evaluate_v2_s26" / "metrics.json"


def prepared(batch, ds) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The stack relative to its first date as the gate sees it, the DEM, times, variances."""
    d = batch.displacement[0].numpy().astype(np.float32)
    dem = batch.dem[0].numpy()
    days = (ds.time.values - ds.time.values[0]).astype("timedelta64[D]").astype(float)
    if len(days) >= MIN_DATES:
        removed, _ = unwrapping_fix(d, dem)
        if removed is not None:
            d = d - removed
    date_var = scene_date_variances(d, 64)
    if len(days) >= stratification.MIN_DATES:
        fix, _, _ = stratification.plan(d, dem, days, date_var, 4, 16)
        if fix is not None:
            d = d - np.asarray(fix.delay(dem), np.float32)
    return d - d[:1], dem, days, date_var


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="shifted", choices=("in", "shifted"))
    p.add_argument("--report", type=Path, default=REPORT, help="evaluate's metrics.json")
    p.add_argument("--fresh-seed", type=int, default=None, help="nulls of this design seed")
    args = p.parse_args()
    report = json.loads(args.report.read_text())
    seed = int(report["seed"]) if args.fresh_seed is None else args.fresh_seed
    specs = design(int(report["n_per_split"]), seed, args.split)
    if args.fresh_seed is None:
        kinds = chosen(report, args.split)
    else:
        kinds = {s.index: "null" for s in specs if s.source_type == "none"}
    rows = []
    for spec in specs:
        if spec.index not in kinds:
            continue
        batch, ds = simulate(spec, args.split, int(report["size_px"]))
        d, dem, days, date_var = prepared(batch, ds)
        ok = np.isfinite(d).all(axis=0)
        zs = step_scan.step_zmaps(d, days, date_var, ok, dem)
        per_k = {k: max(float(z.max()) for z in by.values()) for k, by in zs.items()}
        truth = batch.deformation[0].numpy().reshape(len(days), -1)
        jumps = np.sqrt(np.mean(np.diff(truth, axis=0) ** 2, axis=1))
        true_k = int(np.argmax(jumps)) + 1 if jumps.max() > 0 else None
        best = max(per_k, key=per_k.get) if per_k else None
        row = {
            "index": spec.index,
            "kind": kinds[spec.index],
            "n_dates": spec.n_dates,
            "source_type": spec.source_type,
            "history": batch.history_names[int(batch.history[0])],
            "z_max": round(per_k[best], 2) if best is not None else 0.0,
            "step_date": best,
            "true_step_date": true_k,
            "z_at_true": None if true_k not in per_k else round(per_k[true_k], 2),
            "scanned": spec.n_dates >= step_scan.MIN_DATES,
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    # the engine scans stacks of step_scan.MIN_DATES dates or more only
    nulls = [r["z_max"] for r in rows if r["kind"] == "null" and r["scanned"]]
    above = [
        r["index"]
        for r in rows
        if r["kind"] == "missed" and r["scanned"] and r["z_max"] > max(nulls)
    ]
    over = [
        r["index"]
        for r in rows
        if r["kind"] == "null" and r["scanned"] and r["z_max"] > step_scan.THRESHOLD
    ]
    summary = {
        "seed": seed,
        "threshold": step_scan.THRESHOLD,
        "null_z_max_scanned": max(nulls),
        "null_z_max_all": max(r["z_max"] for r in rows if r["kind"] == "null"),
        "nulls_over_threshold": over,
        "missed_above": above,
    }
    print(json.dumps(summary))
    tail = "" if args.fresh_seed is None else f"_seed{args.fresh_seed}"
    path = OUT / f"step_scan_margins_{args.split}{tail}.json"
    path.write_text(json.dumps({"summary": summary, "scenes": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
