"""An elastic source fitted to the whole scene, taken out before the network and added back.

Not shipped: model card design table (bg), session 43. Where the creep model finds no trace,
this probe fits the least-squares cumulative (the model's weighting) with the surface
displacement of three families, each family's geometry by Nelder-Mead (Nelder & Mead 1965,
Comput. J. 7(4), 308-313) from starts at the second detector's support, its strength by least
squares for each line of sight of the creep model's set, after prewhitening by differences:

- a finite rectangular dislocation with strike and dip slip (Okada 1985, BSSA 75(4), 1135-1154);
- a point pressure source (Mogi 1958; Segall 2010, eq. 7.14);
- a Gaussian bowl of vertical motion.

A family is kept when, fitted to the even (odd) dates, it predicts the odd (even) ones better
than no model, by differences and under the noise maps' spectrum (as the creep model's
cross-validation); the best-predicting family wins, its series (each date's fitted amplitude,
smoothed in time as the creep model's) is subtracted from the stack before the network and
added back (the creep model's path, ``stack_path._creep``). Per scene the script runs the
shipped engine and the engine with the probe, and scores the fitted source alone.

``--variant extent`` runs the other probe of the same session instead (design table (bh),
not shipped either): the source's values are not used, only its reach, to which the second
detector's filled areas grow (``bilaplacian_support.SOURCE_EXTENT``,
:func:`insar_denoise.inference.elastic_sources.source_extent`). JSON out::

    python benchmarks/elastic_source_probe.py \
        -o experiments/benchmarks/elastic_source_probe.json
    python benchmarks/elastic_source_probe.py --variant extent \
        -o experiments/benchmarks/elastic_source_extent.json
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from fresh_draws import output_record, run_shipped, scene_draw  # benchmarks/ (the script's folder)

from insar_denoise.evaluation.referee_scoring import offset_free_scores
from insar_denoise.inference import stack_path
from insar_denoise.inference.bilaplacian_support import grown_support, zmaps
from insar_denoise.inference.creep_model import (
    MIN_DATES,
    date_amplitudes,
    half_projections,
    residual_energy,
)
from insar_denoise.inference.elastic_sources import (
    FAMILIES,
    SourceFit,
    fit_source,
    seed_positions,
    seeds,
)
from insar_denoise.inference.fault_trace import date_shares
from insar_denoise.inference.noise_prediction import elevation_free
from insar_denoise.inference.significance import cumulative_noise, hat_matrix

#: a family is kept when its cross-validated misfit is at most ``1 - CV_MARGIN`` of no model's
CV_MARGIN = 0.0
#: the Benchmark v2 scenes the probe moved in its full run, and four without deformation
SCENES = (
    "in:22 in:38 in:46 in:47 in:49 in:70 in:72 in:78 shifted:8 shifted:11 shifted:15 "
    "shifted:47 shifted:51 shifted:63 shifted:74 in:0 in:1 shifted:0 shifted:1"
).split()


def probe_note(fit: SourceFit, cv: float, families: dict) -> str:
    """The JSON of the probe's note (``families``: each one's cross-validated misfits over no
    model's, under the spectrum and by differences)."""
    return json.dumps(
        {
            "family": fit.family,
            "geometry": [round(float(v), 2) for v in fit.geometry],
            "strengths": [round(float(v), 3) for v in fit.strengths],
            "los": [round(float(v), 3) for v in fit.los],
            "cv_misfit": round(cv, 4),
            "largest_mm": round(float(np.nanmax(np.abs(fit.cumulative))), 2),
            "families": families,
        }
    )


def detection_positions(projection: np.ndarray, noise: np.ndarray, dem) -> list | None:
    """Where to start the fits: the largest value of the smoothed map within the second
    detector's support and the support's centroid; None when the test detects nothing."""
    ok = np.isfinite(projection) & np.all(np.isfinite(noise), axis=0)
    free = elevation_free(np.concatenate([projection[None], np.nan_to_num(noise)]), ok, dem, ok)
    z = zmaps(free[0], free[1:], ok)
    if not z:
        return None
    support = grown_support(z)
    if not support.any():
        return None
    return seed_positions(free[0], support, ok)


