"""The series fit's two inputs on fresh noise draws (model card, design table (bo), session 49):
the noise model it reads from the stack, and the history it fits.

Session 48 read the spectral exponent that ``estimate_noise_params`` gives on `in` 46 draw 1
(3.83) against the design draw's (1.87) and called the noise model the weak link; the draw's
own exponent is what it should be read against. Per scene (``split:index:draw``):

- ``noise``: the estimated spectral exponent (3 px blocks, as ``series_source_fit.py``) and
  the one the simulator drew for the noise actually in the stack (a fresh draw's own);
- ``scale``: the true shape's scale in the series fit (``SeriesObjective.fit``; 1 is the
  whole cumulative) with the true history, with ``B`` of 1-12 piecewise-linear segments
  (``series_source_fit.py`` uses 8), and with the simulator's history families, the best
  member of each by the fall of the weighted residual (step at each date, linear, the
  transient's tanh over a grid of centres and durations, ``synth/histories.py``).

    python benchmarks/series_history_scale.py --output \\
        experiments/benchmarks/series_history_scale.json [--items in:46:1 shifted:18:1 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import json_ready
from insar_denoise.inference.broad_scales import history_basis
from insar_denoise.inference.creep_model import block_means

sys.path.insert(0, str(Path(__file__).parent))
import fresh_draws as fd  # noqa: E402
from series_source_fit import BLOCK, SeriesObjective, family_histories  # noqa: E402

#: the scenes of ``series_source_fit_draw1.json`` under draw 1 and their design draws
ITEMS = tuple(
    f"{s}:{d}"
    for s in ("in:46", "shifted:18", "shifted:45", "shifted:60", "shifted:74")
    for d in (0, 1)
)
SEGMENTS = (1, 2, 4, 8, 12)


def drawn_beta(item: str) -> float:
    """The spectral exponent the simulator drew for the noise in scene ``item``'s stack."""
    from insar_denoise.evaluation.referee_scenes import design, simulate, with_fresh_noise

    split, index, draw = item.split(":")
    spec = design(84, 0, split)[int(index)]
    if int(draw):
        noise = with_fresh_noise(spec, split, 192, int(draw))[1].noise
    else:
        noise = simulate(spec, split, 192)[0].noise
    return float(noise.turb_beta[0])


def scene_scales(item: str) -> dict[str, Any]:
    """The readings of one scene (module docstring)."""
    t0 = time.perf_counter()
    spec, batch, ds, truth, valid = fd.scene_draw(item)
    days = (ds["time"].values - ds["time"].values[0]) / np.timedelta64(1, "D")
    spacing = float(batch.noise.pixel_spacing_m)
    obj = SeriesObjective(ds["displacement"].values, ds["dem"].values, valid, days, spacing)
    series = batch.deformation[0].numpy().astype(np.float64)
    history = np.array([float(np.sum(f * truth) / np.sum(truth * truth)) for f in series])
    shape = block_means(truth, BLOCK)
    s, ks = shape[obj.ok], obj.solve(shape[None])[0]
    h_true = np.interp(obj.days, days, history)[:, None]
    q, beta = obj.fit(s, ks, h_true)
    scale: dict[str, Any] = {"true_history": {"scale": float(beta[0] * h_true[-1, 0]), "q": q}}
    for k in SEGMENTS:
        b = history_basis(obj.times, k)[1:, 1:]
        q, beta = obj.fit(s, ks, b)
        # Schwarz (1978): the fall of the residual less log(n) per parameter
        bic = q - k * np.log(obj.d.size)
        scale[f"segments_{k}"] = {"scale": float((b @ beta)[-1]), "q": q, "bic": bic}
    for name, candidates in family_histories(obj.times).items():
        q, beta = max((obj.fit(s, ks, h[1:, None]) for h in candidates), key=lambda r: r[0])
        scale[f"family_{name}"] = {"scale": float(beta[0]), "q": q}
    return {
        "item": item,
        "history": batch.history_names[int(batch.history[0])],
        "n_dates": int(spec.n_dates),
        "noise": {"beta_estimated": float(obj.params.turb_beta[0]), "beta_drawn": drawn_beta(item)},
        "scale": scale,
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--items", nargs="*", default=list(ITEMS), help="split:index:draw")
    args = p.parse_args(argv)
    rows = []
    for item in args.items:
        row = scene_scales(item)
        rows.append(row)
        sc = row["scale"]
        text = "  ".join(f"{k} {v['scale']:.3f}" for k, v in sc.items())
        print(
            f"{item:13s} {row['history']:10s} T {row['n_dates']:2d} beta est "
            f"{row['noise']['beta_estimated']:.2f} drawn {row['noise']['beta_drawn']:.2f} | "
            f"{text}",
            flush=True,
        )
    args.output.write_text(
        json.dumps(json_ready({"kind": "series_history_scale", "scenes": rows}), indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
