"""The ``correlated_dates`` factor on every Benchmark v2 scene and on the Envisat test stack.

:func:`insar_denoise.trust.date_correlation.excess_date_correlation` of each stack less the
shipped engine's output series (``k_residual``, what the run's QC reads) and of the stack
alone (``k_input``: the stack's own deformation inflates it), on the 168 design draws of
Benchmark v2 (about 20 min on one core) and the Envisat stack; JSON out::

    python benchmarks/date_correlation_scenes.py -o experiments/benchmarks/date_correlation.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from fresh_draws import run_shipped, scene_draw  # benchmarks/
from real_injection import DATA, load_stack

from insar_denoise.inference.engine import times_in_days
from insar_denoise.trust.date_correlation import CORRELATED_FACTOR, excess_date_correlation


def factors(ds, n_dates: int) -> dict[str, float | None]:
    """``k_input`` and ``k_residual`` of one stack (the engine run at ``evaluate``'s stride)."""
    series = run_shipped(ds, n_dates)["deformation"].transpose("time", "y", "x").values
    disp = ds["displacement"].transpose("time", "y", "x").values
    days = times_in_days(ds["time"].values)
    dem = ds["dem"].values if "dem" in ds else None
    return {
        "k_input": excess_date_correlation(disp, None, days, dem),
        "k_residual": excess_date_correlation(disp, series, days, dem),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=Path("date_correlation.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    envisat = load_stack(DATA)[0]
    report = {"threshold": CORRELATED_FACTOR, "envisat": factors(envisat, envisat.sizes["time"])}
    print("envisat", json.dumps(report["envisat"]), flush=True)
    rows = []
    for split in ("in", "shifted"):
        for index in range(84):
            spec, _, ds, _, _ = scene_draw(f"{split}:{index}")
            rows.append(
                {
                    "scene": f"{split}:{index}",
                    "source": spec.source_type,
                    "n_dates": spec.n_dates,
                    **factors(ds, spec.n_dates),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    res = np.array([r["k_residual"] for r in rows], float)
    report["benchmark_v2"] = {
        "n": len(rows),
        "k_residual_median": float(np.nanmedian(res)),
        "k_residual_p95": float(np.nanpercentile(res, 95)),
        "k_residual_max": float(np.nanmax(res)),
        "over_threshold": int(np.sum(res > CORRELATED_FACTOR)),
        "k_input_max": float(np.nanmax([r["k_input"] for r in rows])),
        "scenes": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
