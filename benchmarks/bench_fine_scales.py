"""Cost of the fine-scale step (:mod:`insar_denoise.inference.fine_scales`).

Random maps of the given sizes (a series of ``--dates`` dates, the least-squares
cumulative, 16 noise maps, the gate open everywhere: the most work), timed for
:func:`removal_map` and :func:`shrink_fine_scales` on one thread, peak RSS of the process.

    OMP_NUM_THREADS=1 python benchmarks/bench_fine_scales.py --sizes 512 1024 --dates 100
    # -> experiments/benchmarks/bench_fine_scales.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from insar_denoise.inference import fine_scales

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "bench_fine_scales.json"
N_NOISE = 16


def run(size: int, n_dates: int) -> dict:
    """Seconds of each part and the peak RSS (GB) after it, for one ``size``² scene."""
    rng = np.random.default_rng(0)
    series = rng.standard_normal((n_dates, size, size)).astype(np.float32)
    projection = rng.standard_normal((size, size)).astype(np.float32)
    noise = rng.standard_normal((N_NOISE, size, size)).astype(np.float32)
    gate = np.ones((size, size), np.float32)
    t0 = time.perf_counter()
    removal = fine_scales.removal_map(projection, noise, gate, (size, size))
    t1 = time.perf_counter()
    fine_scales.shrink_fine_scales(series, removal)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {
        "size_px": size,
        "dates": n_dates,
        "removal_s": round(t1 - t0, 2),
        "shrink_s": round(t2 - t1, 2),
        "peak_rss_gb": round(peak, 2),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--dates", type=int, default=100)
    args = p.parse_args(argv)
    rows = []
    for size in args.sizes:
        rows.append(run(size, args.dates))
        print(json.dumps(rows[-1]), flush=True)
    OUT.write_text(json.dumps({"runs": rows, "noise_maps": N_NOISE}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
