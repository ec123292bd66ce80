"""Does ``inject`` on a simulated stack find the threshold that ``evaluate`` finds for that noise?

For each benchmark noise level (turbulence 3 or 10 mm per date, the rest of the training
distribution), a stack of 4 x 4 independent no-deformation benchmark scenes of ``--size`` px
is built (:func:`insar_denoise.evaluation.benchmark.noise_mosaic`: the very noise that
``evaluate`` scores, cell by cell); ``inject`` (model method, the evaluate amplitudes, one
``--size`` px crop per cell) measures its detection threshold, and ``evaluate``'s
in-distribution split gives the threshold for the same noise level. Per amplitude, both
detected fractions are written side by side.

    python benchmarks/inject_vs_evaluate.py   # -> experiments/benchmarks/inject_vs_evaluate.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from insar_denoise.evaluation import benchmark as bm
from insar_denoise.evaluation.runner import run_benchmark
from insar_denoise.io.scene import scene_dataset
from insar_denoise.models import load_model
from insar_denoise.scoring import benchmark_scenes as scn
from insar_denoise.trust.inject import run_injection

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=16, help="injections per amplitude")
    p.add_argument("--n-evaluate", type=int, default=48, help="evaluate scenes per amplitude")
    p.add_argument("--size", type=int, default=64, help="cell side (px), as evaluate's scenes")
    p.add_argument("--seed", type=int, default=11, help="seed of the noise stacks")
    p.add_argument("--metrics", type=Path, help="reuse an evaluate metrics.json (split in)")
    p.add_argument("--output", type=Path, default=OUT / "inject_vs_evaluate.json")
    args = p.parse_args(argv)
    start = time.perf_counter()
    model = load_model("default")
    amps = [a for a in scn.AMPLITUDES_MM if a > 0]
    if args.metrics:
        metrics = json.loads(args.metrics.read_text())
        metrics = metrics.get("splits", {}).get("in", metrics)
    else:
        metrics = run_benchmark(model, n_per_amplitude=args.n_evaluate, seed=7).metrics
    report = {"amplitudes_mm": amps, "model_id": model.metadata.get("model_id"), "levels": {}}
    for level, std in scn.NOISE_STD_MM.items():
        window = int(model.metadata["window"])
        noise = bm.noise_mosaic(level, 4, args.seed, size=args.size, n_dates=window)
        ds = scene_dataset(noise)
        res = run_injection(ds, model, amplitudes=amps, n=args.n, seed=0, crop_px=args.size)
        groups = metrics["groups"]["amplitude_noise"]
        report["levels"][level] = {
            "turbulence_std_mm": std,
            "inject_threshold_mm": res.threshold_mm,
            "evaluate_threshold_mm": metrics["detection_threshold_mm"][level]["model"],
            "inject_detected_frac": [p["detected_frac"] for p in res.per_amplitude],
            "evaluate_detected_frac": [
                groups.get(f"{a:g}|{level}", {}).get("detected_frac", {}).get("model") for a in amps
            ],
            "inject_corr_median": [p["corr_median"] for p in res.per_amplitude],
        }
        print(level, json.dumps(report["levels"][level]), flush=True)
    report["wall_s"] = round(time.perf_counter() - start, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
