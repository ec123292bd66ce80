"""Is one 9-date window the information limit? The classical corrections on longer windows.

The benchmark (in-distribution split, baselines only, no model) is run with windows of
``--windows`` dates; per window length the detection threshold, median correlation at 10 and
20 mm and RMSE of the best classical corrections are reported. If they improve markedly with
more dates, a model with a longer window (or more windows combined) has room to gain.

    python benchmarks/window_length.py   # -> experiments/benchmarks/window_length.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from insar_denoise.evaluation.runner import run_benchmark

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
METHODS = ("filter", "stack", "best")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", default="9,17,33", help="dates per window, comma-separated")
    p.add_argument("--n", type=int, default=24, help="scenes per amplitude")
    p.add_argument("--output", type=Path, default=OUT / "window_length.json")
    args = p.parse_args(argv)
    report: dict = {"n_per_amplitude": args.n, "windows": {}}
    for window in (int(w) for w in args.windows.split(",")):
        start = time.perf_counter()
        m = run_benchmark(None, n_per_amplitude=args.n, seed=5, window=window).metrics
        amp = m["groups"]["amplitude"]
        row = {
            "detection_threshold_mm": {k: m["detection_threshold_mm"]["all"][k] for k in METHODS},
            "corr_10mm": {k: amp["10"]["corr"][k] for k in METHODS},
            "corr_20mm": {k: amp["20"]["corr"][k] for k in METHODS},
            "rmse_all_mm": {k: m["groups"]["all"]["all"]["rmse_mm"][k] for k in (*METHODS, "zero")},
            "sigma_px": m["sigma_tuning"]["sigma_px"],
            "wall_s": round(time.perf_counter() - start, 1),
        }
        report["windows"][str(window)] = row
        print(window, json.dumps(row), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
