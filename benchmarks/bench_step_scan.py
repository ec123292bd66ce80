"""Time and memory of the step scan (insar_denoise.inference.step_scan) on synthetic stacks.

    OMP_NUM_THREADS=1 python benchmarks/bench_step_scan.py   # ~5 min

Each size is scanned twice: the plain step (the broad step where nothing else is found) and
the step beyond a straight line in time (where the second detector fills areas).

Correlated noise with a broad bowl from one date on, at the sizes the scan runs on (it skips
scenes over ``step_scan.MAX_PIXELS``); prints a row per size and writes
``experiments/benchmarks/bench_step_scan.json``.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
from scipy import ndimage

from insar_denoise.inference import step_scan

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "bench_step_scan.json"
RUNS = ((192, 72), (512, 100))


def stack(size: int, n_dates: int, seed: int = 0) -> np.ndarray:
    """``(T, size, size)`` float32 mm: 3 mm correlated noise, a 6 mm bowl from mid-stack."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_dates, size, size), np.float32)
    yy, xx = np.mgrid[:size, :size]
    bowl = -6.0 * np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 3) ** 2))
    for t in range(n_dates):
        noise = ndimage.gaussian_filter(rng.normal(size=(size, size)), 3)
        out[t] = 3.0 * noise / noise.std() + (t >= n_dates // 2) * bowl
    return out - out[:1]


def main() -> None:
    rows = []
    for size, n_dates in RUNS:
        series = stack(size, n_dates)
        days = np.arange(n_dates) * 12.0
        ok = np.ones((size, size), bool)
        start = time.perf_counter()
        support, z, k = step_scan.step_support(series, days, np.full(n_dates, 9.0), ok)
        seconds = time.perf_counter() - start
        # the step beyond steady motion (step_beyond_fill, where the second detector fills)
        start = time.perf_counter()
        step_scan.step_support(series, days, np.full(n_dates, 9.0), ok, steady=True)
        row = {
            "size": size,
            "dates": n_dates,
            "seconds": round(seconds, 1),
            "steady_seconds": round(time.perf_counter() - start, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),
            "z": round(z, 2),
            "step_date": k,
            "support_share": round(float(support.mean()), 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    OUT.write_text(json.dumps({"threads": 1, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
