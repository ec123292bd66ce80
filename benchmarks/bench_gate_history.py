"""Time and peak memory of the network's history where the gate returns its map
(``inference/gate_history.py``) per scene size.

Each size runs in a fresh one-thread process (peak RSS from ``resource``): ``--dates`` dates
of steep-spectrum random fields (2 mm) holding a 20 mm bump (``n / 16`` px wide) that steps at
mid-stack, the network's series a straight line in time through 1.15 times the bump, the gate
open on the bump. ``gate_ramp`` reads every date twice (which pixels are complete, then each
date's coefficient on the pattern); ``write_ramp`` rewrites the gate's pixels of every date.
The peak includes the input and the series (two ``(T, H, W)`` float32 arrays), which the
engine holds anyway. Prints one line per run and writes JSON.

    python benchmarks/bench_gate_history.py --sizes 512 1024 \\
        -o experiments/benchmarks/bench_gate_history.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_fault_trace import run_children  # noqa: E402
from bench_second_detector import STEEP_FIELDS  # noqa: E402

CHILD = (
    """
import json, resource, time
import numpy as np
from insar_denoise.inference import gate_history as gh
n, n_dates = {n}, {dates}
"""
    + STEEP_FIELDS
    + """
yy, xx = np.mgrid[:n, :n] - n / 2.0
bump = (20.0 * np.exp(-(xx**2 + yy**2) / (2.0 * (n / 16) ** 2))).astype(np.float32)
data = np.empty((n_dates, n, n), np.float32)
for t in range(n_dates):
    data[t] = field() + (t >= n_dates // 2) * bump
data -= data[0]
frac = np.linspace(0.0, 1.0, n_dates, dtype=np.float32)
series = frac[:, None, None] * (1.15 * bump)
gate = (bump > 0.5).astype(np.float32)
days = np.arange(n_dates) * 12.0
rows = lambda t, a, b: data[t, a:b]
start = time.perf_counter()
found = gh.gate_ramp(series, gate, rows, None, days, np.ones(n_dates))
if found is not None:
    gh.write_ramp(series, gate, found)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
c = n // 2
print(json.dumps(dict(size=n, dates=n_dates, seconds=round(seconds, 1), peak_rss_gb=round(rss, 3),
                      gate_px=int(gate.sum()), ramp=found is not None,
                      centre_cumulative_mm=round(float(series[-1, c, c] - series[0, c, c]), 2))))
"""
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--dates", type=int, default=100)
    ap.add_argument("-o", "--output", type=Path, default=Path("bench_gate_history.json"))
    args = ap.parse_args()
    run_children([CHILD.format(n=n, dates=args.dates) for n in args.sizes], args.output)


if __name__ == "__main__":
    main()
