"""Time and peak memory of the fault-trace search (``inference/fault_trace.py``) per scene size.

Each size runs in a fresh process (peak RSS from ``resource``) on a correlated random map
(Gaussian-filtered noise) with a gap; the engine runs this search once per gated scene of
at most ``MAX_PIXELS`` pixels. Prints one line per size and writes JSON.

    python benchmarks/bench_fault_trace.py --sizes 512 1024 2048 \\
        -o experiments/benchmarks/bench_fault_trace.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, time
import numpy as np
from scipy import ndimage
from insar_denoise.inference import fault_trace
n = {n}
p = ndimage.gaussian_filter(np.random.default_rng(0).normal(size=(n, n)), 6.0)
p[n // 10 : n // 5, n // 4 : n // 2] = np.nan
start = time.perf_counter()
trace = fault_trace.find_trace(p)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
print(json.dumps(dict(size=n, seconds=round(seconds, 1), peak_rss_gb=round(rss, 3),
                      found=trace is not None)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("-o", "--output", type=Path, default=Path("bench_fault_trace.json"))
    args = ap.parse_args()
    run_children([CHILD.format(n=n) for n in args.sizes], args.output)


def run_children(codes: list[str], output: Path) -> list[dict]:
    """Run each code in a fresh one-thread process, print its last line (JSON) and write
    them all to ``output``."""
    rows = []
    for code in codes:
        out = subprocess.run(
            [sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            env={"OMP_NUM_THREADS": "1", "PATH": ""},
        )
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    output.write_text(json.dumps({"threads": 1, "runs": rows}, indent=2) + "\n")
    print(f"wrote {output}")
    return rows


if __name__ == "__main__":
    main()
