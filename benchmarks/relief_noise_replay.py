"""The gate with and without the stratification terms of relief-flagged scenes, on the replay.

Replays one split of Benchmark v2 (``significance_replay.capture``: the engine's series
before its scene-wide step) and finishes every scene twice: ``gate`` with the residual
noise maps only (the engine up to session 8), ``relief_noise`` with the stratification
terms that ``inference/relief_noise.py`` adds when the relief check flags the scene (the
engine since session 9). Scores per ideal-observer SNR bin like ``evaluate`` (gain, r,
detected share, RMSE, zero map's RMSE) and the false-positive p99 of the no-deformation
scenes, overall and per scene; lists the flagged scenes. SNRs come from a stored ``evaluate``
report of the same seed and size (``--snr``).

    python benchmarks/relief_noise_replay.py --split shifted -o relief_noise_shifted.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from significance_replay import BINS, bin_summary, capture

from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference.relief import relief_ratio, relief_warning
from insar_denoise.inference.relief_noise import gate_noise
from insar_denoise.inference.significance import apply_gate, cumulative_noise, gate

DEFAULT_SNR = Path("experiments/benchmarks/evaluate_v2_bank/metrics.json")


def finishes(c: dict, dem: np.ndarray) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """The cumulative map of one captured scene, gated both ways, and its relief check."""
    disp = c["removed"] + c["series"]
    noise, projection = cumulative_noise(disp, c["days"], c["var"], c["segments"])
    relief = relief_ratio(projection, noise, dem)
    out = {}
    for name, maps in (
        ("gate", noise),
        ("relief_noise", gate_noise(noise, disp, dem, c["days"], c["var"], c["segments"], relief)),
    ):
        cumulative = c["series"][-1] - c["series"][0]
        g = gate(cumulative, maps, projection=projection)[0]
        series = apply_gate(c["series"], g)
        out[name] = series[-1] - series[0]
    return out, relief


def scene_score(cum: np.ndarray, c: dict):
    """``(gain, r, rmse, zero rmse)`` of a deforming scene, or the |output| of a calm one."""
    ok = c["valid"] & np.isfinite(cum)
    o = cum[ok] - np.median(cum[ok])
    if c["spec"].source_type == "none":
        return np.abs(o)
    t = c["truth"][ok] - np.median(c["truth"][ok])
    r = float(np.corrcoef(o, t)[0, 1]) if o.std() > 0 else 0.0
    g = float((o * t).sum() / (t * t).sum())
    return g, r, float(np.sqrt(np.mean((o - t) ** 2))), float(np.sqrt(np.mean(t**2)))


def summarise(rows: list[tuple], snr: dict[int, float]) -> dict:
    """Medians per SNR bin and the false-positive p99 (overall and per calm scene)."""
    calm = [(i, s) for i, s in rows if isinstance(s, np.ndarray)]
    out: dict = {
        "false_positive_p99_mm": float(np.percentile(np.concatenate([s for _, s in calm]), 99)),
        "false_positive_p99_mm_by_scene": {str(i): float(np.percentile(s, 99)) for i, s in calm},
    }
    for lo, hi in BINS:
        v = [s for i, s in rows if not isinstance(s, np.ndarray) and lo <= snr[i] < hi]
        if v:
            out[f"{lo:g}-{hi:g}"] = bin_summary(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("in", "shifted"), default="shifted")
    ap.add_argument("--n", type=int, default=84)
    ap.add_argument("--snr", type=Path, default=DEFAULT_SNR)
    ap.add_argument("-o", "--output", type=Path, default=Path("relief_noise_replay.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    scenes = json.loads(args.snr.read_text())["splits"][args.split]["scenes"]
    snr = {s["index"]: float(s["snr"]) for s in scenes}
    dems = {
        s.index: simulate(s, args.split, 192)[1]["dem"].values
        for s in design(args.n, 0, args.split)
    }
    rows: dict[str, list] = {"gate": [], "relief_noise": []}
    flagged = []
    for c in capture(args.n, args.split):
        index = c["spec"].index
        maps, relief = finishes(c, dems[index])
        if relief_warning(*relief) is not None:
            flagged.append(dict(index=index, source=c["spec"].source_type, ratio=relief[0]))
        for name, cum in maps.items():
            rows[name].append((index, scene_score(cum, c)))
    result = {"split": args.split, "flagged": flagged}
    result.update({name: summarise(v, snr) for name, v in rows.items()})
    print(json.dumps(result, indent=1))
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
