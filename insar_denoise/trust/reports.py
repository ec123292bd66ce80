"""Markdown of the trust reports (QC of a run, injection test)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from insar_denoise.scoring import metrics
from insar_denoise.synth.turbulence import ATMOSPHERE_BETA

if TYPE_CHECKING:
    from insar_denoise.trust.inject_result import InjectionResult


def _fmt(v: Any, spec: str = ".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def qc_markdown(s: dict[str, Any]) -> str:
    """``report.md`` of a QC report from its ``qc.json`` content."""
    lo, hi = ATMOSPHERE_BETA
    tr = s["training_ranges"]
    lines = [
        "# insar-denoise QC report",
        "",
        f"Method `{s['method']}`, model `{s['model_id']}`; {s['n_dates']} dates of "
        f"{s['shape'][0]} x {s['shape'][1]} px, pixel spacing {_fmt(s['pixel_spacing_m'], '.0f')}"
        f" m, median interval {_fmt(s['interval_days'], '.3g')} days.",
        f"Training ranges ({tr['source']}): turbulence std {tr['turbulence_std_mm']} mm, "
        f"pixel spacing {tr['pixel_spacing_m']:g} m, interval {tr['interval_days']:g} days, "
        f"{tr.get('dates', 'window ' + str(tr['window']))}.",
        "",
        f"Reference: {s.get('reference', 'input as is')}.",
    ]
    if "pixels" in s:
        px = s["pixels"]
        lines.append(
            f"Pixels: {px['kept']} of {px['with_data']} with data kept (valid on >= "
            f"{px['min_valid_dates']} of {s['n_dates']} dates, their other dates NaN in the "
            f"series); pixels valid on < {px['min_valid_dates']} dates: "
            f"{px['below_min_valid_dates']} (NaN in every output)."
        )
    lines += [
        "",
        "## Out-of-distribution warnings",
        "",
    ]
    lines += [f"- **{w['code']}**: {w['message']}" for w in s["warnings"]] or ["None."]
    lines += [
        "",
        "## Removed noise per date",
        "",
        "std: spread of what was removed (mm); elevation: slope of the removed noise on the "
        "DEM (mm/km, stratified troposphere); beta: exponent of its radially averaged power "
        f"spectrum (tropospheric turbulence is typically {lo:.2f}–{hi:.2f}; near 0 = white, "
        "pixel noise or signal left in); input NaN share: share of the pixels that are NaN in the "
        "input on that date.",
        "",
        "| date | std (mm) | elevation (mm/km) | beta | atmosphere-like | input NaN share |",
        "|---|---|---|---|---|---|",
    ]
    for r in s["per_date"]:
        beta = r["spectral_beta"]
        like = "–" if not math.isfinite(beta) else ("yes" if lo - 0.3 <= beta <= hi + 0.3 else "no")
        lines.append(
            f"| {r['date']} | {_fmt(r['std_mm'])} | {_fmt(r['elevation_mm_per_km'])} | "
            f"{_fmt(beta)} | {like} | {_fmt(r['nan_share'], '.1%')} |"
        )
    lines += [
        "",
        "![raw, output, classical and removed cumulative maps](maps.png)",
        "",
        "![removed noise per date](noise_per_date.png)",
        "",
    ]
    return "\n".join(lines)


def ideal_lines(ideal: dict) -> list[str]:
    """Markdown lines: per injected source, the ideal observer's 5-sigma amplitude beside
    the empirical detection threshold."""
    nz = ideal["noise"]
    inc = nz.get("increment_std_mm") or nz["turb_std_mm"]
    lines = [
        "| source | places | empirical threshold (mm) | ideal observer: 5σ at (mm), median "
        "[min–max] |",
        "|---|---|---|---|",
    ]
    for name, row in ideal["per_source"].items():
        thr = row.get("empirical_threshold_mm")
        emp = "not reached" if thr is None else f"{thr:g}"
        med = row["median_5sigma_mm"]
        five = (
            "n/a"
            if med is None
            else (f"{med:.2g} [{row['min_5sigma_mm']:.2g}–{row['max_5sigma_mm']:.2g}]")
        )
        lines.append(f"| {name} | {row['n']} | {emp} | {five} |")
    lines += [
        "",
        "Ideal observer: the amplitude at which a matched filter that knows the shape and "
        "time history detects the source at 5σ under this stack's noise, modelled as the "
        f"simulator's (turbulence β = {nz['beta']:.2f}, k0 = {nz['k0_per_m']:.2g} /m, each "
        f"date's std against the first {min(inc):.1f}–{max(inc):.1f} mm and their covariance, "
        "estimated from the data; ramps, stratification and offsets as free nuisances). No "
        "method can beat it under that model; the gap to the empirical threshold is what a "
        "method leaves.",
    ]
    check = ideal.get("model_check") or {}
    if check.get("z_rms") is not None:
        verdict = (
            "the model holds"
            if check["holds"]
            else "the stack departs from the model (or deforms at the places): the 5σ "
            "amplitudes are optimistic by about that factor"
        )
        lines.append(
            f"Model check: the same matched filters on the stack without injection scatter "
            f"{check['z_rms']:.2f}× their modelled std over {check['n']} places (1 where the "
            f"model holds): {verdict}."
        )
    return lines


def injection_markdown(r: InjectionResult) -> str:
    """``report.md`` of an injection test."""
    thr = "not reached" if r.threshold_mm is None else f"{r.threshold_mm:g} mm"
    lines = [
        "# insar-denoise injection test",
        "",
        f"Method `{r.method}`, seed {r.seed}: {r.attrs['n_places']} sources (Okada faults and "
        f"Mogi sources, step / linear / transient histories) injected at {r.amplitudes_mm} mm "
        f"into {r.crop_px} px crops of the stack ({r.context_px} px of context kept around "
        f"each), placed round robin over a {r.grid[0]} x {r.grid[1]} grid of tiles.",
        "",
        f"**Detection threshold of this stack: {thr}** (smallest amplitude from which on "
        f"r >= {metrics.R_MIN} in >= {metrics.DETECTED_FRAC:.0%} of the injections; the "
        "output of the injected stack against the injected signal, both de-planed, so the "
        "stack's own residual noise counts).",
        "",
        "| amplitude (mm) | n | median r | detected | RMSE (mm) | median r of difference "
        "| median gain |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in r.per_amplitude:
        lines.append(
            f"| {t['amplitude_mm']:g} | {t['n']} | {_fmt(t['corr_median'])} | "
            f"{_fmt(t['detected_frac'], '.0%')} | {_fmt(t['rmse_mm'])} | "
            f"{_fmt(t['corr_diff_median'])} | {_fmt(t['gain_median'])} |"
        )
    if r.ideal:
        lines += ["", *ideal_lines(r.ideal)]
    lines += [
        "",
        "Difference = output(injected) − output(original): the method's response to the "
        "signal alone (gain 1 = no amplitude error). For linear methods (raw, filter, stack) "
        "the noise cancels in it exactly, so it shows distortion, not detectability. "
        "The crops are denoised side by side in one mosaic, so scene-wide fits (the "
        "elevation correction of elevation/best) and the model's per-tile normalisation see "
        "the mosaic of crops rather than the whole scene.",
        "",
        "![recovery per amplitude](amplitude.png)",
        "",
        "![local detection threshold](threshold_map.png)",
        "",
        "![examples](examples.png)",
        "",
    ]
    return "\n".join(lines)
