"""The gain target's physical reach on Benchmark v2: Cramér-Rao bounds of each SNR >= 20
scene's source geometry carried to the gain and r of its cumulative map.

For every Benchmark v2 scene at ideal-observer SNR >= ``--min-snr`` (from ``--snr-from``),
:mod:`insar_denoise.evaluation.gain_bound` gives the gain's std when only the amplitude is
unknown (``1 / SNR``, the ideal observer's own premise), when the geometry must be
estimated too (Cramér-Rao, ``J⁻¹``) and with the simulator's priors added (``(J + P)⁻¹``),
and the chance that such an efficient estimator lands inside the target (gain 0.9-1.1 and
r >= 0.9; ``--draws`` geometry draws). The shipped model's scores on the design draw (from
``--snr-from``'s sibling run ``--model-from``) and on fresh noise draws
(``--fresh``) stand beside them. About 50 s per scene on one core.

    python benchmarks/gain_reach.py \\
        --snr-from experiments/benchmarks/evaluate_v2_bank/metrics.json \\
        --model-from experiments/benchmarks/evaluate_v2_s41/metrics.json \\
        --fresh experiments/benchmarks/fresh_draws_s41.json \\
                experiments/benchmarks/fresh_draws_s41_draw2.json \\
        --output experiments/benchmarks/gain_reach.json [--workers 2]

``--noise-draw k`` computes the bound under fresh draw ``k``'s noise instead (its holes,
DEM and atmosphere, as ``fresh_draws.py`` scores it): pass that draw's file alone as
``--fresh`` (``gain_reach_draw1.json``, ``gain_reach_draw2.json``). ``--history-unknown``
estimates a transient's centre and duration with the geometry (the history is given
otherwise; ``gain_reach_history.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import json_ready


def bound_scene(
    split: str,
    index: int,
    size: int,
    draws: int,
    noise_draw: int = 0,
    history_unknown: bool = False,
) -> dict:
    """The bound's numbers for one Benchmark v2 scene, under its design's noise or (with
    ``noise_draw`` > 0) under that fresh draw's (``referee_scenes.with_fresh_noise``: its
    atmosphere's parameters, holes, gaps and DEM), as ``fresh_draws.py`` scores it; with
    ``history_unknown`` a transient's centre and duration are estimated too."""
    import torch

    torch.set_num_threads(1)
    from insar_denoise.evaluation import gain_bound as gb
    from insar_denoise.evaluation.referee_scenes import design, simulate, with_fresh_noise

    t0 = time.perf_counter()
    spec = design(84, 0, split)[index]
    config = spec.config(split, size)
    batch, _ = simulate(spec, split, size)
    scene = gb.source_scene(batch, config)
    noise = batch.noise
    if noise_draw:
        _, fresh, _ = with_fresh_noise(spec, split, size, noise_draw)
        scene.valid = fresh.valid[0].numpy().astype(bool)
        scene.dem = fresh.dem[0].double().numpy()
        noise = fresh.noise
    names, derivatives = gb.jacobian(scene)
    h_names, h_derivatives = gb.history_derivatives(scene) if history_unknown else ((), None)
    fisher = gb.fisher_information(scene, noise, derivatives, history=h_derivatives)
    # the cumulative map does not move with the history's parameters
    derivatives = np.concatenate([derivatives, np.zeros((len(h_names), *derivatives.shape[1:]))])
    names = (*names, *h_names)
    prior = gb.prior_precision(names, config)
    amp = names.index("scale_mm")
    amp_only = 1.0 / np.sqrt(fisher[amp, amp]) / scene.scale_mm
    out: dict[str, Any] = {
        "split": split,
        "index": index,
        "source_type": spec.source_type,
        "source": scene.source_name,
        "n_dates": spec.n_dates,
        "amplitude_mm": spec.amplitude_mm,
        "turbulence_mm": spec.turbulence_mm,
        "noise_draw": noise_draw,
        "snr": float(np.sqrt(fisher[amp, amp]) * scene.scale_mm),
        "history": scene.history_name,
        "history_parameters": list(h_names),
        "gain_std_amplitude_only": float(amp_only),
        "geometry": {k: scene.params[k] for k in names if k in scene.params},
    }
    for label, precision in (("crlb", fisher), ("bayes", fisher + prior)):
        cov = gb.parameter_covariance(precision)
        out[label] = {
            "gain_std": gb.gain_std(scene, names, derivatives, cov),
            "param_std": dict(
                zip(names, np.sqrt(np.clip(np.diag(cov), 0, None)).tolist(), strict=True)
            ),
            **gb.reach(scene, derivatives, cov, draws=draws, seed=index),
        }
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def inside(scores: dict[str, Any] | None) -> bool | None:
    """Whether a model record is inside the gain target (None without one)."""
    from insar_denoise.evaluation.gain_bound import in_gain_target

    if not scores or scores.get("gain") is None:
        return None
    return in_gain_target(scores["gain"], scores.get("r"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--snr-from", type=Path, required=True, help="evaluate's metrics.json (SNRs)")
    p.add_argument("--model-from", type=Path, help="evaluate's metrics.json of the shipped model")
    p.add_argument("--fresh", type=Path, nargs="*", default=[], help="fresh_draws.py JSONs")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--min-snr", type=float, default=20.0)
    p.add_argument("--draws", type=int, default=2000)
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--noise-draw", type=int, default=0, help="0: the design's noise; k: fresh")
    p.add_argument(
        "--history-unknown",
        action="store_true",
        help="a transient's centre and duration estimated too (gain_bound.history_derivatives)",
    )
    args = p.parse_args(argv)

    def scenes(path: Path) -> dict[tuple[str, int], dict[str, Any]]:
        m = json.loads(path.read_text())
        return {(s, r["index"]): r for s, sp in m["splits"].items() for r in sp["scenes"]}

    design_rows = scenes(args.snr_from)
    jobs = sorted(k for k, r in design_rows.items() if (r.get("snr") or 0.0) >= args.min_snr)
    model = scenes(args.model_from) if args.model_from else {}
    fresh = [
        {(d["split"], d["index"]): d for d in json.loads(f.read_text())["draws"]}
        for f in args.fresh
    ]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = [
            pool.submit(
                bound_scene, s, i, args.size, args.draws, args.noise_draw, args.history_unknown
            )
            for s, i in jobs
        ]
        rows = []
        for (s, i), fut in zip(jobs, futures, strict=True):
            row = fut.result()
            rec = model.get((s, i), {}).get("methods", {}).get("model")
            row["model_design"] = rec and {k: rec.get(k) for k in ("gain", "r", "rmse_mm")}
            row["model_inside_design"] = inside(rec)
            row["model_inside_fresh"] = [inside(f.get((s, i), {}).get("model")) for f in fresh]
            rows.append(row)
            print(
                f"{s:8s} {i:3d} {row['source_type']:14s} T={row['n_dates']:2d} "
                f"SNR {row['snr']:6.1f}  gain std 1/SNR {row['gain_std_amplitude_only']:.3f} "
                f"CRLB {row['crlb']['gain_std']:.3f} bayes {row['bayes']['gain_std']:.3f}  "
                f"reach {row['crlb']['inside']:.2f}/{row['bayes']['inside']:.2f}  "
                f"model {row['model_inside_design']} {row['model_inside_fresh']}",
                flush=True,
            )
    summary: dict[str, Any] = {"n": len(rows)}
    for label in ("crlb", "bayes"):
        p_in = np.array([r[label]["inside"] for r in rows])
        summary[f"expected_inside_{label}"] = float(p_in.sum())
        summary[f"all_inside_probability_{label}"] = float(np.prod(p_in))
    summary["model_inside_design"] = sum(bool(r["model_inside_design"]) for r in rows)
    for j in range(len(fresh)):
        summary[f"model_inside_fresh_{j + 1}"] = sum(bool(r["model_inside_fresh"][j]) for r in rows)
    summary["expected_inside_amplitude_only"] = float(
        sum(1.0 - 2.0 * _normal_sf(0.1 / r["gain_std_amplitude_only"]) for r in rows)
    )
    report = {
        "kind": "gain_reach",
        "min_snr": args.min_snr,
        "draws": args.draws,
        "history_unknown": args.history_unknown,
        "summary": summary,
        "scenes": rows,
    }
    args.output.write_text(json.dumps(json_ready(report), indent=1, allow_nan=False))
    print(json.dumps(json_ready(summary), indent=1))
    return 0


def _normal_sf(z: float) -> float:
    """Upper tail of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


if __name__ == "__main__":
    raise SystemExit(main())
