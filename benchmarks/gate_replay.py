"""Replay of the gate on Benchmark v2: capture the engine's finish once, then try gate variants.

``capture``: the engine runs the shipped model on every scene of a split (as ``evaluate``,
seed 0, 192 px) and the inputs of its gated finish (``stack_path.gated_finish``: the series
before the gate, the input stack relative to the first date, the gate's noise maps with
their relief terms, the DEM, the date variances) are written per scene to ``--store``.
``score``: each stored scene is finished again by that same function, the variants wrapped
around the gate, and summarised as ``evaluate`` summarises (``referee_scoring.summarize``
per ideal-observer SNR bin: detected r >= 0.7, median gain and RMSE; the false-positive p99
on the no-deformation scenes); with no variant it gives
``evaluate``'s numbers exactly (session 14: every bin of both splits). The SNRs and the best
classical correction's and zero map's scores come from a stored ``evaluate`` report
(``--report``). Capture: ~8 min per split on one thread (2.5 GB on disk for both); score:
~4 min.

Variants (session 14, model card's design table): ``--thresholds`` per-filter detection
thresholds (``kind:scale=value``; the rest at ``significance.THRESHOLD``); ``--seeded Z``
a second pass of the Gaussians of >= 4 px at ``Z`` sigma, kept where it touches a detection;
``--project-relief`` relief-flagged scenes tested with each map's elevation fit
``c + k z + q z²`` removed instead of the relief terms in the noise maps;
``--relief-scale X`` the relief terms of flagged scenes' noise maps times ``X``;
``--line-where-linear Z`` detected areas where the model's and the straight line's
least-squares cumulatives differ by less than ``Z`` sigma get the straight line's map.

    python benchmarks/gate_replay.py capture --split in --store /tmp/gatecap
    python benchmarks/gate_replay.py score --split in --store /tmp/gatecap \
        --thresholds bandpass:2=4.5 slope_x:4=4.5 -o gate_replay_in.json
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import torch

import insar_denoise.inference.significance as sig
import insar_denoise.inference.stack_path as sp
from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.evaluation.referee_scenes import design, simulate
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.bilaplacian_support import noise_stack
from insar_denoise.inference.relief_noise import WithStratification
from insar_denoise.models import load_model
from insar_denoise.scoring.metrics import false_positive_level

DEFAULT_REPORT = Path("experiments/benchmarks/evaluate_v2_s18/metrics.json")
#: relief-flagged scenes: each map's elevation fit removed instead of the relief noise terms
PROJECT_RELIEF = False
#: a second pass at this threshold (Gaussians of >= 4 px), kept where it touches a first-pass
#: detection (None: off)
SEEDED: float | None = None
#: relief-flagged scenes: the stratification terms of the noise maps times this factor
RELIEF_SCALE = 1.0
#: inside each detected area, output the straight-line cumulative (its series a straight line
#: in time) where the model's and the line's least-squares cumulatives do not differ by more
#: than this many noise std at any Gaussian (None: off)
LINE_WHERE_LINEAR: float | None = None


def capture(split: str, store: Path, n: int = 84, model_name: str = "default") -> None:
    """Run the engine (``model_name``: a packaged model or a file) on scenes ``0..n-1`` of
    ``split`` and store the inputs of its gated finish
    (:func:`insar_denoise.inference.stack_path.gated_finish`)."""
    store.mkdir(parents=True, exist_ok=True)
    got: dict = {}
    finish_orig = sp.gated_finish

    def keep(series, referenced, dem, days, date_var, segments, maps):
        got.update(series=series.copy(), referenced=referenced, days=days, var=date_var)
        got.update(segments=segments, maps=tuple(maps))
        got["dem"] = None if dem is None else np.asarray(dem)
        return finish_orig(series, referenced, dem, days, date_var, segments, maps)

    sp.gated_finish = keep
    model = load_model(model_name)
    try:
        for spec in design(n, 0, split):
            got.clear()
            batch, ds = simulate(spec, split, 192)
            res = denoise_dataset(ds, model, progress=False, return_noise=False)
            got["engine_cumulative"] = np.asarray(res["cumulative_deformation"].values)
            got["truth"] = batch.cumulative[0].numpy()
            got["valid"] = batch.valid[0].numpy()
            got["index"], got["source"] = spec.index, spec.source_type
            with open(store / f"{split}_{spec.index:03d}.pkl", "wb") as f:
                pickle.dump(dict(got), f)
            print(spec.index, spec.source_type, flush=True)
    finally:
        sp.gated_finish = finish_orig


def seeded(gate):
    """``gate`` plus the detections of the Gaussians of >= 4 px at :data:`SEEDED` that touch
    its own."""
    from scipy import ndimage

    def run(cumulative, noise, **kw):
        g, zmax, sd = gate(cumulative, noise, **kw)
        if not (g > 0).any():
            return g, zmax, sd
        saved = sig.FILTER_THRESHOLDS
        sig.FILTER_THRESHOLDS = {
            f: (SEEDED if f[0] == "smooth" and f[1] >= 4 else np.inf) for f in sig.FILTERS
        }
        try:
            g2 = gate(cumulative, noise, **kw)[0]
        finally:
            sig.FILTER_THRESHOLDS = saved
        labels, _ = ndimage.label(g2 > 0)
        touch = np.unique(labels[(g > 0) & (labels > 0)])
        keep = np.isin(labels, touch) & (labels > 0)
        return np.maximum(g, np.where(keep, g2, 0.0)).astype(np.float32), zmax, sd

    return run


def without_relief(maps: np.ndarray, dem: np.ndarray, base_m: float) -> np.ndarray:
    """``maps (n, H, W)`` minus each one's least-squares ``c + k z + q z²`` (z: elevation)."""
    z = ((dem - base_m) / 1000.0).astype(np.float64)
    basis = np.stack([np.ones_like(z), z, z * z], -1)
    out = np.empty(maps.shape, np.float32)
    for j, m in enumerate(maps):
        ok = np.isfinite(m)
        coef = np.linalg.lstsq(basis[ok], m[ok].astype(np.float64), rcond=None)[0]
        out[j] = (m - basis @ coef).astype(np.float32)
    return out


