"""Where the engine's error lives on Benchmark v2: inside or outside the gate, fine or broad.

For each scene of a split whose ideal-observer SNR (read from a previous ``evaluate``
``metrics.json``) is at least ``--min-snr``, the engine runs as ``evaluate`` runs it and
the significance gate's map, the least-squares cumulative (the model's segments) and the
straight line's are read through a wrapper of :func:`.stack_path.gated_finish`. Scored up
to a constant offset (:func:`.referee_scoring.offset_free_scores`):

- ``rmse``, ``r``, ``gain`` of the output;
- ``oracle_outside``: the output with the truth put where the gate is closed (what a
  perfect estimate of the area the gate sets to zero would give), ``oracle_inside``: the
  truth put where it is open;
- ``in_gate``: slope on the truth of the output, the least-squares cumulative and the
  straight line inside the open gate, and the RMS of the output's error there below and
  above ``BROAD_PX`` (a Gaussian of that std splits them).

    python benchmarks/error_attribution.py --split in   # ~7 min a split (25 scenes)
    # -> experiments/benchmarks/error_attribution_{split}.json; --merge joins the two
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset, stack_path
from insar_denoise.models import load_model

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "experiments" / "benchmarks"
SNR_FROM = OUT / "evaluate_v2_s27" / "metrics.json"
#: the error inside the gate is split into scales below and above this Gaussian std (px)
BROAD_PX = 16.0


def _smooth(values: np.ndarray, ok: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian of ``values`` over the ``ok`` pixels (normalised convolution)."""
    v = np.where(ok, values, 0.0)
    return gaussian_filter(v, sigma) / np.maximum(gaussian_filter(ok * 1.0, sigma), 1e-6)


def _slope(values: np.ndarray, truth: np.ndarray, where: np.ndarray) -> float | None:
    """Least-squares slope of ``values`` on ``truth`` over ``where`` (means removed)."""
    ok = where & np.isfinite(values)
    if ok.sum() < 100:
        return None
    a, b = values[ok] - values[ok].mean(), truth[ok] - truth[ok].mean()
    return round(float(a @ b / max(float(b @ b), 1e-12)), 4)


def attribute(est: np.ndarray, truth: np.ndarray, valid: np.ndarray, maps: dict) -> dict:
    """The scores of one scene (module docstring); ``maps``: ``gate``, ``projection``,
    ``line`` as the engine made them."""
    ok = valid & np.isfinite(est)
    opened = maps["gate"] > 0.5
    inside, outside = ok & opened, ok & ~opened

    def scores(x: np.ndarray) -> dict:
        s = rs.offset_free_scores(x, truth, ok)
        return {k: None if v is None else round(float(v), 4) for k, v in s.items()}

    out = {"gate_share": round(float(inside.sum() / max(ok.sum(), 1)), 4), "output": scores(est)}
    err = (est - truth)[ok]
    err = np.where(opened[ok], 1.0, 0.0), (err - np.median(err)) ** 2
    out["error_share_inside"] = round(float(err[0] @ err[1] / max(float(err[1].sum()), 1e-12)), 4)
    for name, keep, replace in (
        ("oracle_outside", inside, outside),
        ("oracle_inside", outside, inside),
    ):
        # the truth, levelled to the output where that is kept (a gate open or closed
        # everywhere: the output itself, or the truth everywhere)
        level = float(np.median((est - truth)[keep])) if keep.any() else 0.0
        out[name] = scores(np.where(replace, truth + level, est))
    if inside.sum() >= 100:
        err = np.where(inside, est - truth, 0.0)
        broad = _smooth(err, inside, BROAD_PX)
        e = (err - broad)[inside]
        out["in_gate"] = {
            "slope_output": _slope(est, truth, inside),
            "slope_projection": _slope(maps["projection"], truth, inside),
            "slope_line": _slope(maps["line"], truth, inside),
            "error_fine_rms_mm": round(float(np.sqrt(np.mean(e * e))), 4),
            "error_broad_rms_mm": round(float(np.std(broad[inside])), 4),
        }
    return out


