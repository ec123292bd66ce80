"""What the ideal observer itself would score on two of Model v2's targets, on Benchmark v2.

The oracle knows each scene's deformation shape and the simulator's noise covariance and fits
only the amplitude (the matched filter, Kay 1998 vol. I sec. 4.3 / vol. II sec. 4.3: the
amplitude's error is Gaussian with standard deviation 1 / SNR of the amplitude). Its map is
``(1 + e) x truth``, so per scene its gain is ``1 + e``, its r is 1 and its RMSE is ``|e|``
times the truth's RMS: no estimator that does not know the shape does better.

- "Gain 0.9-1.1 on every scene with ideal-observer SNR >= 20": per scene the oracle's gain
  falls in the band with probability ``P(|e| <= 0.1) = erf(0.1 SNR / sqrt 2)``; the chance
  that it does on every such scene of the benchmark is the product (independent scenes).
- "At T = 72 the RMSE at SNR >= 10 is <= 0.5x that at T = 9", measured per SNR bin as a share
  of the zero map's RMSE (the truth's RMS): the oracle's share is ``|e|``, of expected size
  ``sqrt(2 / pi) / SNR``; within a bin its T = 72 / T = 9 ratio is the ratio of the bins'
  median 1 / SNR, about 1 wherever the two T have similar SNRs in the bin: binning by the
  ideal SNR already holds what a longer stack gains (``benchmarks/dates_paired.py`` measures
  that on the same signals instead).

    python benchmarks/oracle_targets.py   # seconds -> experiments/benchmarks/oracle_targets.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"
REPORT = OUT / "evaluate_v2_s24" / "metrics.json"
GAIN_BAND = (0.9, 1.1)
GAIN_MIN_SNR = 20.0
RATIO_BINS = ((10.0, 20.0), (20.0, 50.0), (50.0, math.inf))
LONG, SHORT = 72, 9


def gain_band_probability(snr: float, band: tuple[float, float] = GAIN_BAND) -> float:
    """Chance that the oracle's gain ``1 + e``, ``e ~ N(0, 1 / snr²)``, falls in ``band``."""
    lo, hi = ((b - 1.0) * snr / math.sqrt(2.0) for b in band)
    return 0.5 * (math.erf(hi) - math.erf(lo))


def every_scene_gain(scenes: list[dict]) -> dict:
    """The oracle on the scenes at SNR >= :data:`GAIN_MIN_SNR`: per-scene chances and the
    chance that all of them are in the band."""
    snrs = sorted(s["snr"] for s in scenes if (s["snr"] or 0.0) >= GAIN_MIN_SNR)
    per = [gain_band_probability(x) for x in snrs]
    return {
        "n_scenes": len(snrs),
        "p_every_scene": float(np.prod(per)) if per else float("nan"),
        "p_lowest_snr_scene": min(per) if per else float("nan"),
        "expected_scenes_outside": float(sum(1.0 - p for p in per)),
    }


def binned_ratio(scenes: list[dict]) -> dict:
    """Per SNR bin: the oracle's median relative error ``sqrt(2 / pi) / SNR`` at T = 72 and
    T = 9 and their ratio (NaN where a bin holds no scene of that T)."""
    out = {}
    for lo, hi in RATIO_BINS:
        med = {}
        for t in (LONG, SHORT):
            v = [
                math.sqrt(2.0 / math.pi) / s["snr"]
                for s in scenes
                if s["n_dates"] == t and lo <= (s["snr"] or 0.0) < hi
            ]
            med[t] = float(np.median(v)) if v else float("nan")
        out[f"{lo:g}-{hi:g}"] = {
            "T72": med[LONG],
            "T9": med[SHORT],
            "ratio_72_over_9": med[LONG] / med[SHORT],
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--report", type=Path, default=REPORT, help="evaluate's metrics.json")
    p.add_argument("-o", "--output", type=Path, default=OUT / "oracle_targets.json")
    args = p.parse_args(argv)
    splits = json.loads(args.report.read_text())["splits"]
    every = [s for v in splits.values() for s in v["scenes"]]
    result = {
        "report": str(args.report),
        "gain_every_scene": {
            **{k: every_scene_gain(v["scenes"]) for k, v in splits.items()},
            "both": every_scene_gain(every),
        },
        "t72_over_t9_binned": {k: binned_ratio(v["scenes"]) for k, v in splits.items()},
    }
    print(json.dumps(result, indent=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
