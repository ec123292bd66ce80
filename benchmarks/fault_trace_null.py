"""The fault-trace search on fresh no-deformation scenes: how often does it find a line?

The threshold of ``inference/fault_trace.py`` (6.5) was set on Benchmark v2's seed-0 scenes.
This script runs the engine (``denoise_dataset``) on the no-deformation scenes of other
seeds of the same design (192 px, T = 9/18/36/72, both splits), records the largest line
``z`` of each scene (whether or not it passes) and the p99 of |output|, and writes JSON.

    python benchmarks/fault_trace_null.py --seeds 1 2 \
        -o experiments/benchmarks/fault_trace_null.json
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset, fault_trace
from insar_denoise.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--n", type=int, default=84, help="scenes per split in the design")
    ap.add_argument("-o", "--output", type=Path, default=Path("fault_trace_null.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, seen = load_model("default"), []
    search = fault_trace.search_broken

    def recording(p, ok):
        best = search(p, ok)
        seen.append((best[0], best[4]))
        return best

    fault_trace.search_broken = recording
    rows = []
    try:
        for seed in args.seeds:
            for split in ("in", "shifted"):
                for spec in design(args.n, seed, split):
                    if spec.source_type != "none":
                        continue
                    batch, ds = simulate(spec, split, 192)
                    seen.clear()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out = denoise_dataset(ds, model, progress=False)
                    cum = out["cumulative_deformation"].values
                    ok = batch.valid[0].numpy() & np.isfinite(cum)
                    p99 = float(np.percentile(np.abs(cum[ok] - np.median(cum[ok])), 99))
                    z, threshold = seen[0] if seen else (float("nan"), float("nan"))
                    rows.append(
                        dict(
                            seed=seed,
                            split=split,
                            index=spec.index,
                            dates=spec.n_dates,
                            z=z,
                            threshold=threshold,
                            p99_mm=p99,
                        )
                    )
                    print(json.dumps(rows[-1]), flush=True)
    finally:
        fault_trace.search_broken = search
    zs = np.array([r["z"] for r in rows])
    result = {
        "threshold": fault_trace.THRESHOLD,
        "short_threshold": fault_trace.SHORT_THRESHOLD,
        "scenes": len(rows),
        "above_threshold": int(sum(r["z"] > r["threshold"] for r in rows)),
        "z_max": float(np.nanmax(zs)),
        "z_median": float(np.nanmedian(zs)),
        "rows": rows,
    }
    print({k: v for k, v in result.items() if k != "rows"})
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
