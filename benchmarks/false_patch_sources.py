"""Which noise family makes the false patches: no-deformation scenes of Benchmark v2 rerun
with one family switched off.

For every no-deformation scene of a split (same seeds, so every other draw is unchanged), the
shipped engine's output is recomputed with the unwrapping errors off, the quadratic
stratified term off, and all stratification off, and the p99 / max of |output - median| (mm)
is reported with the relief check's ratio (``inference/relief.py``) of the original scene.
Session 8: every scene with a false patch returned 0.0 mm with the quadratic term off.

    python benchmarks/false_patch_sources.py --split shifted -o false_patch_sources.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from insar_denoise.evaluation import referee_scenes as rs
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.relief import RELIEF_RATIO_ATTR
from insar_denoise.models import load_model

VARIANTS: dict[str, dict] = {
    "as_simulated": {},
    "no_unwrapping": {"unwrap_prob": 0.0},
    "no_quadratic_stratification": {"stratified_quad_mm_per_km2": (0.0, 0.0)},
    "no_stratification": {
        "stratified_quad_mm_per_km2": (0.0, 0.0),
        "stratified_mm_per_km": (0.0, 0.0),
    },
}


def false_patch(spec, split: str, model, overrides: dict, size: int) -> dict:
    """p99 and max of |output - median| (mm) of one scene simulated with ``overrides``."""
    base = rs.SceneSpec.config
    rs.SceneSpec.config = lambda self, sp, sz: dataclasses.replace(base(self, sp, sz), **overrides)
    try:
        _, ds = rs.simulate(spec, split, size)
    finally:
        rs.SceneSpec.config = base
    out = denoise_dataset(ds, model, progress=False)
    cum = out["cumulative_deformation"].values
    dev = np.abs(cum[np.isfinite(cum)] - np.nanmedian(cum))
    ratio = out.attrs.get(RELIEF_RATIO_ATTR)
    return dict(p99_mm=float(np.percentile(dev, 99)), max_mm=float(dev.max()), relief_ratio=ratio)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=("in", "shifted"), default="shifted")
    ap.add_argument("--n", type=int, default=84)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("-o", "--output", type=Path, default=Path("false_patch_sources.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model("default")
    rows = []
    for spec in rs.design(args.n, 0, args.split):
        if spec.source_type != "none":
            continue
        row = {"index": spec.index, "dates": spec.n_dates}
        for name, overrides in VARIANTS.items():
            row[name] = false_patch(spec, args.split, model, overrides, args.size)
        rows.append(row)
        print(
            spec.index,
            spec.n_dates,
            " | ".join(f"{k} {row[k]['p99_mm']:.1f}" for k in VARIANTS),
            f"relief {row['as_simulated']['relief_ratio']}",
            flush=True,
        )
    args.output.write_text(json.dumps({"split": args.split, "scenes": rows}, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
