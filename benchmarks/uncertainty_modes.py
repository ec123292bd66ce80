"""Which uncertainty? Coverage and sharpness of the calibrated bands for each feature set.

For the shipped model, the 68 % (1 sigma) and 95 % half-widths are fitted on the benchmark
scenes of seeds 0..F-1 (every stratum, 0-20 mm) and scored on fresh scenes (seed 100):
with or without the variance head (``--head``, or one stored next to the model; trained by
``scripts/train_sigma_head.py``), on the model's single run or on the mean of its 16
test-time copies (flips, rotations, sign). All are calibrated the same way, so coverage is
close to nominal for all; what differs is sharpness (the pinball loss of each band, the
proper score of a quantile, and the mean half-widths: smaller is better), conditional
coverage (by amplitude and turbulence level) and cost (model runs per window). The
reference is a constant band (the floor alone, calibrated the same way): what a feature set
gains is its sharpness below that. The Gaussian reading (2 sigma as the 95 % half-width) is
reported too.

    python benchmarks/uncertainty_modes.py   # -> experiments/benchmarks/uncertainty_modes.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from insar_denoise.models import load_model
from insar_denoise.trust.sigma_head import load_head
from insar_denoise.trust.uncertainty import calibrate, load_sigma_head

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--n", type=int, default=12, help="scenes per amplitude (12: every stratum)")
    p.add_argument("--fit-seeds", type=int, default=2)
    p.add_argument(
        "--head",
        default=None,
        help="a variance head file (scripts/train_sigma_head.py) to score as one more feature",
    )
    p.add_argument("-o", "--output", default=str(OUT / "uncertainty_modes.json"))
    args = p.parse_args(argv)
    model = load_model(args.model)
    head, head_meta = load_sigma_head(model)
    if args.head:
        head, head_meta = load_head(args.head)
    rows = []
    variants = [(False, False, ("floor",))]  # the constant band: the reference
    variants += [(a, h, None) for a in (False, True) for h in ((False, True) if head else (False,))]
    for augment, use_head, terms in variants:
        t0 = time.perf_counter()
        cal = calibrate(
            model,
            n=args.n,
            seed=0,
            fit_seeds=args.fit_seeds,
            head=head if use_head else None,
            augment=augment,
            terms=terms,
        )
        row = {
            "estimate": "mean of 16 test-time copies" if augment else "single run",
            "model_runs_per_window": cal["n_augmentations"],
            "head": use_head,
            "features": list(cal["coefficients"]),
            "coverage_1sigma": cal["coverage_1sigma"],
            "coverage_95": cal["coverage_95"],
            "coverage_2sigma": cal["coverage_2sigma"],
            "mean_sigma_mm": cal["mean_sigma_mm"],
            "mean_halfwidth_95_mm": cal["mean_halfwidth_95_mm"],
            "pinball_68_mm": cal["pinball_68_mm"],
            "pinball_95_mm": cal["pinball_95_mm"],
            "coverage_by_amplitude": cal["coverage_by_amplitude"],
            "coverage_by_noise": cal["coverage_by_noise"],
            "wall_s": time.perf_counter() - t0,
        }
        rows.append(row)
        print(
            f"{row['estimate']:28s} {'+'.join(row['features']):32s} "
            f"cover 1sigma {row['coverage_1sigma']:.3f} 95% {row['coverage_95']:.3f} "
            f"(2 sigma {row['coverage_2sigma']:.3f}); mean sigma {row['mean_sigma_mm']:.2f} "
            f"mm, 95% half-width {row['mean_halfwidth_95_mm']:.2f} mm; pinball "
            f"{row['pinball_68_mm']:.4f} / {row['pinball_95_mm']:.4f} mm",
            flush=True,
        )
    out = {
        "model_id": model.metadata.get("model_id"),
        "n_per_amplitude": args.n,
        "fit_seeds": args.fit_seeds,
        "test_seed": 100,
        "head": {k: v for k, v in head_meta.items() if k != "channels"} if head else None,
        "rows": rows,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=1))
    print("wrote", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