def run_split(split: str, min_snr: float, snr_from: Path) -> dict:
    """Every scene of ``split`` at SNR >= ``min_snr`` (:func:`attribute`) and a summary."""
    known = {
        s["index"]: s.get("snr")
        for s in json.loads(snr_from.read_text())["splits"][split]["scenes"]
    }
    model = load_model("default")
    seen: dict = {}
    original = stack_path.gated_finish

    def capture(series, referenced, dem, days, date_var, segments, maps):
        result = original(series, referenced, dem, days, date_var, segments, maps)
        seen.update(
            gate=np.asarray(result[1]), projection=np.asarray(maps[1]), line=np.asarray(maps[3])
        )
        return result

    stack_path.gated_finish = capture
    rows = []
    try:
        for spec in design(84, 0, split):
            snr = known.get(spec.index)
            if snr is None or snr < min_snr:
                continue
            batch, ds = simulate(spec, split, 192)
            seen.clear()
            res = denoise_dataset(ds, model, progress=False, return_noise=False)
            est = np.asarray(res["cumulative_deformation"].values, np.float64)
            truth = batch.cumulative[0].numpy().astype(np.float64)
            row = {"index": spec.index, "source": spec.source_type, "n_dates": spec.n_dates}
            row["snr"] = round(float(snr), 2)
            row.update(attribute(est, truth, batch.valid[0].numpy(), seen))
            rows.append(row)
            o = row["output"]
            print(
                f"{split} {spec.index:2d} {spec.source_type:>13} T{spec.n_dates:<2d} SNR {snr:6.1f}"
                f" rmse {o['rmse_mm']:.2f} oracle-in {row['oracle_inside']['rmse_mm']:.2f}"
                f" oracle-out {row['oracle_outside']['rmse_mm']:.2f}",
                flush=True,
            )
    finally:
        stack_path.gated_finish = original
    return {
        "split": split,
        "min_snr": min_snr,
        "snr_from": str(snr_from.relative_to(ROOT)),
        "scenes": rows,
        "summary": summarise(rows),
    }


def summarise(rows: list[dict]) -> dict:
    """Counts of scenes whose gate is closed / open everywhere / in part, and for those open
    anywhere the medians of the RMSE, of each oracle's, of the squared error's share inside
    the gate and of the in-gate error's scales, and the in-gate slopes outside 0.9-1.1."""

    def med(values):
        v = [x for x in values if x is not None]
        return None if not v else round(float(np.median(v)), 4)

    opened = [r for r in rows if r["gate_share"] > 0]
    gates = [r["in_gate"] for r in opened if "in_gate" in r]
    outside = lambda key: sum(  # noqa: E731
        1 for g in gates if g[key] is not None and not 0.9 <= g[key] <= 1.1
    )
    return {
        "n": len(rows),
        "gate_closed": sum(1 for r in rows if r["gate_share"] == 0),
        "gate_open_everywhere": sum(1 for r in rows if r["gate_share"] >= 0.999),
        "open_anywhere": {
            "n": len(opened),
            "median_rmse_mm": med([r["output"]["rmse_mm"] for r in opened]),
            "median_rmse_truth_inside_gate_mm": med(
                [r["oracle_inside"]["rmse_mm"] for r in opened]
            ),
            "median_rmse_truth_outside_gate_mm": med(
                [r["oracle_outside"]["rmse_mm"] for r in opened]
            ),
            "median_error_share_inside": med([r["error_share_inside"] for r in opened]),
            "median_in_gate_error_fine_mm": med([g["error_fine_rms_mm"] for g in gates]),
            "median_in_gate_error_broad_mm": med([g["error_broad_rms_mm"] for g in gates]),
            "in_gate_slope_output_outside_0.9_1.1": outside("slope_output"),
            "in_gate_slope_projection_outside_0.9_1.1": outside("slope_projection"),
            "in_gate_slope_line_outside_0.9_1.1": outside("slope_line"),
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("in", "shifted"))
    p.add_argument("--min-snr", type=float, default=10.0)
    p.add_argument("--snr-from", type=Path, default=SNR_FROM)
    p.add_argument("--merge", action="store_true", help="join the two splits' files")
    args = p.parse_args(argv)
    if args.merge:
        parts = {
            s: json.loads((OUT / f"error_attribution_{s}.json").read_text())
            for s in ("in", "shifted")
        }
        rows = [r for part in parts.values() for r in part["scenes"]]
        merged = {"splits": parts, "both_splits": summarise(rows)}
        (OUT / "error_attribution.json").write_text(json.dumps(merged, indent=1))
        for s in ("in", "shifted"):
            (OUT / f"error_attribution_{s}.json").unlink()
        print(json.dumps(merged["both_splits"], indent=1))
        return 0
    if args.split is None:
        p.error("--split or --merge")
    result = run_split(args.split, args.min_snr, args.snr_from)
    (OUT / f"error_attribution_{args.split}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
