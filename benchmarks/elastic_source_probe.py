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
shipped engine and the engine with the probe, and scores the fitted source alone. JSON out::

    python benchmarks/elastic_source_probe.py \
        -o experiments/benchmarks/elastic_source_probe.json
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from fresh_draws import output_record, run_shipped, scene_draw  # benchmarks/ (the script's folder)
from scipy import ndimage, optimize

from insar_denoise.evaluation.referee_scoring import offset_free_scores
from insar_denoise.inference import stack_path
from insar_denoise.inference.bilaplacian_support import grown_support, zmaps
from insar_denoise.inference.creep_model import (
    MIN_DATES,
    _block_means,
    _offsets,
    _prepare,
    date_amplitudes,
    gradients,
    half_projections,
    los_vectors,
    residual_energy,
)
from insar_denoise.inference.fault_trace import date_shares
from insar_denoise.inference.noise_prediction import elevation_free
from insar_denoise.inference.significance import cumulative_noise, hat_matrix
from insar_denoise.synth.okada import okada_surface

#: the fit runs on block means of at most this many px a side
FIT_MAX_PX = 64
#: a family is kept when its cross-validated misfit is at most ``1 - CV_MARGIN`` of no model's
CV_MARGIN = 0.0
#: Nelder-Mead runs from this many of the best starts, each of at most MAX_EVALS evaluations
N_STARTS = 3
MAX_EVALS = 300
#: smoothing (px) of the map whose largest value seeds the source's position
SEED_SMOOTH_PX = 6.0
#: the Benchmark v2 scenes the probe moved in its full run, and four without deformation
SCENES = (
    "in:22 in:38 in:46 in:47 in:49 in:70 in:72 in:78 shifted:8 shifted:11 shifted:15 "
    "shifted:47 shifted:51 shifted:63 shifted:74 in:0 in:1 shifted:0 shifted:1"
).split()


def _grid(shape: tuple[int, int], step: float) -> tuple[torch.Tensor, torch.Tensor]:
    rows = torch.arange(shape[0], dtype=torch.float64)[:, None] * step + 0.5 * (step - 1)
    cols = torch.arange(shape[1], dtype=torch.float64)[None, :] * step + 0.5 * (step - 1)
    return rows, cols


def okada_units(shape: tuple[int, int], step: float, q: np.ndarray) -> np.ndarray:
    """``(6, H, W)``: east, north, up of unit strike slip, then of unit dip slip, of a
    rectangle (Okada 1985) at ``q`` = (row, col of the top edge's midpoint, strike, dip,
    log2 length, log2 width, top depth; px of the full grid)."""
    r0, c0, strike, dip, log_length, log_width, top = (float(v) for v in q)
    rows, cols = _grid(shape, step)
    out = []
    for ss, ds in ((1.0, 0.0), (0.0, 1.0)):
        east, north, up = okada_surface(
            cols - c0 + 0.0 * rows,
            -(rows - r0) + 0.0 * cols,
            x0_m=0.0,
            y0_m=0.0,
            depth_m=max(top, 0.0),
            strike_deg=strike,
            dip_deg=float(np.clip(dip, 5.0, 89.9)),
            length_m=2.0 ** np.clip(log_length, -2.0, 12.0),
            width_m=2.0 ** np.clip(log_width, -2.0, 12.0),
            strike_slip_m=ss,
            dip_slip_m=ds,
        )
        out += [np.nan_to_num(v.numpy()) for v in (east, north, up)]
    return np.stack(out)


def mogi_units(shape: tuple[int, int], step: float, q: np.ndarray) -> np.ndarray:
    """``(3, H, W)``: east, north, up of a point pressure source at ``q`` = (row, col,
    depth; px), up to a scale (Mogi 1958; Segall 2010, eq. 7.14: ``x / R³``, ``d / R³``)."""
    r0, c0, depth = (float(v) for v in q)
    rows, cols = _grid(shape, step)
    x, y, d = (cols - c0 + 0.0 * rows), -(rows - r0) + 0.0 * cols, max(depth, 0.5)
    r3 = (x**2 + y**2 + d**2) ** 1.5 / d**2
    return np.stack([(x / r3).numpy(), (y / r3).numpy(), (d / r3).numpy()])


def bowl_units(shape: tuple[int, int], step: float, q: np.ndarray) -> np.ndarray:
    """``(3, H, W)``: a Gaussian bowl of vertical motion at ``q`` = (row, col, log2 sigma)."""
    r0, c0, log_sigma = (float(v) for v in q)
    rows, cols = _grid(shape, step)
    s = 2.0 ** np.clip(log_sigma, 0.0, 12.0)
    up = torch.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2.0 * s * s)).numpy()
    return np.stack([np.zeros_like(up), np.zeros_like(up), up])


FAMILIES = {"okada": (okada_units, 2), "mogi": (mogi_units, 1), "bowl": (bowl_units, 1)}


