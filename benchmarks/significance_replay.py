"""Replay of Benchmark v2's split ``in`` through the stack engine with three finishing steps.

The engine's series before its scene-wide step is captured once per scene, then finished
(a) as it is, (b) with the broad-scale Wiener gain (``broad_scales.py``), (c) with the
significance gate (``significance.py``), and scored like ``evaluate`` (medians removed;
gain, r, detected r >= 0.7, RMSE per ideal-observer SNR bin; false-positive p99 on the
no-deformation scenes). The SNRs are read from a stored ``evaluate`` report of the same
seed and size (``--snr``), so the ideal observer is not recomputed.

    python benchmarks/significance_replay.py --n 84
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import insar_denoise.inference.stack_path as sp
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import broad_scales as bs
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.significance import gate_series
from insar_denoise.models import load_model

BINS = [(0, 3), (3, 5), (5, 10), (10, 20), (20, 50), (50, float("inf"))]


def capture(n: int, split: str = "in", model_path: str = "default") -> list[dict]:
    """The engine's series (before its scene-wide step) and inputs for scenes 0..n-1, with
    the model ``model_path`` (a name or a file)."""
    got: dict = {}

    def keep(series, removed, days, date_var, segments, *a, **k):
        got.update(series=series.copy(), removed=removed.copy(), days=days, var=date_var)
        got.update(segments=segments)
        return series, np.ones(1)

    sp.GATE, bs_orig = False, bs.shrink_broad_scales
    bs.shrink_broad_scales = keep
    model, out = load_model(model_path), []
    try:
        for spec in design(n, 0, split):
            batch, ds = simulate(spec, split, 192)
            denoise_dataset(ds, model, progress=False)
            out.append({**got, "spec": spec, "truth": batch.cumulative[0].numpy()})
            out[-1]["valid"] = batch.valid[0].numpy()
    finally:
        bs.shrink_broad_scales, sp.GATE = bs_orig, True
    return out


def finish(c: dict, how: str) -> np.ndarray:
    """Cumulative map of one captured scene finished by ``how``."""
    series = c["series"]
    if how == "wiener":
        series = bs.shrink_broad_scales(series, c["removed"], c["days"], c["var"], c["segments"])[0]
    elif how == "gate":
        disp = c["removed"] + c["series"]
        series = gate_series(series, disp, c["days"], c["var"], c["segments"])[0]
    return series[-1] - series[0]


def bin_summary(v: list[tuple]) -> dict:
    """Medians of ``(gain, r, rmse, zero rmse)`` rows and the share with r >= 0.7."""
    return dict(
        n=len(v),
        gain=float(np.median([x[0] for x in v])),
        r=float(np.median([x[1] for x in v])),
        detected=float(np.mean([x[1] >= 0.7 for x in v])),
        rmse_mm=float(np.median([x[2] for x in v])),
        zero_rmse_mm=float(np.median([x[3] for x in v])),
    )


def score(caps: list[dict], snr: dict[int, float]) -> dict:
    """Per method and SNR bin: medians of gain, r, RMSE and the share detected."""
    out: dict = {}
    for how in ("none", "wiener", "gate"):
        rows: dict = {b: [] for b in BINS}
        fp = []
        for c in caps:
            cum = finish(c, how)
            ok = c["valid"] & np.isfinite(cum)
            o = cum[ok] - np.median(cum[ok])
            t = c["truth"][ok] - np.median(c["truth"][ok])
            if c["spec"].source_type == "none":
                fp.append(np.abs(o))
                continue
            b = next(b for b in BINS if b[0] <= snr[c["spec"].index] < b[1])
            r = float(np.corrcoef(o, t)[0, 1]) if o.std() > 0 else 0.0
            g = float((o * t).sum() / (t * t).sum())
            rows[b].append(
                (g, r, float(np.sqrt(np.mean((o - t) ** 2))), float(np.sqrt(np.mean(t**2))))
            )
        out[how] = {f"{lo:g}-{hi:g}": bin_summary(v) for (lo, hi), v in rows.items() if v}
        out[how]["false_positive_p99_mm"] = float(np.percentile(np.concatenate(fp), 99))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=84)
    ap.add_argument("--split", choices=("in", "shifted"), default="in")
    ap.add_argument(
        "--snr", type=Path, default=Path("experiments/benchmarks/evaluate_v2/metrics.json")
    )
    ap.add_argument(
        "-o", "--output", type=Path, default=Path("experiments/benchmarks/significance_replay.json")
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    scenes = json.loads(args.snr.read_text())["splits"][args.split]["scenes"]
    snr = {s["index"]: float(s["snr"]) for s in scenes}
    result = score(capture(args.n, args.split), snr)
    for how, bins in result.items():
        print(how, json.dumps(bins))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
