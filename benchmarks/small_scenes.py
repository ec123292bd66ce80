"""Small scenes: Benchmark v2 scenes cut to 72 x 48 px (the size of the Envisat stack).

A user who studies one volcano or one fault segment often crops a frame to a few kilometres.
Every scene of Benchmark v2 whose whole-scene ideal-observer SNR is >= 10 is cut to a
72 x 48 px window around the truth's largest |cumulative| (the no-deformation scenes: the
window with the most valid pixels), and its ideal-observer SNR is computed again on the
crop (the simulator's known noise model, :func:`insar_denoise.scoring.ideal_observer.
scene_snr`). On each crop run:

- ``model``: the engine as shipped (scenes under ``stack_path.GATE_MIN_PX`` padded with
  invalid pixels and run through the gate, trace, creep and second-detector steps);
- ``model_wiener``: the same network with the earlier small-scene path (no padding: the
  Wiener step of :mod:`insar_denoise.inference.broad_scales` only);
- ``best``: the best classical correction at Benchmark v2's tuned filter (8 px); ``zero``.

Scores are Benchmark v2's (offset-free r, gain, RMSE); the summary gives medians per SNR bin
of the crop, the share of crops at SNR >= 20 within gain 0.9-1.1 and r >= 0.9 (the Model v2
target), the share detected (r >= 0.7) at SNR >= 10 and, over the no-deformation crops,
the median and largest p99 of |output| (median removed); for the model with and without
padding, the 95 % band's coverage (``benchmarks/stack_uncertainty.py``'s definition: the
median share of each crop's pixels, and the deforming pixels' share pooled over crops).

    python benchmarks/small_scenes.py --split in -o experiments/benchmarks/small_scenes_in.json
    python benchmarks/small_scenes.py --merge A.json B.json -o small_scenes.json   # ~6 min each
    python benchmarks/small_scenes.py --split in --crop 128 128 -o ...   # another size
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset, stack_path
from insar_denoise.models import load_model
from insar_denoise.scoring.ideal_observer import scene_snr

ROOT = Path(__file__).resolve().parents[1]
METRICS = ROOT / "experiments" / "benchmarks" / "evaluate_v2_s34" / "metrics.json"
#: crop size (px): the Envisat NSW stack of ``real_injection.py`` is 72 x 47
CROP = (72, 48)
#: Benchmark v2's classical filter width (px), tuned on its tuning scenes
BEST_SIGMA_PX = 8.0
SNR_TARGET, GAIN_RANGE, R_TARGET = 20.0, (0.9, 1.1), 0.9
METHODS = ("model", "model_wiener", "best", "zero")


def crop_window(
    truth: np.ndarray, valid: np.ndarray, none: bool, crop: tuple[int, int] = CROP
) -> tuple[slice, slice]:
    """The :data:`CROP` window around the largest |truth - median| or, for a no-deformation
    scene (``none``), the one with the most valid pixels (8 px steps; a crop that is mostly
    hole tests nothing)."""
    (h, w), (ch, cw) = truth.shape, crop
    if none:
        starts = [(y, x) for y in range(0, h - ch + 1, 8) for x in range(0, w - cw + 1, 8)]
        y0, x0 = max(starts, key=lambda s: int(valid[s[0] : s[0] + ch, s[1] : s[1] + cw].sum()))
    else:
        a = np.abs(truth - np.median(truth))
        y, x = np.unravel_index(int(np.argmax(a)), a.shape)
        y0, x0 = int(np.clip(y - ch // 2, 0, h - ch)), int(np.clip(x - cw // 2, 0, w - cw))
    return slice(y0, y0 + ch), slice(x0, x0 + cw)


def model_outputs(ds, model, pad: bool) -> tuple[np.ndarray, np.ndarray]:
    """The engine's cumulative and 95 % band with or without the small-scene padding."""
    stack_path.PAD_SMALL, before = pad, stack_path.PAD_SMALL
    try:
        out = denoise_dataset(ds, model, progress=False, return_noise=False)
    finally:
        stack_path.PAD_SMALL = before
    cum = np.asarray(out["cumulative_deformation"].values, np.float64)
    return cum, np.asarray(out["uncertainty_95"].values, np.float64)