def seeds(family: str, positions: list[tuple[float, float]]) -> list[np.ndarray]:
    """Starting geometries of ``family`` at each ``(row, col)``."""
    if family == "okada":
        return [
            np.array([r, c, s, d, 5.0, 4.3, 16.0])
            for r, c in positions
            for s in range(0, 360, 45)
            for d in (30.0, 60.0, 85.0)
        ]
    if family == "mogi":
        return [np.array([r, c, d]) for r, c in positions for d in (8.0, 16.0, 32.0)]
    return [np.array([r, c, s]) for r, c in positions for s in (3.0, 4.0, 5.0, 6.0)]


def _solve(columns: np.ndarray, offsets: np.ndarray, y: np.ndarray, n_slip: int, los) -> tuple:
    """For each line of sight, the least squares of ``y`` on the ``n_slip`` projected
    displacements' differences and a plane's: ``(rss, coefficients, line of sight)``."""
    x = np.concatenate([columns, offsets], axis=1)
    gram, moment, energy = x.T @ x, x.T @ y, float(y @ y)
    n_off = offsets.shape[1]
    best: tuple = (np.inf, np.zeros(n_slip), los[0])
    for vector in los:
        basis = np.zeros((3 * n_slip + n_off, n_slip + n_off))
        for s in range(n_slip):
            basis[3 * s : 3 * s + 3, s] = vector
        basis[3 * n_slip :, n_slip:] = np.eye(n_off)
        normal, right = basis.T @ gram @ basis, basis.T @ moment
        try:
            coef = np.linalg.solve(normal + 1e-12 * np.eye(len(normal)), right)
        except np.linalg.LinAlgError:
            continue
        rss = energy - float(coef @ right)
        if rss < best[0]:
            best = (rss, coef[:n_slip], vector)
    return best


@dataclass
class SourceFit:
    """A fitted source: its family, geometry, strengths, line of sight, misfit and map."""

    family: str
    geometry: np.ndarray
    strengths: np.ndarray
    los: np.ndarray
    rss: float
    cumulative: np.ndarray

    def note(self, cv: float, families: dict) -> str:
        """The JSON written to the probe's note (``families``: each one's cross-validated
        misfits over no model's, under the spectrum and by differences)."""
        return json.dumps(
            {
                "family": self.family,
                "geometry": [round(float(v), 2) for v in self.geometry],
                "strengths": [round(float(v), 3) for v in self.strengths],
                "los": [round(float(v), 3) for v in self.los],
                "cv_misfit": round(cv, 4),
                "largest_mm": round(float(np.nanmax(np.abs(self.cumulative))), 2),
                "families": families,
            }
        )


def fit_source(projection: np.ndarray, dem, family: str, starts: list[np.ndarray]) -> SourceFit:
    """The ``family``'s source best fitting ``projection (H, W)`` mm (NaN = not valid; median
    and elevation fit removed) by differences, from the best :data:`N_STARTS` of ``starts``."""
    p, _, _ = _prepare(projection, dem)
    k = max(1, int(np.ceil(max(p.shape) / FIT_MAX_PX)))
    coarse = _block_means(p, k)
    cok = np.isfinite(coarse)
    offsets = _offsets(cok.shape)
    y = gradients(coarse, cok)
    use = np.isfinite(y)
    units, n_slip = FAMILIES[family]
    los = los_vectors()

    def misfit(q: np.ndarray) -> tuple:
        columns = np.stack([gradients(u, cok) for u in units(coarse.shape, k, q)], axis=1)
        return _solve(columns[use], offsets[use], y[use], n_slip, los)

    ranked = sorted(starts, key=lambda q: misfit(q)[0])[:N_STARTS]
    best = (np.inf, ranked[0])
    for q in ranked:
        found = optimize.minimize(
            lambda v: misfit(v)[0],
            q,
            method="Nelder-Mead",
            options={"maxfev": MAX_EVALS, "xatol": 0.05, "fatol": 1e-3},
        )
        if found.fun < best[0]:
            best = (float(found.fun), found.x)
    rss, strengths, vector = misfit(best[1])
    full = units(p.shape, 1, best[1])
    cumulative = sum(
        strengths[s] * np.tensordot(vector, full[3 * s : 3 * s + 3], axes=1) for s in range(n_slip)
    )
    return SourceFit(family, best[1], strengths, vector, float(rss), cumulative)


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
    smooth = ndimage.gaussian_filter(
        np.where(ok, free[0] - np.median(free[0][ok]), 0.0), SEED_SMOOTH_PX
    )
    smooth = np.where(support, np.abs(smooth), -1.0)
    peak = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
    centre = np.argwhere(support).mean(axis=0)
    return [(float(peak[0]), float(peak[1])), (float(centre[0]), float(centre[1]))]


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
    return series, fit.note(cv, summary)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--scenes", nargs="+", default=list(SCENES), help="split:index[:draw] (0: the design's)"
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
        with with_source_model():
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
