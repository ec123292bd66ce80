"""Cost of growing the filled areas to an elastic source's reach (`source_extent`).

A Mogi source (the simulator's) under white noise, its upper part given as the detected area,
at each size; one thread. Prints and writes JSON::

    python benchmarks/bench_source_extent.py -o experiments/benchmarks/bench_source_extent.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from insar_denoise.inference.elastic_sources import source_extent
from insar_denoise.synth.mogi import mogi_surface


def scene(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A Mogi source ``n / 8`` px deep at the centre (mm, line of sight at 25° incidence) with
    1 mm of white noise, and its detected area (a disc of ``n / 4`` px)."""
    c = torch.arange(n, dtype=torch.float64) - n / 2
    east, north, up = mogi_surface(
        c[None, :] + 0.0 * c[:, None],
        -c[:, None] + 0.0 * c[None, :],
        x0_m=0.0,
        y0_m=0.0,
        depth_m=n / 8,
        volume_change_m3=(n / 8) ** 2 / 20.0,
    )
    los = np.array([-0.397, -0.145, 0.906])
    values = 1e3 * sum(v * x.numpy() for v, x in zip(los, (east, north, up), strict=True))
    values += np.random.default_rng(0).normal(0.0, 1.0, values.shape)
    rows, cols = np.mgrid[:n, :n] - n / 2
    return values, np.hypot(rows, cols) < n / 4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("-o", "--output", type=Path, default=Path("bench_source_extent.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for n in args.sizes:
        values, area = scene(n)
        t0 = time.perf_counter()
        _, note = source_extent(values, area, np.ones(values.shape, bool), None, 0.75)
        row = {"size_px": n, "seconds": round(time.perf_counter() - t0, 2), **note}
        row["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"threads": 1, "runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
