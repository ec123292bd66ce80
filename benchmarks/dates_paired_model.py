"""The paired T = 72 / T = 9 check of ``benchmarks/dates_paired.py`` for the engine only.

The classical methods' RMSE and the ideal-observer SNRs of that check do not depend on the
engine's code, so a change of the engine needs only its own runs: each scene of a previous
``dates_paired.json`` whose 72-date SNR is >= 10 is run whole and on the same 9 dates
(``dates_paired.scene_scores``' choice), and the summary is recomputed with the stored
``stack`` / ``best`` / SNR entries.

    python benchmarks/dates_paired_model.py [--split in|shifted] [--tag s30]   # ~7 min a split
    # -> experiments/benchmarks/dates_paired_{tag}_{split}.json (tag s27 by default);
    # --merge [--tag s30] joins the two
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from dates_paired import LONG, SHORT, summarise

from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset
from insar_denoise.models import load_model

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks"


def model_scores(split: str, index: int, model) -> dict:
    """The engine's offset-free scores on scene ``index`` with all dates and with 9."""
    spec = next(s for s in design(84, 0, split) if s.index == index)
    assert spec.n_dates == LONG
    batch, ds = simulate(spec, split, 192)
    dates = np.unique(np.round(np.linspace(0, spec.n_dates - 1, SHORT)).astype(int))
    truth = batch.cumulative[0].numpy().astype(np.float64)
    valid = batch.valid[0].numpy()
    out = {}
    for name, d in (("long", ds), ("short", ds.isel(time=dates))):
        res = denoise_dataset(d, model, progress=False, return_noise=False)
        cum = np.asarray(res["cumulative_deformation"].values, np.float64)
        s = rs.offset_free_scores(cum, truth, valid)
        out[f"model_{name}"] = {k: round(float(v), 4) for k, v in s.items()}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--previous", type=Path, default=OUT / "dates_paired.json")
    p.add_argument("--split", choices=("in", "shifted"))
    p.add_argument("--merge", action="store_true", help="join the two splits' files")
    p.add_argument("--tag", default="s27", help="output names: dates_paired_TAG[_split].json")
    args = p.parse_args(argv)
    if args.merge:
        parts = {
            s: json.loads((OUT / f"dates_paired_{args.tag}_{s}.json").read_text())
            for s in ("in", "shifted")
        }
        every = [x for part in parts.values() for x in part["scenes"]]
        result = {"splits": {s: parts[s] for s in parts}, "both_splits": summarise(every)}
        (OUT / f"dates_paired_{args.tag}.json").write_text(json.dumps(result, indent=1))
        print("both", json.dumps(result["both_splits"]))
        return 0
    previous = json.loads(args.previous.read_text())["splits"][args.split]["scenes"]
    model = load_model("default")
    scenes = []
    for old in (s for s in previous if s["snr_long"] >= 10.0):
        new = {**old, **model_scores(args.split, old["index"], model)}
        scenes.append(new)
        print(
            f"{args.split} {new['index']:3d} {new['source']:14s} model "
            f"{old['model_short']['rmse_mm']:.2f} -> {old['model_long']['rmse_mm']:.2f} then, "
            f"{new['model_short']['rmse_mm']:.2f} -> {new['model_long']['rmse_mm']:.2f} now",
            flush=True,
        )
    result = {"summary": summarise(scenes), "scenes": scenes}
    (OUT / f"dates_paired_{args.tag}_{args.split}.json").write_text(json.dumps(result, indent=1))
    print(args.split, json.dumps(result["summary"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
