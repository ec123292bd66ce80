"""The engine's elastic-source fitter against the gain target's reach (model card, design
table (bn)).

The Cramér-Rao reach of ``benchmarks/gain_reach.py`` belongs to an efficient estimator that
fits each source's geometry. The engine has such a fitter (``inference/elastic_sources.py``:
Okada's rectangle, a Mogi source, a Gaussian bowl; geometry by Nelder-Mead, prewhitened by
differences on block means), used by the probes of design tables (bg)-(bi) and (bm). Here,
for each scene of ``--reach`` (its design draw; creeps left out: the creep model fits those),
the engine runs as shipped while the second detector's straight-line cumulative, its filled
areas and the DEM are read; each family is then fitted to that map from starts at the areas,
and every fitted map, the line's map itself and the shipped output are scored against the
truth (offset-free, as ``evaluate``) beside the scene's Cramér-Rao chance of landing inside.
The fitter's objective is also read at the true shape (``true_shape``: its least-squares
scale on the map, which an efficient estimator would hold to about ``1 / SNR`` of 1 on a
steady history, and the misfit there, against the fit's: above it, the search fell short).

    python benchmarks/source_fit_reach.py --reach experiments/benchmarks/gain_reach.json \\
        --output experiments/benchmarks/source_fit_reach.json [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import json_ready


def fit_scene(split: str, index: int) -> dict[str, Any]:
    """The shipped output, the line's map and each family's fit of it, scored."""
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(__file__).parent))
    import fresh_draws as fd

    from insar_denoise.evaluation.gain_bound import in_gain_target
    from insar_denoise.evaluation.referee_scoring import offset_free_scores
    from insar_denoise.inference import bilaplacian_support as bs
    from insar_denoise.inference import elastic_sources as es

    cap: dict[str, Any] = {}
    detect = bs.detect

    def _detect(gate_map, maps, shape, dem=None, n_dates=None):
        cap["line"] = np.asarray(maps[3][0 : shape[0]], np.float64)
        cap["dem"] = dem
        found = detect(gate_map, maps, shape, dem, n_dates)
        cap["areas"] = found.new
        return found

    bs.detect = _detect
    try:
        spec, _, ds, truth, valid = fd.scene_draw(f"{split}:{index}")
        res = fd.run_shipped(ds, spec.n_dates)
    finally:
        bs.detect = detect
    output = np.asarray(res["cumulative_deformation"].values, np.float64)
    valid = np.asarray(valid, bool)

    def scored(values: np.ndarray) -> dict[str, Any]:
        s = offset_free_scores(values, truth, valid & np.isfinite(values))
        return {**s, "inside": in_gain_target(s["gain"], s["r"])}

    row: dict[str, Any] = {"split": split, "index": index, "shipped": scored(output)}
    if "line" not in cap:
        return row
    line = cap["line"]
    ok = np.isfinite(line)
    areas = cap["areas"] if cap["areas"] is not None and cap["areas"].any() else ok
    row["line"] = scored(np.where(ok, line, np.nan))
    mapped = np.where(ok, line, np.nan)
    starts = es.seed_positions(np.where(ok, line, 0.0), areas & ok, ok)
    fits = {}
    for family in es.FAMILIES:
        fit = es.fit_source(mapped, cap["dem"], family, es.seeds(family, starts))
        fits[family] = {**scored(np.where(ok, fit.cumulative, np.nan)), "rss": fit.rss}
    row["fits"] = fits
    row["best_family"] = min(fits, key=lambda f: fits[f]["rss"])
    row["true_shape"] = true_shape_fit(mapped, truth, cap["dem"])
    return row


def true_shape_fit(mapped: np.ndarray, truth: np.ndarray, dem) -> dict[str, float]:
    """The fitter's objective (``elastic_sources.differenced``, a plane) given the true
    shape: its least-squares scale on the map, the misfit there and with no source."""
    from insar_denoise.inference.creep_model import block_means
    from insar_denoise.inference.elastic_sources import differenced

    d = differenced(mapped, dem)
    column = d.of(block_means(np.where(np.isfinite(mapped), truth, np.nan), d.k))
    y, plane = d.y[d.use], d.offsets[d.use]

    def rss(x: np.ndarray) -> tuple[float, np.ndarray]:
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        return float(np.sum((y - x @ coef) ** 2)), coef

    misfit, coef = rss(np.c_[column[d.use], plane])
    return {"scale": float(coef[0]), "rss": misfit, "rss_no_source": rss(plane)[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reach", type=Path, required=True, help="gain_reach.json")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    scenes = [
        s for s in json.loads(args.reach.read_text())["scenes"] if s["source_type"] != "creep"
    ]
    family = {"mogi_deep": "mogi", "mogi_shallow": "mogi", "bowl": "bowl"}
    rows = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        jobs = pool.map(fit_scene, [s["split"] for s in scenes], [s["index"] for s in scenes])
        for scene, row in zip(scenes, jobs, strict=True):
            row["source_type"] = scene["source_type"]
            row["true_family"] = family.get(scene["source_type"], "okada")
            row["reach"] = scene["crlb"]["inside"]
            rows.append(row)
            fits = row.get("fits", {})
            text = "  ".join(
                f"{f} g {v['gain']:.2f} r {v['r']:.2f}{'*' if v['inside'] else ''}"
                for f, v in fits.items()
            )
            s = row["shipped"]
            print(
                f"{row['split']:8s} {row['index']:3d} {row['source_type']:13s} reach "
                f"{row['reach']:.2f}  shipped g {s['gain']:.2f} r {s['r']:.2f}"
                f"{'*' if s['inside'] else ''}  {text}",
                flush=True,
            )
    fitted = [r for r in rows if "fits" in r]
    summary = {
        "scenes": len(rows),
        "reach_expected": float(sum(r["reach"] for r in rows)),
        "inside_shipped": sum(r["shipped"]["inside"] for r in rows),
        "fitted": len(fitted),
        "inside_line_map": sum(r["line"]["inside"] for r in fitted),
        "inside_best_fit": sum(r["fits"][r["best_family"]]["inside"] for r in fitted),
        "inside_true_family_fit": sum(r["fits"][r["true_family"]]["inside"] for r in fitted),
        "inside_any_family_fit": sum(any(v["inside"] for v in r["fits"].values()) for r in fitted),
        "true_shape_scale_range": [
            min(r["true_shape"]["scale"] for r in fitted),
            max(r["true_shape"]["scale"] for r in fitted),
        ],
        "true_family_misfit_above_true_shape": sum(
            r["fits"][r["true_family"]]["rss"] > r["true_shape"]["rss"] for r in fitted
        ),
    }
    report = {"kind": "source_fit_reach", "summary": summary, "scenes": rows}
    args.output.write_text(json.dumps(json_ready(report), indent=1, allow_nan=False))
    print(json.dumps(json_ready(summary), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
