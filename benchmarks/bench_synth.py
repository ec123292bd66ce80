"""Throughput of ``simulate_batch`` (examples per second) on CPU, and CUDA when present.

``ex/s`` is wall-clock throughput; ``ex/cpu-s`` divides by the process CPU time instead,
which stays meaningful when other jobs share the cores (with one thread it is the
throughput of an idle core).

Usage: ``python benchmarks/bench_synth.py [--batch 32] [--seconds 3] [--threads 1 2]``.
Prints a table and writes ``experiments/benchmarks/bench_synth.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from insar_denoise.synth import SimConfig, simulate_batch

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "bench_synth.json"
SHAPES = ((9, 64), (9, 128))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def measure(n_dates: int, size: int, batch: int, device: str, seconds: float) -> dict:
    """Examples per second of ``simulate_batch`` for one shape, after one warm-up batch."""
    config = SimConfig(size=size, n_dates=n_dates)
    gen = torch.Generator().manual_seed(0)
    simulate_batch(config, batch, generator=gen, device=device)
    _sync(device)
    n, start, cpu_start = 0, time.perf_counter(), time.process_time()
    while True:
        simulate_batch(config, batch, generator=gen, device=device)
        _sync(device)
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and n >= 3:
            break
    cpu = time.process_time() - cpu_start
    return {
        "device": device,
        "threads": torch.get_num_threads(),
        "shape": f"{n_dates}x{size}x{size}",
        "batch": batch,
        "batches": n,
        "seconds_per_batch": elapsed / n,
        "examples_per_s": n * batch / elapsed,
        "examples_per_cpu_s": n * batch / cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for n_dates, size in SHAPES:
            rows.append(measure(n_dates, size, args.batch, "cpu", args.seconds))
    if torch.cuda.is_available():
        for n_dates, size in SHAPES:
            rows.append(measure(n_dates, size, args.batch, "cuda", args.seconds))
    header = ("device", "threads", "shape", "batch", "ms/batch", "ex/s", "ex/cpu-s")
    print("{:8s} {:>7s} {:>11s} {:>5s} {:>9s} {:>8s} {:>9s}".format(*header))
    for r in rows:
        print(
            f"{r['device']:8s} {r['threads']:7d} {r['shape']:>11s} {r['batch']:5d} "
            f"{1e3 * r['seconds_per_batch']:9.1f} {r['examples_per_s']:8.1f} "
            f"{r['examples_per_cpu_s']:9.1f}"
        )
    meta = {
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
