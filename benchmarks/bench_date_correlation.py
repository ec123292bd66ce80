"""Cost of the ``correlated_dates`` check (:mod:`insar_denoise.trust.date_correlation`).

Times :func:`excess_date_correlation` (a regular subsample of at most ``MAX_PX`` pixels, the
engine's date variances from 16 crops) on in-memory stacks of 100 dates; prints the seconds
and writes JSON::

    python benchmarks/bench_date_correlation.py \
        -o experiments/benchmarks/bench_date_correlation.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from insar_denoise.trust.date_correlation import MAX_PX, excess_date_correlation


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 2048])
    p.add_argument("--dates", type=int, default=100)
    p.add_argument("-o", "--output", type=Path, default=Path("bench_date_correlation.json"))
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    days = np.arange(args.dates) * 12.0
    rows = []
    for size in args.sizes:
        disp = rng.normal(0.0, 3.0, (args.dates, size, size)).astype(np.float32)
        series = np.zeros_like(disp)
        start = time.perf_counter()
        factor = excess_date_correlation(disp, series, days)
        rows.append({"size_px": size, "dates": args.dates, "seconds": time.perf_counter() - start})
        print(f"{size}² x {args.dates} dates: {rows[-1]['seconds']:.2f} s (factor {factor:.2f})")
    report = {"max_px": MAX_PX, "threads": "as set by OMP_NUM_THREADS", "runs": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
