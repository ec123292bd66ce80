"""How far the engine's detectors are from the missed signals: the largest z of the gate and
of the second detector on the no-deformation scenes and on the signals at ideal SNR >= 10
that the last evaluation missed (r < 0.7).

    python benchmarks/detector_margins.py --split shifted   # ~2 min a split on one thread

A threshold can only find a missed signal whose largest z is above every null scene's; prints
both and writes ``experiments/benchmarks/detector_margins_{split}.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference.engine import denoise_dataset
from insar_denoise.models import load_model

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
REPORT = OUT / "evaluate_v2_s24" / "metrics.json"


def chosen(report: dict, split: str) -> dict[int, str]:
    """``{index: "null" | "missed"}`` from an evaluation's scenes."""
    out = {}
    for s in report["splits"][split]["scenes"]:
        r = s["methods"]["model"]["r"]
        if s["source_type"] == "none":
            out[s["index"]] = "null"
        elif (s.get("snr") or 0.0) >= 10.0 and not (r is not None and r >= 0.7):
            out[s["index"]] = "missed"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="shifted", choices=("in", "shifted"))
    p.add_argument("--report", type=Path, default=REPORT, help="evaluate's metrics.json")
    args = p.parse_args()
    report = json.loads(args.report.read_text())
    kinds = chosen(report, args.split)
    model = load_model("default")
    rows = []
    for spec in design(int(report["n_per_split"]), int(report["seed"]), args.split):
        if spec.index not in kinds:
            continue
        _, ds = simulate(spec, args.split, int(report["size_px"]))
        attrs = denoise_dataset(ds, model, progress=False).attrs
        gate = json.loads(attrs.get("insar_denoise_significance_z", "[]"))
        second = json.loads(attrs.get("insar_denoise_second_detector_z", "{}") or "{}")
        row = {
            "index": spec.index,
            "kind": kinds[spec.index],
            "n_dates": spec.n_dates,
            "source_type": spec.source_type,
            "gate_z_max": max(gate, default=0.0),
            "second_z_max": max((second.get("largest_z") or {}).values(), default=0.0),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    null = [r for r in rows if r["kind"] == "null"]
    summary = {
        key: max((r[key] for r in null), default=0.0) for key in ("gate_z_max", "second_z_max")
    }
    above = [
        r["index"]
        for r in rows
        if r["kind"] == "missed"
        and (r["gate_z_max"] > summary["gate_z_max"] or r["second_z_max"] > summary["second_z_max"])
    ]
    result = {
        "split": args.split,
        "null_max": summary,
        "missed_above_every_null": above,
        "scenes": rows,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "scenes"}))
    (OUT / f"detector_margins_{args.split}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
