"""Where the shipped engine loses gain on strong signals: the peak's bias after each stage of
the second detector's fill.

For Benchmark v2 scenes at ideal-observer SNR >= ``--min-snr`` (design draws and fresh noise
draws ``--draws``), the engine runs as shipped while its fill's intermediate maps are read:
the gate's straight-line least-squares cumulative (``line``), the same less its relief fit
(``relief``), less the noise predicted into the areas from around them (``prediction``),
smoothed (``smoothing``), and the final output (``output``: the areas' histories in time and
the series assembly). Each is scored by its **peak bias**: the mean signed error over the 5 %
of compared pixels with the largest |truth|, as a share of their mean |truth| (negative:
shrunk), both maps aligned on the median of the pixels outside the filled areas; the step
from one stage to the next is what that stage cost. Scenes the fill does not reach (the
network's map, a step written over the scene) carry only ``output``. The gain target's
reach (``benchmarks/gain_reach.py``) says which misses the data allow to fix.

    python benchmarks/gain_loss_stages.py \\
        --snr-from experiments/benchmarks/evaluate_v2_bank/metrics.json \\
        --output experiments/benchmarks/gain_loss_stages.json [--draws 0 1 2] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import json_ready

STAGES = ("line", "relief", "prediction", "smoothing", "output")
#: share of compared pixels (largest |truth|) the peak bias is read on
PEAK_SHARE = 0.05


def peak_bias(x: np.ndarray, truth: np.ndarray, mask: np.ndarray, away: np.ndarray) -> float:
    """Mean signed error of ``x`` over the top :data:`PEAK_SHARE` of ``|truth|`` on ``mask``,
    over their mean ``|truth|`` (signed so that negative is shrunk); both aligned on their
    medians over ``away`` (the whole ``mask`` when ``away`` is empty)."""
    ref = away if away.any() else mask
    c = truth - np.median(truth[ref])
    y = x - np.median(x[ref])
    a = np.abs(c)
    top = mask & (a >= np.quantile(a[mask], 1.0 - PEAK_SHARE))
    sign = np.sign(np.mean(c[top]))
    return float(sign * np.mean((y - c)[top]) / np.mean(a[top]))


def stages_of(split: str, index: int, draw: int) -> dict[str, Any]:
    """One scene's stage biases and scores."""
    import sys

    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).parent))
    import fresh_draws as fd

    from insar_denoise.evaluation import referee_scoring as rs
    from insar_denoise.inference import bilaplacian_support as bs

    cap: dict[str, Any] = {}
    detect, banded, fill = bs.detect, bs.elevation_free_banded, bs.harmonic_fill

    def _detect(*a, **k):
        cap["detection"] = detect(*a, **k)
        return cap["detection"]

    def _banded(lin, ok, dem, band, fit_on):
        cap["line"], cap["ok"] = np.array(lin, np.float64), ok.copy()
        cap["relief"] = banded(lin, ok, dem, band, fit_on=fit_on)
        return cap["relief"]

    def _fill(values, unknown):
        cap["predicted"] = fill(values, unknown)
        return cap["predicted"]

    bs.detect, bs.elevation_free_banded, bs.harmonic_fill = _detect, _banded, _fill
    try:
        item = f"{split}:{index}" + (f":{draw}" if draw else "")
        spec, _, ds, truth, valid = fd.scene_draw(item)
        res = fd.run_shipped(ds, spec.n_dates)
    finally:
        bs.detect, bs.elevation_free_banded, bs.harmonic_fill = detect, banded, fill
    out = np.asarray(res["cumulative_deformation"].values, np.float64)
    mask = valid & np.isfinite(out) & np.isfinite(truth)
    found = cap.get("detection")
    new = found.new if found is not None and found.new is not None else None
    row: dict[str, Any] = {
        "split": split,
        "index": index,
        "draw": draw,
        "source_type": spec.source_type,
        "n_dates": spec.n_dates,
        "scores": rs.offset_free_scores(out, truth, mask),
        "filled_share": float(new[mask].mean()) if new is not None else 0.0,
    }
    away = mask & ~new if new is not None else np.zeros_like(mask)
    bias = {"output": peak_bias(out, truth, mask, away)}
    if new is not None and "relief" in cap:
        m = mask & cap["ok"]
        residual = cap["relief"] - cap["predicted"]
        maps = {
            "line": cap["line"],
            "relief": cap["relief"],
            "prediction": np.where(new, residual, cap["relief"]),
            "smoothing": np.where(new, found.estimate, cap["relief"]),
        }
        bias.update({k: peak_bias(v, truth, m, m & ~new) for k, v in maps.items()})
    row["peak_bias"] = bias
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr-from", type=Path, required=True, help="evaluate's metrics.json")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--min-snr", type=float, default=20.0)
    p.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2], help="0: the design's")
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    m = json.loads(args.snr_from.read_text())
    jobs = [
        (s, r["index"], d)
        for s, sp in m["splits"].items()
        for r in sp["scenes"]
        if (r.get("snr") or 0.0) >= args.min_snr
        for d in args.draws
    ]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        rows = []
        for row in pool.map(stages_of, *zip(*jobs, strict=True)):
            rows.append(row)
            b = row["peak_bias"]
            print(
                f"{row['split']:8s} {row['index']:3d} draw {row['draw']} "
                f"{row['source_type']:14s} T={row['n_dates']:2d} gain "
                f"{row['scores']['gain']:.3f} r {row['scores']['r']:.3f}  peak bias "
                + " ".join(f"{k} {b[k]:+.3f}" for k in STAGES if k in b),
                flush=True,
            )
    summary = {}
    filled = [r for r in rows if "line" in r["peak_bias"]]
    for label, group in (
        ("filled_inside", [r for r in filled if _inside(r)]),
        ("filled_outside", [r for r in filled if not _inside(r)]),
    ):
        steps = {}
        for a, b in zip(STAGES[:-1], STAGES[1:], strict=True):
            steps[f"{a}->{b}"] = (
                float(np.median([r["peak_bias"][b] - r["peak_bias"][a] for r in group]))
                if group
                else None
            )
        summary[label] = {
            "n": len(group),
            "median_line_bias": float(np.median([r["peak_bias"]["line"] for r in group]))
            if group
            else None,
            "median_stage_cost": steps,
        }
    summary["not_filled"] = len(rows) - len(filled)
    report = {
        "kind": "gain_loss_stages",
        "peak_share": PEAK_SHARE,
        "summary": summary,
        "scenes": rows,
    }
    args.output.write_text(json.dumps(json_ready(report), indent=1, allow_nan=False))
    print(json.dumps(json_ready(summary), indent=1))
    return 0


def _inside(row: dict[str, Any]) -> bool:
    from insar_denoise.evaluation.gain_bound import in_gain_target

    return in_gain_target(row["scores"]["gain"], row["scores"]["r"])


if __name__ == "__main__":
    raise SystemExit(main())
