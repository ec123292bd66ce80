"""Time and peak memory of the unwrapping-error search (``inference/unwrapping.py``) per size.

Each size runs in a fresh process (peak RSS from ``resource``) on a stack of Gaussian-filtered
noise (5 mm per date) with one error (an ellipse of one half wavelength on one date); the
engine runs this search once per stack of at most ``MAX_PIXELS`` pixels. With ``--lazy`` the
stack is first written as one GeoTIFF per date (another process) and searched as the engine
searches a lazy input: opened by the package's reader, read one date at a time; its peak RSS
holds the imports (~0.4 GB) and GDAL's block cache (``--gdal-cache-mb``; by default 5 % of
the machine's RAM, which a whole run's reading fills as well). Prints one line per size and
writes JSON.

    python benchmarks/bench_unwrapping.py --sizes 512 1024 --dates 100 \\
        -o experiments/benchmarks/bench_unwrapping.json
    python benchmarks/bench_unwrapping.py --lazy --sizes 1024 2048 --dates 100 \\
        -o experiments/benchmarks/bench_unwrapping_lazy.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

STACK = """
import numpy as np
from scipy import ndimage
n, t = {n}, {t}
rng = np.random.default_rng(0)
yy, xx = np.mgrid[:n, :n]
error = ((yy - n / 3) / (n / 8)) ** 2 + ((xx - n / 2) / (n / 6)) ** 2 <= 1


def date(i):
    d = ndimage.gaussian_filter(rng.normal(size=(n, n)), 6.0)
    d = (5.0 * d / 0.047).astype(np.float32)  # 5 mm: the filtered field has std 1 / (2 sqrt(pi) 6)
    if i == t // 2:
        d[error] += 27.7
    return d
"""

CHILD = (
    STACK
    + """
import json, resource, time
from insar_denoise.inference import unwrapping
d = np.stack([date(i) for i in range(t)])
start = time.perf_counter()
jumps = unwrapping.find_jumps(d)
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
print(json.dumps(dict(size=n, dates=t, seconds=round(seconds, 1), peak_rss_gb=round(rss, 3),
                      stack_gb=round(d.nbytes / 1e9, 3), found=len(jumps))))
"""
)

WRITE = (
    STACK
    + """
import rasterio
from rasterio.transform import from_origin
for i in range(t):
    with rasterio.open(
        f"{folder}/disp_2020{{i // 28 + 1:02d}}{{i % 28 + 1:02d}}.tif", "w", driver="GTiff",
        width=n, height=n, count=1, dtype="float32", crs="EPSG:32636",
        transform=from_origin(500000, 4000000, 100, 100), tiled=True,
    ) as dst:
        dst.write(date(i), 1)
"""
)

LAZY = """
import glob, json, resource, time
from insar_denoise.inference import unwrapping
from insar_denoise.io.geotiff import read_single_band_files
stack, _, _ = read_single_band_files(sorted(glob.glob("{folder}/*.tif")), dict(y=512, x=512))
start = time.perf_counter()
removed, note = unwrapping.unwrapping_fix(stack.data.astype("float32"))
seconds = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB -> GB
print(json.dumps(dict(size={n}, dates={t}, lazy=True, seconds=round(seconds, 1),
                      peak_rss_gb=round(rss, 3), stack_gb=round(4 * {n} ** 2 * {t} / 1e9, 3),
                      found=len(json.loads(note)) if note.startswith("[") else 0)))
"""


def child(code: str, env: dict | None = None) -> str:
    """Run ``code`` in a fresh Python (``env`` added to the environment); its last line."""
    env = {**os.environ, **(env or {})}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if done.returncode:
        sys.exit(done.stderr.strip().splitlines()[-1])
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--dates", type=int, default=100)
    ap.add_argument("--lazy", action="store_true", help="search GeoTIFFs read one date at a time")
    ap.add_argument(
        "--gdal-cache-mb", type=int, help="GDAL_CACHEMAX of the search (default: GDAL's)"
    )
    ap.add_argument("-o", "--output", type=Path, default=Path("bench_unwrapping.json"))
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        if args.lazy:
            with tempfile.TemporaryDirectory() as folder:
                child(WRITE.format(n=n, t=args.dates, folder=folder))
                cache = {"GDAL_CACHEMAX": str(args.gdal_cache_mb)} if args.gdal_cache_mb else {}
                row = json.loads(child(LAZY.format(n=n, t=args.dates, folder=folder), cache))
                row["gdal_cache_mb"] = args.gdal_cache_mb or "GDAL default (5 % of RAM)"
        else:
            row = json.loads(child(CHILD.format(n=n, t=args.dates)))
        print(json.dumps(row))
        rows.append(row)
    args.output.write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