def band_coverage(cum: np.ndarray, band: np.ndarray, truth: np.ndarray, valid: np.ndarray):
    """Shares of valid and of deforming (|truth - median| > 2 mm) pixels whose error (its
    median removed) lies within the 95 % band, as ``benchmarks/stack_uncertainty.py``."""
    ok = valid & np.isfinite(cum) & np.isfinite(band)
    err = cum[ok] - truth[ok]
    err = np.abs(err - np.median(err))
    inside = err <= band[ok]
    moving = np.abs(truth[ok] - np.median(truth[ok])) > 2.0
    return {
        "in95": float(inside.mean()),
        "moving_in95": float(inside[moving].mean()) if moving.any() else None,
        "n_moving": int(moving.sum()),
    }


def crop_record(split: str, spec, model, crop: tuple[int, int] = CROP) -> dict:
    """Scores of every method on the crop of one scene."""
    batch, ds = simulate(spec, split, 192)
    truth = batch.cumulative[0].numpy().astype(np.float64)
    none = spec.source_type == "none"
    rows, cols = crop_window(truth, batch.valid[0].numpy(), none, crop)
    sub = ds.isel(y=rows, x=cols)
    t, valid = truth[rows, cols], batch.valid[0].numpy()[rows, cols]
    padded, wiener = model_outputs(sub, model, True), model_outputs(sub, model, False)
    outputs = {
        "model": padded[0],
        "model_wiener": wiener[0],
        "best": np.asarray(
            denoise_dataset(sub, None, method="best", sigma_px=BEST_SIGMA_PX, progress=False)[
                "cumulative_deformation"
            ].values,
            np.float64,
        ),
        "zero": np.zeros_like(t),
    }
    rec = {"split": split, "index": spec.index, "source_type": spec.source_type}
    rec.update({"n_dates": spec.n_dates, "window": [rows.start, cols.start]})
    rec["valid_share"] = round(float(valid.mean()), 3)
    rec["band_95"] = {
        "model": band_coverage(*padded, t, valid),
        "model_wiener": band_coverage(*wiener, t, valid),
    }
    if none:
        rec["null_p99_mm"] = {
            m: rs.false_positive_level(rs.centered(o, valid & np.isfinite(o)))
            for m, o in outputs.items()
        }
        return rec
    deformation = batch.deformation[0][:, rows, cols]
    dem = batch.dem[0][rows, cols]
    rec["snr"] = float(scene_snr(deformation, valid, dem, batch.noise, index=0).snr)
    rec["methods"] = {
        m: {k: float(v) for k, v in rs.offset_free_scores(o, t, valid).items()}
        for m, o in outputs.items()
    }
    return rec


def selected(split: str, metrics: Path) -> list:
    """The scenes of ``split`` with whole-scene SNR >= 10 and the no-deformation ones."""
    scenes = json.loads(metrics.read_text())["splits"][split]["scenes"]
    keep = {
        s["index"]
        for s in scenes
        if s["source_type"] == "none" or (s.get("snr") is not None and s["snr"] >= 10.0)
    }
    return [s for s in design(84, 0, split) if s.index in keep]


def meets(scores: dict) -> bool:
    """The Model v2 target at SNR >= 20: gain in 0.9-1.1 and r >= 0.9."""
    g, r = scores["gain"], np.nan_to_num(scores["r"], nan=-1.0)
    return bool(GAIN_RANGE[0] <= g <= GAIN_RANGE[1] and r >= R_TARGET)