def relief_projected(gate):
    """``gate`` on relief-flagged maps with each map's elevation fit removed instead of the
    stratification terms in the noise maps."""

    def run(cumulative, noise, projection=None, linear=None):
        if not isinstance(noise, WithStratification):
            return gate(cumulative, noise, projection=projection, linear=linear)
        dem, base = noise.dem, noise.base_m
        line, line_noise = linear
        cumulative, projection, line = without_relief(
            np.stack([cumulative, projection, line]), dem, base
        )
        noise = without_relief(np.asarray(noise.noise, np.float32), dem, base)
        line_noise = without_relief(np.asarray(line_noise.noise, np.float32), dem, base)
        return gate(cumulative, noise, projection=projection, linear=(line, line_noise))

    return run


def relief_scaled(gate):
    """``gate`` with the stratification terms of relief-flagged noise maps times
    :data:`RELIEF_SCALE`."""

    def scaled(m):
        if not isinstance(m, WithStratification):
            return m
        return WithStratification(m.noise, m.dem, m.terms * RELIEF_SCALE, m.base_m)

    def run(cumulative, noise, projection=None, linear=None):
        linear = None if linear is None else (linear[0], scaled(linear[1]))
        return gate(cumulative, scaled(noise), projection=projection, linear=linear)

    return run


def noise_array(maps, dtype=None) -> np.ndarray:
    """Noise maps ``(n, H, W)`` as one array (:func:`.bilaplacian_support.noise_stack`)."""
    return noise_stack(maps, maps.shape[1], dtype)


def linear_areas(maps: tuple, g: np.ndarray) -> np.ndarray:
    """Bool map: detected areas whose history the straight line describes (the difference
    of the two least-squares cumulatives stays under :data:`LINE_WHERE_LINEAR` sigma)."""
    from scipy import ndimage

    noise, projection, line_noise, line = maps
    diff = np.asarray(projection, np.float32) - np.asarray(line, np.float32)
    diff_noise = noise_array(noise) - noise_array(line_noise)
    smooth = tuple(f for f in sig.FILTERS if f[0] == "smooth")
    bent_px = sig.gate(diff, diff_noise, filters=smooth, threshold=LINE_WHERE_LINEAR)[0] > 0
    labels, _ = ndimage.label(g > 0)
    bent = np.unique(labels[bent_px & (labels > 0)])
    return (labels > 0) & ~np.isin(labels, bent)


def line_where_linear(apply_gate, c: dict):
    """``apply_gate`` whose series, in the detected areas that :func:`linear_areas` finds,
    is the straight line's cumulative growing linearly in time."""

    def run(series, g):
        out = apply_gate(series, g)
        if not (g > 0).any():
            return out
        line_map = np.asarray(c["maps"][3], np.float64)
        # the line's map is NaN on pixels missing dates
        use = linear_areas(c["maps"], np.asarray(g)) & np.isfinite(line_map)
        if not use.any():
            return out
        days = np.asarray(c["days"], np.float64)
        frac = (days - days[0]) / (days[-1] - days[0])
        cum_line = np.asarray(g) * (line_map - np.nanmedian(line_map))
        for t in range(len(out)):
            out[t] = np.where(use, np.nanmedian(out[t]) + frac[t] * cum_line, out[t])
        return out

    return run