def source_series(
    referenced: np.ndarray, dem, times_days: np.ndarray, date_var: np.ndarray, segments: int
) -> tuple[np.ndarray | None, str]:
    """The model series ``(T, H, W)`` mm relative to the first date (None when nothing is
    detected, no family cross-validates or the scene is too large) and the note for
    the probe's note."""
    n = referenced.shape[0]
    if n < MIN_DATES:
        return None, f"skipped: {n} dates (at least {MIN_DATES})"
    noise, projection = cumulative_noise(referenced, times_days, date_var, segments)
    positions = detection_positions(projection, noise, dem)
    if positions is None:
        return None, "none"
    halves = half_projections(referenced, times_days, date_var, segments)
    null = sum(residual_energy(x, dem, None) for x in halves)
    null_spectral = sum(residual_energy(x, dem, noise) for x in halves)
    scored = []
    for family in FAMILIES:
        starts = seeds(family, positions)
        cv = cv_spectral = 0.0
        for a, b in ((0, 1), (1, 0)):
            model = fit_source(halves[a], dem, family, starts).cumulative
            cv += residual_energy(halves[b] - model, dem, None)
            cv_spectral += residual_energy(halves[b] - model, dem, noise)
        scored.append((cv_spectral / null_spectral, cv / null, family))
    kept = [s for s in scored if s[0] <= 1.0 - CV_MARGIN and s[1] <= 1.0 - CV_MARGIN]
    summary = {f: [round(a, 4), round(b, 4)] for a, b, f in scored}
    if not kept:
        return None, "rejected: " + json.dumps(summary)
    cv, _, family = min(kept)
    fit = fit_source(projection, dem, family, seeds(family, positions))
    amplitudes = date_amplitudes(referenced, fit.cumulative, dem)
    shares = date_shares(amplitudes, hat_matrix(times_days, date_var, segments), times_days)
    series = shares[:, None, None].astype(np.float32) * fit.cumulative[None].astype(np.float32)
    return series, probe_note(fit, cv, summary)


LAST_FIT: dict = {}


@contextmanager
def with_source_model():
    """The engine with the probe: where the creep model keeps no fit, the source's series is
    taken out of the stack before the network and added back (``stack_path._creep``)."""
    original = stack_path._creep

    def creep_then_source(job, wrapped, date_var):
        series, date_var = original(job, wrapped, date_var)
        if series is not None or date_var is None:
            return series, date_var
        disp = np.asarray(job.src.values, dtype=np.float32)
        dem = job.ds["dem"].transpose("y", "x").values if "dem" in job.ds else None
        segments = int(wrapped.metadata.get("segments", 4))
        model, note = source_series(disp - disp[:1], dem, job.days, date_var, segments)
        LAST_FIT.update(note=note, cumulative=None if model is None else model[-1])
        if model is None:
            return None, date_var
        job.src = job.src.copy(data=disp - model)
        return model, date_var

    stack_path._creep = creep_then_source
    try:
        yield
    finally:
        stack_path._creep = original


def agreement(shipped, fit: np.ndarray, mask: np.ndarray) -> dict | None:
    """The fitted source against the shipped engine's map where that map is not its level
    (the gate's and the filled areas' pixels): gain and r of the source on the map, offset
    free (an estimate the data hold there, independent of the source's family)."""
    cum = np.asarray(shipped["cumulative_deformation"].values, np.float64)
    level = np.nanmedian(cum)
    where = mask & np.isfinite(cum) & (np.abs(cum - level) > 1e-6)
    if where.sum() < 100:
        return None
    scores = offset_free_scores(fit.astype(np.float64), cum, where)
    return {"pixels": int(where.sum()), "gain": scores["gain"], "r": scores["r"]}


@contextmanager
def with_source_extent():
    """The engine with the second detector's areas grown to the best-fitting source's reach
    (``bilaplacian_support.SOURCE_EXTENT``; design table (bh))."""
    from insar_denoise.inference import bilaplacian_support

    before = bilaplacian_support.SOURCE_EXTENT
    bilaplacian_support.SOURCE_EXTENT = True
    try:
        yield
    finally:
        bilaplacian_support.SOURCE_EXTENT = before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--scenes", nargs="+", default=list(SCENES), help="split:index[:draw] (0: the design's)"
    )
    ap.add_argument(
        "--variant",
        choices=("source", "extent"),
        default="source",
        help="source: the fitted source added back (bg); extent: the areas grown to it (bh)",
    )
    ap.add_argument("-o", "--output", type=Path, default=Path("elastic_source_probe.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for item in args.scenes:
        spec, _, ds, truth, valid = scene_draw(item)
        row = dict(scene=item, source=spec.source_type, n_dates=spec.n_dates)
        shipped = run_shipped(ds, spec.n_dates)
        row["shipped"] = output_record(shipped, truth, valid)["model"]
        LAST_FIT.clear()
        with with_source_model() if args.variant == "source" else with_source_extent():
            row["probe"] = output_record(run_shipped(ds, spec.n_dates), truth, valid)["model"]
        row["note"] = LAST_FIT.get("note")
        fit = LAST_FIT.get("cumulative")
        if fit is not None:
            mask = valid & np.isfinite(truth)
            row["fit_alone"] = offset_free_scores(fit.astype(np.float64), truth, mask)
            row["agreement"] = agreement(shipped, fit, mask)
        rows.append(row)
        print(json.dumps(row), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"scenes": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
