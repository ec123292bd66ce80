"""How flat is the creep fit's misfit? Three searches of the dislocation's geometry.

``inference/creep_model.py`` fits a dislocation by a grid and coordinate descent
(:func:`~insar_denoise.inference.creep_model.descent`). Per scene this script compares

* ``descent``: the grid and the coordinate descent (the shipped fit),
* ``position``: the trace's shift and turn then moved together by Powell's method (Powell
  1964, Comput. J. 7(2), 155-162) and the descent run again (not shipped: design table (bf)),
* ``polish``: Powell's method over every parameter from the descent's geometry (not
  shipped: design table (bd)),

by their misfit, width, dip and the gain and r of the fitted cumulative against the truth, on

* the noise-free truth (where the trace's true geometry leaves almost no misfit: a large
  drop means the descent stopped in a local minimum), and
* the least-squares cumulative of the scene's stack (the engine's map, without its
  unwrapping and stratification steps), fitted by differences as the engine's fallback.

Model card design tables (bd), (bf). JSON out::

    python benchmarks/creep_fit_landscape.py \
        -o experiments/benchmarks/creep_fit_landscape.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from fault_trace_lines import model_weighting, stack_cumulative  # benchmarks/ (the script's folder)
from fresh_draws import scene_draw
from scipy.optimize import minimize

from insar_denoise.evaluation.referee_scoring import offset_free_scores
from insar_denoise.inference import creep_model as cm
from insar_denoise.inference.fault_trace import find_trace


def polish(misfit, x: np.ndarray, evaluations: int, only: tuple[int, ...] = ()) -> np.ndarray:
    """Powell's method from ``x`` (a tip beyond the scene stays there), over the parameters
    ``only`` (indices of :func:`~insar_denoise.inference.creep_model.geometry`'s ``x``) or
    every one."""
    free = np.array([x[0] > -cm.FAR, x[1] < cm.FAR, True, True, True, True, True])
    if only:
        free &= np.isin(np.arange(7), only)

    def full(v: np.ndarray) -> np.ndarray:
        trial = x.copy()
        trial[free] = v
        return trial

    def cost(v: np.ndarray) -> float:
        trial = full(v)
        return np.inf if trial[1] - trial[0] < 0.25 else misfit(trial)[0]

    bounds = [
        (None if np.isinf(lo) else lo, None if np.isinf(hi) else hi)
        for lo, hi in zip(cm.GEOMETRY_LOW[free], cm.GEOMETRY_HIGH[free], strict=True)
    ]
    found = minimize(cost, x[free], method="Powell", bounds=bounds, options={"maxfev": evaluations})
    return full(found.x)


def at(misfit, x: np.ndarray) -> tuple:
    """``(rss, x, coefficients)`` of the geometry ``x``."""
    rss, coef = misfit(x)
    return rss, x, coef


def lower(a: tuple, b: tuple) -> tuple:
    """Of two ``(rss, x, coefficients)``, the one of lower misfit (``a`` on a tie)."""
    return b if b[0] < a[0] else a


def compare(
    projection: np.ndarray, dem, truth: np.ndarray, valid: np.ndarray, evaluations: int
) -> dict | None:
    """The three searches on one map, scored on ``valid`` as Benchmark v2 scores outputs;
    None when the map holds no trace."""
    trace = find_trace(projection, dem)
    if trace is None:
        return None
    misfit, half, shape = cm.dislocation_misfit(projection, dem, trace)
    fits = {"descent": cm.descent(misfit)}
    rss, x, _ = fits["descent"]
    xp = polish(misfit, x, evaluations)
    fits["polish"] = lower(fits["descent"], at(misfit, xp))
    # the trace's shift and turn (x[4], x[5]) moved together, then the descent again
    xs = polish(misfit, x, evaluations, only=(4, 5))
    fits["position"] = lower(fits["descent"], cm.refine(misfit, *at(misfit, xs)))
    out = {"trace_z": round(trace.z, 2)}
    for name, (r, geo, c) in fits.items():
        scores = offset_free_scores(cm.fitted(trace, shape, half, geo, c).cumulative, truth, valid)
        out[name] = dict(
            misfit=float(r),
            width_px=round(2.0 ** geo[2], 2),
            dip_deg=round(geo[6], 1),
            gain=round(scores["gain"], 3),
            r=round(scores["r"], 3),
        )
    out["misfit_drop"] = round(1.0 - fits["polish"][0] / rss, 4)
    out["position_misfit_drop"] = round(1.0 - fits["position"][0] / rss, 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--scenes",
        nargs="+",
        default=["in:81", "in:52", "in:83:1", "in:55", "in:82", "shifted:26", "shifted:27"],
        help="split:index[:draw] of Benchmark v2 (draw 0: the design's noise)",
    )
    ap.add_argument("--evaluations", type=int, default=600)
    ap.add_argument("-o", "--output", type=Path, default=Path("creep_fit_landscape.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    crop, segments = model_weighting()
    rows = []
    for item in args.scenes:
        spec, _, ds, truth, valid = scene_draw(item)
        dem = ds["dem"].values.astype(np.float64)
        stack = stack_cumulative(ds, crop, segments)
        row = dict(scene=item, source=spec.source_type, n_dates=spec.n_dates)
        row["truth"] = compare(truth, dem, truth, valid, args.evaluations)
        row["stack"] = compare(stack, dem, truth, valid, args.evaluations)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.output.write_text(
        json.dumps({"evaluations": args.evaluations, "scenes": rows}, indent=2) + "\n"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