def finish(c: dict) -> np.ndarray:
    """The cumulative of one stored scene finished again by the engine's gated finish, with
    the variants of the module's settings wrapped around the gate."""
    if "maps" not in c:  # not gated (the engine's other branch): the stored output
        return c["engine_cumulative"]
    gate, apply_gate = sig.gate, sig.apply_gate
    if RELIEF_SCALE != 1.0:
        sig.gate = relief_scaled(sig.gate)
    if PROJECT_RELIEF:
        sig.gate = relief_projected(sig.gate)
    if SEEDED is not None:
        sig.gate = seeded(sig.gate)
    if LINE_WHERE_LINEAR is not None:
        sig.apply_gate = line_where_linear(apply_gate, c)
    try:
        args = (c["referenced"], c["dem"], c["days"], c["var"], c["segments"], c["maps"])
        series = sp.gated_finish(c["series"].copy(), *args)[0]
    finally:
        sig.gate, sig.apply_gate = gate, apply_gate
    return series[-1] - series[0]


def score(split: str, store: Path, report: Path) -> dict:
    """Scores per SNR bin of the stored scenes finished again (``evaluate``'s summaries:
    :func:`insar_denoise.evaluation.referee_scoring.summarize`), the best classical
    correction's and the zero map's from ``report``."""
    scenes = {s["index"]: s for s in json.loads(report.read_text())["splits"][split]["scenes"]}
    records, fp, per_scene = [], [], []
    for path in sorted(store.glob(f"{split}_*.pkl")):
        with open(path, "rb") as f:
            c = pickle.load(f)
        cum = finish(c)
        truth = c["truth"].astype(np.float64)
        mask = c["valid"] & np.isfinite(cum) & np.isfinite(truth)
        s = rs.offset_free_scores(cum, truth, mask)
        ref = scenes[c["index"]]
        per_scene.append(dict(index=c["index"], source=c["source"], snr=ref["snr"], **s))
        if c["source"] == "none":
            fp.append(rs.centered(cum, mask))
            continue
        model = {**s, "series_rmse_mm": float("nan")}
        methods = {"model": model, "best": ref["methods"]["best"], "zero": ref["methods"]["zero"]}
        records.append({**ref, "methods": methods})
    return {**summary(records, fp), "scenes": per_scene}


def summary(records: list, fp: list) -> dict:
    """``evaluate``'s summaries of re-finished scenes: per SNR bin the model's detected share,
    gain and RMSE beside the best classical correction's and the zero map's RMSE; the
    detected share at SNR >= 10; the false-positive p99 of the no-deformation maps ``fp``."""
    out: dict = {}
    for label in rs.SNR_BINS:
        in_bin = [r for r in records if r["snr_bin"] == label]
        if in_bin:
            m = rs.summarize(in_bin, ("model", "best", "zero"))["methods"]
            out[label] = dict(
                n=len(in_bin),
                detected=m["model"]["detected"],
                gain=m["model"]["gain"],
                rmse_mm=m["model"]["rmse_mm"],
                best_rmse_mm=m["best"]["rmse_mm"],
                zero_rmse_mm=m["zero"]["rmse_mm"],
            )
    high = [r for r in records if r["snr"] >= 10]
    out["detected_snr_ge_10"] = rs.summarize(high, ("model",))["methods"]["model"]["detected"]
    out["false_positive_p99_mm"] = false_positive_level(np.concatenate(fp)) if fp else 0.0
    return out


def parse_thresholds(items: list[str]) -> dict:
    """``["smooth:16=4.5", ...]`` -> ``{("smooth", 16.0): 4.5, ...}``."""
    out = {}
    for item in items:
        key, value = item.split("=")
        kind, scale = key.split(":")
        out[(kind, float(scale))] = float(value)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("capture", "score"))
    ap.add_argument("--split", choices=("in", "shifted"), default="in")
    ap.add_argument("--store", type=Path, required=True)
    ap.add_argument("--n", type=int, default=84)
    ap.add_argument("--report", type=Path, default=DEFAULT_REPORT)
    ap.add_argument("--thresholds", nargs="*", default=[])
    ap.add_argument("--line-where-linear", type=float, help="threshold of the linearity test")
    ap.add_argument("--seeded", type=float, help="second-pass threshold, broad Gaussians")
    ap.add_argument("--relief-scale", type=float, default=1.0, help="relief terms x this")
    ap.add_argument("--project-relief", action="store_true", help="flagged scenes: terms out")
    ap.add_argument("--model", default="default", help="capture: a packaged model or a file")
    ap.add_argument("-o", "--output", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.what == "capture":
        capture(args.split, args.store, args.n, args.model)
        return
    sig.FILTER_THRESHOLDS = parse_thresholds(args.thresholds)
    global PROJECT_RELIEF, SEEDED, LINE_WHERE_LINEAR, RELIEF_SCALE
    PROJECT_RELIEF, SEEDED, RELIEF_SCALE = args.project_relief, args.seeded, args.relief_scale
    LINE_WHERE_LINEAR = args.line_where_linear
    result = score(args.split, args.store, args.report)
    for k, v in result.items():
        if k != "scenes":
            print(k, json.dumps(v))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