def summary(records: list[dict]) -> dict:
    """Medians per crop SNR bin, the two targets and the false-positive p99 per method."""
    signal = [r for r in records if "snr" in r]
    out: dict = {"n_crops": len(signal), "by_snr": {}}
    for b in rs.SNR_BINS:
        inside = [r for r in signal if rs.snr_bin(r["snr"]) == b]
        if not inside:
            continue
        out["by_snr"][b] = {"n": len(inside)}
        for m in METHODS:
            vals = {k: [r["methods"][m][k] for r in inside] for k in ("rmse_mm", "gain", "r")}
            out["by_snr"][b][m] = {
                "rmse_mm": float(np.median(vals["rmse_mm"])),
                "gain": float(np.nanmedian(vals["gain"])),
                "detected": float(np.mean(np.nan_to_num(vals["r"], nan=-1.0) >= rs.R_MIN)),
            }
    strong = [r for r in signal if r["snr"] >= SNR_TARGET]
    ten = [r for r in signal if r["snr"] >= 10.0]
    out["snr_20"] = {
        "n": len(strong),
        **{m: float(np.mean([meets(r["methods"][m]) for r in strong])) for m in METHODS},
    }
    out["detected_snr_10"] = {
        "n": len(ten),
        **{m: float(np.mean([_detected(r["methods"][m]) for r in ten])) for m in METHODS},
    }
    nulls = [r["null_p99_mm"] for r in records if "null_p99_mm" in r]
    out["no_deformation"] = {
        "n": len(nulls),
        **{
            m: {"p99_mm_median": _stat(np.median, nulls, m), "p99_mm_max": _stat(np.max, nulls, m)}
            for m in METHODS
        },
    }
    out["band_95"] = {
        m: {
            "in95_median": float(np.median([r["band_95"][m]["in95"] for r in records])),
            "moving_in95_pooled": _pooled(records, m),
        }
        for m in ("model", "model_wiener")
    }
    return out


def _pooled(records: list[dict], method: str) -> float | None:
    """The deforming pixels' 95 % coverage pooled over the crops (weighted by their count)."""
    cells = [r["band_95"][method] for r in records if r["band_95"][method]["n_moving"] > 0]
    n = sum(c["n_moving"] for c in cells)
    return sum(c["moving_in95"] * c["n_moving"] for c in cells) / n if n else None


def _detected(scores: dict) -> bool:
    return bool(np.nan_to_num(scores["r"], nan=-1.0) >= rs.R_MIN)


def _stat(fn, nulls: list[dict], method: str) -> float | None:
    return float(fn([n[method] for n in nulls])) if nulls else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", choices=("in", "shifted"))
    p.add_argument("--metrics", type=Path, default=METRICS, help="a Benchmark v2 metrics.json")
    p.add_argument("--merge", type=Path, nargs="+", help="join split files (with -o)")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--crop", type=int, nargs=2, default=CROP, metavar=("H", "W"), help="px")
    args = p.parse_args(argv)
    if args.merge:
        records = [r for f in args.merge for r in json.loads(f.read_text())["crops"]]
        crops = {tuple(json.loads(f.read_text())["crop_px"]) for f in args.merge}
        if len(crops) > 1:
            p.error(f"the files hold crops of different sizes: {sorted(crops)}")
        report = {"crop_px": list(crops.pop()), "summary": summary(records), "crops": records}
        args.output.write_text(json.dumps(report, indent=1))
        print(json.dumps(report["summary"], indent=1))
        return 0
    if args.split is None:
        p.error("--split or --merge is required")
    start = time.perf_counter()
    model = load_model("default")
    records = []
    for spec in selected(args.split, args.metrics):
        rec = crop_record(args.split, spec, model, tuple(args.crop))
        records.append(rec)
        if "snr" in rec:
            ms = rec["methods"]
            print(
                f"{args.split} {spec.index} {spec.source_type} T={spec.n_dates} "
                f"snr {rec['snr']:.1f} "
                + " ".join(f"{m} g {ms[m]['gain']:.2f} r {ms[m]['r']:.2f}" for m in METHODS[:3]),
                flush=True,
            )
    report = {
        "crop_px": list(args.crop),
        "split": args.split,
        "summary": summary(records),
        "crops": records,
        "wall_s": round(time.perf_counter() - start, 1),
    }
    args.output.write_text(json.dumps(report, indent=1))
    print(json.dumps(report["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
