"""Time and peak memory of the choice of pixels a broad filled area's noise is predicted from
(``bilaplacian_support.prediction_pixels``) per scene size.

Each size runs in a fresh one-thread process (peak RSS from ``resource``): a disk covering a
third of the scene (the filled areas), the straight line's map a broad 8 mm bump (``n / 5``
px wide, its tails across the disk's edge) on a 2 mm steep-spectrum random field, and 16
noise maps of such fields. The step removes the noise maps' elevation fit, factorises the
harmonic prediction twice (from just outside the disk and from beyond a band around it) and
solves it for the map and every noise map. Prints one line per run and writes JSON.

    python benchmarks/bench_prediction_margin.py --sizes 512 1024 \\
        -o experiments/benchmarks/bench_prediction_margin.json
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
from insar_denoise.inference import bilaplacian_support as bls
n = {n}
"""
    + STEEP_FIELDS
    + """
yy, xx = np.mgrid[:n, :n] - n / 2.0
area = np.hypot(yy, xx) < 0.325 * n
ok = np.ones((n, n), bool)
bump = 8.0 * np.exp(-(xx**2 + yy**2) / (2.0 * (n / 5) ** 2))
lin = field() + bump
noise = np.stack([field() for _ in range(16)])
start = time.perf_counter()
got = bls.prediction_pixels(lin, area, ok & ~area, ok, noise, None)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
print(json.dumps(dict(size=n, area_share=round(float(area.mean()), 3), seconds=round(seconds, 1),
                      peak_rss_gb=round(rss, 3), beyond_band=bool((got != (ok & ~area)).any()))))
"""
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("-o", "--output", type=Path, default=Path("bench_prediction_margin.json"))
    args = ap.parse_args()
    run_children([CHILD.format(n=n) for n in args.sizes], args.output)


if __name__ == "__main__":
    main()
