"""Does the error fall with the number of dates? The same signals with 9 and with 72 dates.

Benchmark v2 bins scenes by their ideal-observer SNR, which already holds the gain of a longer
stack: at equal SNR a 72-date scene is as hard as a 9-date one, and an efficient estimator's
error, as a share of the signal's, is the same (the oracle that knows the shape and fits its
amplitude errs by 1 / SNR of the signal's RMS whatever T). Model v2's target "at T = 72 the RMSE
at SNR >= 10 is <= 0.5x that at T = 9" asks what a stack gives on the *same* signals. Here each
deforming 72-date scene of Benchmark v2 (seed 0, 192 px, both splits) is run whole and on 9 of
its dates (evenly spread, first and last kept: the same span, the same deformation, the same
atmosphere on those dates); per scene the RMSE (offset-free, mm) of the engine, the classical
linear-rate stack and the best classical correction (``best``, the split's tuned sigma) at
T = 9 and T = 72, and their ratio. The ideal-observer SNR of both stacks comes from
:mod:`insar_denoise.scoring.ideal_observer` (the simulator's covariance). Reported: medians
of the ratios over scenes whose 72-date SNR is >= 10 (``benchmarks/oracle_targets.py``: what
the oracle scores on the target as binned).

    python benchmarks/dates_paired.py   # ~25 min -> experiments/benchmarks/dates_paired.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset
from insar_denoise.models import load_model
from insar_denoise.scoring.ideal_observer import batch_snr

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
REPORT = OUT / "evaluate_v2_s24" / "metrics.json"
LONG, SHORT = 72, 9


def subset(batch, index: np.ndarray):
    """A copy of a one-scene batch with only the dates ``index`` (first and last kept: the
    cumulative is the same), the noise's per-date standard deviations with them."""
    noise = dataclasses.replace(batch.noise, turb_std_mm=batch.noise.turb_std_mm[:, index])
    return dataclasses.replace(
        batch,
        displacement=batch.displacement[:, index],
        deformation=batch.deformation[:, index],
        noise=noise,
    )


def scene_scores(split: str, spec, model, sigma_px: float) -> dict:
    """RMSE of the engine, ``stack`` and ``best`` with all dates and with :data:`SHORT`."""
    batch, ds = simulate(spec, split, 192)
    index = np.unique(np.round(np.linspace(0, spec.n_dates - 1, SHORT)).astype(int))
    truth = batch.cumulative[0].numpy().astype(np.float64)
    valid = batch.valid[0].numpy()
    out: dict = {"index": spec.index, "source": spec.source_type}
    for name, dates, b in (("long", None, batch), ("short", index, subset(batch, index))):
        d = ds if dates is None else ds.isel(time=dates)
        out[f"snr_{name}"] = float(batch_snr(b)[0].snr)
        for method in ("model", "stack", "best"):
            res = denoise_dataset(
                d,
                model if method == "model" else None,
                method=method,
                sigma_px=sigma_px,
                progress=False,
                return_noise=False,
            )
            cum = np.asarray(res["cumulative_deformation"].values, np.float64)
            s = rs.offset_free_scores(cum, truth, valid)
            out[f"{method}_{name}"] = {k: round(float(v), 4) for k, v in s.items()}
    return out


def summarise(scenes: list[dict]) -> dict:
    """Over scenes at 72-date SNR >= 10: medians of the T = 72 / T = 9 RMSE ratios and of
    the RMSE itself (mm) at both lengths, per method."""
    strong = [s for s in scenes if s["snr_long"] >= 10.0]
    methods = ("model", "stack", "best")

    def med(values) -> float:
        return float(np.median(list(values)))

    return {
        "n_scenes": len(strong),
        "median_rmse_ratio_72_over_9": {
            m: med(s[f"{m}_long"]["rmse_mm"] / s[f"{m}_short"]["rmse_mm"] for s in strong)
            for m in methods
        },
        "median_rmse_mm_9": {m: med(s[f"{m}_short"]["rmse_mm"] for s in strong) for m in methods},
        "median_rmse_mm_72": {m: med(s[f"{m}_long"]["rmse_mm"] for s in strong) for m in methods},
        "median_snr_ratio_72_over_9": med(s["snr_long"] / s["snr_short"] for s in strong),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="a packaged model or a file")
    p.add_argument("--report", type=Path, default=REPORT, help="evaluate's metrics.json")
    p.add_argument("-o", "--output", type=Path, default=OUT / "dates_paired.json")
    args = p.parse_args(argv)
    report = json.loads(args.report.read_text())
    model = load_model(args.model)
    result: dict = {"short_dates": SHORT, "long_dates": LONG, "splits": {}}
    start = time.perf_counter()
    for split in ("in", "shifted"):
        sigma = float(report["splits"][split]["sigma_tuning"]["sigma_px"])
        specs = [s for s in design(84, 0, split) if s.n_dates == LONG and s.source_type != "none"]
        scenes = []
        for spec in specs:
            scenes.append(scene_scores(split, spec, model, sigma))
            s = scenes[-1]
            print(
                f"{split} {spec.index:3d} {spec.source_type:14s} SNR {s['snr_short']:6.1f} ->"
                f" {s['snr_long']:6.1f}  RMSE model {s['model_short']['rmse_mm']:.2f} ->"
                f" {s['model_long']['rmse_mm']:.2f}  stack {s['stack_short']['rmse_mm']:.2f} ->"
                f" {s['stack_long']['rmse_mm']:.2f}  best {s['best_short']['rmse_mm']:.2f} ->"
                f" {s['best_long']['rmse_mm']:.2f}",
                flush=True,
            )
        result["splits"][split] = {"summary": summarise(scenes), "scenes": scenes}
        print(split, json.dumps(result["splits"][split]["summary"]), flush=True)
    every = [s for split in result["splits"].values() for s in split["scenes"]]
    result["both_splits"] = summarise(every)
    result["wall_s"] = round(time.perf_counter() - start, 1)
    print("both", json.dumps(result["both_splits"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
