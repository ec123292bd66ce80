"""Benchmark v2's scenes under fresh noise: failures the design's own draws do not hold.

Each scene's deformation is put under ``--draws`` other draws of its design's noise (DEM,
holes, gaps, atmosphere of seed ``seed + 7919 j``; :func:`referee_scenes.with_fresh_noise`)
and denoised with the shipped model. Per draw: RMSE, gain and r of the model and RMSE of
the all-zero map (offset-free, as ``evaluate`` scores). A **failure** is an output at least
1 mm and 1.5× worse than the zero map; the design SNR (the ideal observer on the design's
own draw, from ``--snr-from``) sorts the scenes. Session 38 found three such failures in 36
draws under 9 scenes; this covers every scene.

    python benchmarks/fresh_draws.py \
        --snr-from experiments/benchmarks/evaluate_v2_bank/metrics.json \
        --output experiments/benchmarks/fresh_draws.json [--draws 1] [--workers 2] [--min-snr 0]

The JSON is rewritten after every scene; ``--resume`` skips the scenes it already holds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import json_ready

#: a failure: model RMSE over both ``zero + FAIL_EXCESS_MM`` and ``FAIL_RATIO × zero``
FAIL_EXCESS_MM = 1.0
FAIL_RATIO = 1.5
#: the engine's notes kept per draw (which step wrote what)
NOTE_PREFIX = "insar_denoise_"
NOTES = tuple(
    NOTE_PREFIX + k
    for k in ("creep_model", "fault_trace", "second_detector_z", "unwrapping", "stratification")
)


def scene_draw(item: str, size: int = 192) -> tuple[Any, Any, Any, np.ndarray, np.ndarray]:
    """One Benchmark v2 scene named ``split:index[:draw]`` (draw 0 or none: the design's
    noise, else a fresh draw): ``(spec, batch, ds, truth, valid)``, the truth the noise-free
    cumulative (float64), ``valid`` the pixels of the noise actually drawn."""
    from insar_denoise.evaluation.referee_scenes import design, simulate, with_fresh_noise

    split, index, *rest = item.split(":")
    spec, draw = design(84, 0, split)[int(index)], int(rest[0]) if rest else 0
    if draw:
        batch, noise, ds = with_fresh_noise(spec, split, size, draw)
        valid = noise.valid[0].numpy()
    else:
        batch, ds = simulate(spec, split, size)
        valid = batch.valid[0].numpy()
    return spec, batch, ds, batch.cumulative[0].numpy().astype(np.float64), valid


def score_draw(split: str, index: int, draw: int, size: int) -> dict[str, Any]:
    """Scores of the shipped model on one scene's deformation under noise draw ``draw``."""
    import torch

    torch.set_num_threads(1)
    from insar_denoise.evaluation.referee_scenes import design, with_fresh_noise

    spec = design(84, 0, split)[index]
    batch, noise_batch, ds = with_fresh_noise(spec, split, size, draw)
    t0 = time.perf_counter()
    res = run_shipped(ds, spec.n_dates)
    truth = batch.cumulative[0].numpy().astype(np.float64)
    return {
        "split": split,
        "index": index,
        "draw": draw,
        "source_type": spec.source_type,
        "n_dates": spec.n_dates,
        "amplitude_mm": spec.amplitude_mm,
        "turbulence_mm": spec.turbulence_mm,
        **output_record(res, truth, noise_batch.valid[0].numpy()),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def run_shipped(ds: Any, n_dates: int) -> Any:
    """The shipped model's result on ``ds`` (at the stride ``evaluate`` runs it)."""
    from insar_denoise.evaluation.referee import model_stride
    from insar_denoise.inference import denoise_dataset

    model = shipped_model()
    stride = model_stride(model, n_dates)
    return denoise_dataset(ds, model=model, stride=stride, progress=False, return_noise=False)


def output_record(res: Any, truth: np.ndarray, valid: np.ndarray) -> dict[str, Any]:
    """A result's cumulative scored against ``truth`` on the ``valid`` pixels where both are
    finite (offset-free, as ``evaluate``): the model's scores, the zero map's RMSE, the p99
    of |output|, whether it is a failure and the engine's notes."""
    from insar_denoise.evaluation import referee_scoring as rs

    cum = np.asarray(res["cumulative_deformation"].values, np.float64)
    mask = np.asarray(valid, bool) & np.isfinite(cum) & np.isfinite(truth)
    scores = rs.offset_free_scores(cum, truth, mask)
    zero = rs.offset_free_scores(np.zeros_like(truth), truth, mask)
    return {
        "model": scores,
        "zero_rmse_mm": zero["rmse_mm"],
        "p99_abs_model_mm": float(np.percentile(np.abs(rs.centered(cum, mask)), 99)),
        "failure": failure(scores["rmse_mm"], zero["rmse_mm"]),
        "notes": {k[len(NOTE_PREFIX) :]: str(res.attrs[k]) for k in NOTES if k in res.attrs},
    }


@lru_cache(maxsize=1)
def shipped_model() -> Any:
    """The shipped model, loaded once per worker process."""
    from insar_denoise.models import load_model

    return load_model("default")


def failure(model_rmse: float, zero_rmse: float) -> bool:
    """Whether an output is a failure (:data:`FAIL_EXCESS_MM`, :data:`FAIL_RATIO`)."""
    return bool(model_rmse > zero_rmse + FAIL_EXCESS_MM and model_rmse > FAIL_RATIO * zero_rmse)


def design_snr(metrics: dict[str, Any]) -> dict[tuple[str, int], float]:
    """``{(split, index): ideal-observer SNR}`` of an ``evaluate`` metrics.json."""
    out = {}
    for split, block in metrics["splits"].items():
        for rec in block["scenes"]:
            out[(split, int(rec["index"]))] = float(rec["snr"])
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Failures, gain-target share at SNR ≥ 20 and false-positive p99 over the draws."""
    strong = [r for r in rows if r["snr"] >= 20]
    from insar_denoise.evaluation.gain_bound import in_gain_target

    inside = [r for r in strong if in_gain_target(r["model"]["gain"], r["model"]["r"])]
    calm = [r["p99_abs_model_mm"] for r in rows if r["source_type"] == "none"]
    return {
        "n_draws": len(rows),
        "failures": [
            {k: r[k] for k in ("split", "index", "draw", "source_type", "snr", "zero_rmse_mm")}
            | {"rmse_mm": r["model"]["rmse_mm"]}
            for r in rows
            if r["failure"]
        ],
        "worse_than_zero_share": float(
            np.mean([r["model"]["rmse_mm"] > r["zero_rmse_mm"] + 1e-6 for r in rows])
        )
        if rows
        else math.nan,
        "snr_ge_20": {"n": len(strong), "gain_and_r_inside": len(inside)},
        "false_positive_p99_mm": float(np.percentile(calm, 99)) if calm else math.nan,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr-from", type=Path, required=True, help="evaluate's metrics.json")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--draws", type=int, default=1, help="fresh draws per scene (1..draws)")
    p.add_argument("--splits", nargs="+", default=["in", "shifted"])
    p.add_argument("--min-snr", type=float, default=0.0, help="only scenes at this SNR or above")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--resume", action="store_true")
    args = p.parse_args(argv)
    snr = design_snr(json.loads(args.snr_from.read_text()))
    rows: list[dict[str, Any]] = []
    if args.resume and args.output.exists():
        rows = json.loads(args.output.read_text())["draws"]
    done = {(r["split"], r["index"], r["draw"]) for r in rows}
    jobs = [
        (s, i, j)
        for (s, i), v in sorted(snr.items(), key=lambda kv: -kv[1])
        if s in args.splits and v >= args.min_snr
        for j in range(1, args.draws + 1)
        if (s, i, j) not in done
    ]
    print(f"{len(jobs)} draws to run ({len(done)} held)", flush=True)
    jobs = [(s, i, j, args.size) for s, i, j in jobs]

    def report(rows_: list[dict[str, Any]]) -> dict[str, Any]:
        rule = [FAIL_EXCESS_MM, FAIL_RATIO]
        return {"draws": rows_, "summary": summary(rows_), "fail_rule": rule}

    run_and_write(score_draw, jobs, args.workers, snr, rows, args.output, report)
    return 0


def run_and_write(
    score: Any,
    jobs: list[tuple],
    workers: int,
    snr: dict[tuple[str, int], float],
    rows: list[dict[str, Any]],
    output: Path,
    report: Any,
) -> None:
    """``score(*job)`` for every job in ``workers`` processes: each row takes its design SNR,
    is appended to ``rows`` and printed, and ``report(rows)`` is rewritten to ``output``
    (strict JSON: NaN, the r of a constant map, as null); the summary printed last."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(score, *job) for job in jobs]
        for fut in as_completed(futures):
            row = fut.result()
            row["snr"] = snr[(row["split"], row["index"])]
            rows.append(row)
            m = row["model"]
            print(
                f"{row['split']}:{row['index']}:{row['draw']} {row['source_type']} "
                f"T {row['n_dates']} SNR {row['snr']:.1f} model {m['rmse_mm']:.2f} "
                f"zero {row['zero_rmse_mm']:.2f} gain {m['gain']:.2f} r {m['r']:.2f}"
                f"{'  FAILURE' if row['failure'] else ''}",
                flush=True,
            )
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps(json_ready(report(rows)), indent=1, allow_nan=False))
    print(json.dumps(json_ready(summary(rows)), indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
