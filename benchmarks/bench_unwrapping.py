"""Time and peak memory of the unwrapping-error search (``inference/unwrapping.py``) per size.

Each size runs in a fresh process (peak RSS from ``resource``) on a stack of Gaussian-filtered
noise (5 mm per date) with one error (an ellipse of one half wavelength on one date); the
engine runs this search once per in-memory stack of at most ``MAX_PIXELS`` pixels. Prints one
line per size and writes JSON.

    python benchmarks/bench_unwrapping.py --sizes 512 1024 --dates 100 \\
        -o experiments/benchmarks/bench_unwrapping.json
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
from insar_denoise.inference import unwrapping
n, t = {n}, {t}
rng = np.random.default_rng(0)
d = np.stack([ndimage.gaussian_filter(rng.normal(size=(n, n)), 6.0) for _ in range(t)])
d = (5.0 * d / d.std()).astype(np.float32)
yy, xx = np.mgrid[:n, :n]
d[t // 2][((yy - n / 3) / (n / 8)) ** 2 + ((xx - n / 2) / (n / 6)) ** 2 <= 1] += 27.7
start = time.perf_counter()
jumps = unwrapping.find_jumps(d)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
print(json.dumps(dict(size=n, dates=t, seconds=round(seconds, 1), peak_rss_gb=round(rss, 3),
                      stack_gb=round(d.nbytes / 1e9, 3), found=len(jumps))))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--dates", type=int, default=100)
    ap.add_argument("-o", "--output", type=Path, default=Path("bench_unwrapping.json"))
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        code = CHILD.format(n=n, t=args.dates)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode:
            sys.exit(done.stderr.strip().splitlines()[-1])
        row = json.loads(done.stdout.strip().splitlines()[-1])
        print(json.dumps(row))
        rows.append(row)
    args.output.write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
