"""Time and peak memory of the second detector (``inference/bilaplacian_support.py``) per
scene size.

Each size runs in a fresh process (peak RSS from ``resource``) on 16 + 16 noise maps and two
maps of steep-spectrum random fields holding a 6 mm bump (``--bumps``: its widths, so that a
small and a large support are grown and filled); the engine runs the step once per gated
scene of at most ``MAX_PIXELS`` pixels. Then the areas' histories in time
(``inference/area_history.py``) over ``--dates`` dates, each a new field plus the bump times
a step at mid-stack (``ramp_seconds``). Prints one line per run and writes JSON.

    python benchmarks/bench_second_detector.py --sizes 512 1024 \\
        -o experiments/benchmarks/bench_second_detector.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_fault_trace import run_children  # noqa: E402

#: child code (after ``n`` is set): ``field()``, a 2 mm steep-spectrum random field (``k⁻³·⁵``
#: power, as turbulence) per call, from ``rng`` (seed 0); shared with bench_gate_history.py
STEEP_FIELDS = """
rng = np.random.default_rng(0)
k = np.hypot(*np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij"))
amp = np.where(k > 0, np.maximum(k, 1.0 / n) ** -1.75, 0.0).astype(np.float32)
def field():
    f = np.fft.ifft2(amp * np.fft.fft2(rng.standard_normal((n, n)).astype(np.float32))).real
    return (2.0 * f / f.std()).astype(np.float32)
"""

CHILD = (
    """
import json, resource, time
import numpy as np
from insar_denoise.inference import bilaplacian_support as bls
from insar_denoise.inference.area_history import area_ramps
n, n_dates = {n}, {dates}
"""
    + STEEP_FIELDS
    + """
noise = np.stack([field() for _ in range(16)])
line_noise = np.stack([field() for _ in range(16)])
yy, xx = np.mgrid[:n, :n] - n / 2.0
bump = (6.0 * np.exp(-(xx**2 + yy**2) / (2.0 * {bump}**2))).astype(np.float32)
maps = (noise, field() + bump, line_noise, field() + bump)
gate = np.zeros((n, n), np.float32)
start = time.perf_counter()
found = bls.detect(gate, maps, (n, n))
seconds = time.perf_counter() - start
new = found.new
days = np.arange(n_dates) * 12.0
def rows(t, lo, hi):
    rng_t = np.random.default_rng(1000 + t)
    f = np.fft.ifft2(amp * np.fft.fft2(rng_t.standard_normal((n, n)).astype(np.float32))).real
    return (2.0 * f / f.std() + (t >= n_dates // 2) * bump)[lo:hi]
start = time.perf_counter()
ramps = [] if found.new is None else area_ramps(
    rows, found.new, found.outside, None, days, np.ones(n_dates))
ramp_seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
print(json.dumps(dict(size=n, bump_px={bump}, seconds=round(seconds, 1), peak_rss_gb=round(rss, 3),
                      new_px=0 if new is None else int(new.sum()), dates=n_dates,
                      ramp_seconds=round(ramp_seconds, 1), ramps=len(ramps))))
"""
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument(
        "--bumps", type=float, nargs="+", default=[14.0, 120.0], help="bump widths (px)"
    )
    ap.add_argument("--dates", type=int, default=100, help="dates of the history step")
    ap.add_argument("-o", "--output", type=Path, default=Path("bench_second_detector.json"))
    args = ap.parse_args()
    codes = [CHILD.format(n=n, bump=b, dates=args.dates) for n in args.sizes for b in args.bumps]
    run_children(codes, args.output)


if __name__ == "__main__":
    main()
