"""A candidate model on the replay of Benchmark v2: the network's own r, and the gated scores.

Runs the engine with ``--model`` on the scenes of one split (``significance_replay.capture``),
then reports per scene with ideal-observer SNR >= 10 the r of the network's cumulative before
the gate (medians of the removed level), the mean r per source type, and the gated scores per
SNR bin (``significance_replay.score``: gain, r, detected share, RMSE, false-positive p99).
The SNRs come from a stored ``evaluate`` report of the same seed and size (``--snr``).
Session 8 compared the creep fine-tune with the shipped model this way (model card, design
table).

    python benchmarks/replay_candidate.py --model runs/creep/model.pt -o replay_creep.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from significance_replay import capture, finish, score

DEFAULT_SNR = Path("experiments/benchmarks/evaluate_v2_bank/metrics.json")


def network_r(caps: list[dict], snr: dict[int, float], min_snr: float = 10.0) -> list[dict]:
    """Per scene with deformation and SNR >= ``min_snr``: r and gain of the network's
    cumulative (before the gate) on the truth, both with their medians removed."""
    rows = []
    for c in caps:
        spec = c["spec"]
        if spec.source_type == "none" or snr[spec.index] < min_snr:
            continue
        cum = finish(c, "none")
        ok = c["valid"] & np.isfinite(cum)
        o = cum[ok] - np.median(cum[ok])
        t = c["truth"][ok] - np.median(c["truth"][ok])
        r = float(np.corrcoef(o, t)[0, 1]) if o.std() > 0 else 0.0
        rows.append(
            dict(
                index=spec.index,
                source=spec.source_type,
                dates=spec.n_dates,
                snr=snr[spec.index],
                r=r,
                gain=float(o @ t / (t @ t)),
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="model name or file")
    ap.add_argument("--split", choices=("in", "shifted"), default="in")
    ap.add_argument("--n", type=int, default=84)
    ap.add_argument("--snr", type=Path, default=DEFAULT_SNR)
    ap.add_argument("-o", "--output", type=Path, default=Path("replay_candidate.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    scenes = json.loads(args.snr.read_text())["splits"][args.split]["scenes"]
    snr = {s["index"]: float(s["snr"]) for s in scenes}
    caps = capture(args.n, args.split, args.model)
    rows = network_r(caps, snr)
    by_source = {
        k: float(np.mean([r["r"] for r in rows if r["source"] == k]))
        for k in sorted({r["source"] for r in rows})
    }
    result = {
        "model": args.model,
        "split": args.split,
        "network_r_median_snr_ge_10": float(np.median([r["r"] for r in rows])),
        "network_r_mean_by_source": by_source,
        "network_scenes": rows,
        "gated": score(caps, snr)["gate"],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "network_scenes"}, indent=1))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
