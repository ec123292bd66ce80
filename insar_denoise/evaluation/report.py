"""Write an evaluation: ``metrics.json``, ``report.md`` (its text here) and the PNG figures
(:mod:`insar_denoise.evaluation.report_figures`).

:func:`results_table` is also what ``scripts/results_table.py`` puts into the README, so
the README table and the report never disagree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from insar_denoise.evaluation.report_common import (
    fmt,
    json_ready,
    prepare_dir,
    write_metrics_and_report,
)
from insar_denoise.evaluation.report_figures import (
    panel_limit,
    plot_curves,
    plot_examples,
    plot_uncertainty,
)
from insar_denoise.evaluation.report_tables import (
    metric_table,
    results_table,
    split_table,
    threshold_cell,
)


def markdown_splits(metrics: dict[str, Any]) -> str:
    """``report.md`` of a ``--split both`` run: the splits side by side, then each in full."""
    model = metrics.get("model") or {}
    out = ["# insar-denoise evaluation: in-distribution and shifted splits", ""]
    out.append(
        f"Model: `{model.get('id', 'none')}` ({model.get('path', 'no model')}); "
        f"package {metrics['package_version']}; seed {metrics['seed']}."
    )
    out.append("")
    out.append(f"**Target** (all methods): {metrics['target']}.")
    out += ["", "## Splits side by side", "", split_table(metrics), ""]
    out += [
        "The splits have different targets (the `zero` row's RMSE is the RMS of each "
        "split's target), so compare RMSE within a split (against `zero`) and r, SNR gain, "
        "threshold and false-positive level across splits.",
        "",
    ]
    shifted = metrics["splits"].get("shifted")
    if shifted is not None:
        out += [
            "The `shifted` split changes these simulation settings (training values in "
            "`splits.in.sim_config` of metrics.json):",
            "",
        ]
        for key, value in shifted.get("split_overrides", {}).items():
            train = metrics["splits"].get("in", {}).get("sim_config", {}).get(key)
            out.append(f"- `{key}`: {value} (training {train})")
        out.append("")
    out += ["![examples](examples.png)", ""]
    for name, m in metrics["splits"].items():
        body = markdown(m, figure_prefix=f"{name}_").split("\n")
        # demote the split's headings one level under its own section
        body = ["#" + line if line.startswith("#") else line for line in body[1:]]
        out += [f"## Split `{name}`", *body]
    return "\n".join(out)


def markdown(metrics: dict[str, Any], figure_prefix: str = "") -> str:
    """The whole ``report.md`` text (``figure_prefix``: of the curve figures' file names)."""
    if metrics.get("kind") == "benchmark_splits":
        return markdown_splits(metrics)
    out = _summary_lines(metrics)
    if metrics.get("kind") == "stack":
        return "\n".join(out + _stack_lines(metrics))
    methods = list(metrics["methods"])
    out += _filter_width_lines(metrics["sigma_tuning"])
    out += _group_lines(metrics, methods)
    out += _detection_lines(metrics, methods)
    out += _series_lines(metrics.get("series_rmse_mm") or {})
    out += _design_lines(metrics, figure_prefix)
    out += uncertainty_section(metrics.get("uncertainty"), figure_prefix)
    return "\n".join(out)


def _summary_lines(metrics: dict[str, Any]) -> list[str]:
    """Title, model, target, summary table and metric definitions."""
    model = metrics.get("model") or {}
    out = ["# insar-denoise evaluation", ""]
    out.append(
        f"Model: `{model.get('id', 'none')}` ({model.get('path', 'no model')}); "
        f"package {metrics['package_version']}."
    )
    out.append("")
    out.append(f"**Target** (all methods): {metrics['target']}.")
    out += ["", "## Summary", "", results_table(metrics), "", "## Metric definitions", ""]
    out += [f"- `{k}`: {v}" for k, v in metrics["definitions"].items()]
    return out


def _stack_lines(metrics: dict[str, Any]) -> list[str]:
    """The scene of a one-stack evaluation and its maps."""
    return [
        "",
        f"{metrics['n_dates']} dates, {metrics['shape'][0]} x {metrics['shape'][1]} px, "
        f"{metrics['n_pixels']} compared pixels; max |target| "
        f"{fmt(metrics['truth_max_abs_mm'])} mm; filter/best sigma "
        f"{metrics['sigma_px']:g} px (not tuned: one scene).",
        "",
        "![maps](examples.png)",
        "",
    ]


def _filter_width_lines(tuning: dict[str, Any]) -> list[str]:
    """The Gaussian sigma tuned per method, and a note when it is the widest candidate."""
    out = ["", "## Filter width", ""]
    out.append(
        f"Gaussian sigma chosen per method as the lowest pooled RMSE on separate tuning scenes "
        f"(seed {tuning['seed']}, {tuning['n_per_amplitude']} per amplitude): "
        + ", ".join(f"{k} {v:g} px" for k, v in tuning["sigma_px"].items())
        + f"; candidates {tuning['candidates_px']} px."
    )
    edge = [k for k, v in tuning["sigma_px"].items() if v == max(tuning["candidates_px"])]
    if edge:
        out.append(
            f"The RMSE optimum of {', '.join(edge)} is the widest candidate: under RMSE, heavy "
            "smoothing (towards the all-zero map after plane removal) wins at these noise levels."
        )
    return out


def _group_lines(metrics: dict[str, Any], methods: list[str]) -> list[str]:
    """One table per metric and grouping (amplitude, noise, source, DEM)."""
    titles = {
        "amplitude": "amplitude (mm)",
        "amplitude_noise": "amplitude (mm) | noise",
        "noise": "noise level (all amplitudes)",
        "source": "source (deformed scenes)",
        "dem": "DEM (deformed scenes)",
    }
    out: list[str] = []
    for metric, digits in (("rmse_mm", 2), ("corr", 2), ("snr_gain_db", 1), ("detected_frac", 2)):
        out += ["", f"## {metric} by group", ""]
        for group, title in titles.items():
            out += [
                f"### by {title}",
                "",
                metric_table(metrics["groups"][group], methods, metric, digits),
                "",
            ]
    return out


def _detection_lines(metrics: dict[str, Any], methods: list[str]) -> list[str]:
    """Detection threshold and false-positive p99 per method and noise level."""
    out = ["## Detection threshold (mm) and false-positive p99 (mm)", ""]
    levels = list(metrics["detection_threshold_mm"])
    out.append(
        "| method | "
        + " | ".join(f"threshold {lv}" for lv in levels)
        + " | "
        + " | ".join(f"p99 {lv}" for lv in levels)
        + " |"
    )
    out.append("|---|" + "---:|" * (2 * len(levels)))
    for m in methods:
        cells = [threshold_cell(metrics["detection_threshold_mm"][lv][m]) for lv in levels]
        cells += [fmt(metrics["false_positive_p99_mm"][lv][m]) for lv in levels]
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return out


def _series_lines(series: dict[str, Any]) -> list[str]:
    """Per-date RMSE of the denoised series (empty when not measured)."""
    if not series:
        return []
    n = len(next(iter(series.values()))["per_date"])
    out = [
        "",
        "## Denoised time series: per-date RMSE (mm), deforming scenes",
        "",
        "| method | all dates | " + " | ".join(f"date {k}" for k in range(1, n)) + " |",
        "|---|---:|" + "---:|" * (n - 1),
    ]
    for m, row in series.items():
        cells = [fmt(v) for v in row["per_date"][1:]]
        out.append(f"| {m} | {fmt(row['all'])} | " + " | ".join(cells) + " |")
    return out


def _design_lines(metrics: dict[str, Any], figure_prefix: str) -> list[str]:
    """The benchmark's design and its figures."""
    design = metrics["design"]
    out = [
        "",
        "## Design",
        "",
        f"Amplitudes {design['amplitudes_mm']} mm; turbulence std "
        f"{design['noise_turbulence_std_mm']} mm; sources {design['sources']}; DEMs "
        f"{design['dems']}; {metrics['n_per_amplitude']} scenes per amplitude spread over "
        "the strata; every other simulation setting is "
        + (
            "the default training distribution"
            if not metrics.get("split_overrides")
            else f"the `{metrics['split']}` split's distribution"
        )
        + " (`sim_config` in metrics.json).",
        "",
        "## Figures",
        "",
    ]
    if not figure_prefix:
        out += ["![examples](examples.png)", ""]
    out += [
        f"![RMSE]({figure_prefix}rmse_vs_amplitude.png)",
        "",
        f"![correlation]({figure_prefix}corr_vs_amplitude.png)",
        "",
    ]
    return out


def uncertainty_section(unc: dict[str, Any] | None, figure_prefix: str = "") -> list[str]:
    """Report lines on the model's calibrated uncertainty bands on these scenes."""
    if not unc:
        return []
    out = ["## Uncertainty calibration", ""]
    if "skipped" in unc:
        return out + [f"Not scored: {unc['skipped']}.", ""]
    out += [
        "Share of pixels whose truth lies within the model's stored bands (`run "
        "--uncertainty`), on these scenes:",
        "",
        "| band | nominal | observed | mean half-width (mm) |",
        "|---|---|---|---|",
        f"| ±1σ (band 1) | 68.3 % | {100 * unc['coverage_1sigma']:.1f} % | "
        f"{unc['mean_sigma_mm']:.2f} |",
        f"| 95 % (band 2) | 95.4 % | {100 * unc['coverage_95']:.1f} % | "
        f"{unc['mean_halfwidth_95_mm']:.2f} |",
        f"| ±2σ (Gaussian reading) | 95.4 % | {100 * unc['coverage_2sigma']:.1f} % | "
        f"{2 * unc['mean_sigma_mm']:.2f} |",
        "",
        "| amplitude (mm) | " + " | ".join(unc["coverage_by_amplitude"]) + " |",
        "|---|" + "---|" * len(unc["coverage_by_amplitude"]),
        "| ±1σ | "
        + " | ".join(f"{100 * v[0]:.0f} %" for v in unc["coverage_by_amplitude"].values())
        + " |",
        "| 95 % band | "
        + " | ".join(f"{100 * v[1]:.0f} %" for v in unc["coverage_by_amplitude"].values())
        + " |",
        "",
        "By turbulence level (±1σ / 95 % band): "
        + ", ".join(
            f"{k}: {100 * v[0]:.0f} / {100 * v[1]:.0f} %"
            for k, v in unc.get("coverage_by_noise", {}).items()
        )
        + ". The bands are calibrated over the benchmark's mix of scenes, not per scene: "
        "they are too wide where there is no deformation and too narrow over large signals "
        "the model shrinks.",
        "",
        f"![uncertainty calibration]({figure_prefix}uncertainty_calibration.png)",
        "",
    ]
    return out


__all__ = [
    "markdown",
    "markdown_splits",
    "panel_limit",
    "plot_curves",
    "plot_examples",
    "metric_table",
    "results_table",
    "split_table",
    "uncertainty_section",
    "write_report",
]


def write_report(evaluation: Any, out_dir: str | Path, overwrite: bool = False) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md`` and the figures into ``out_dir``.

    Returns the written paths by name.
    """
    out = prepare_dir(out_dir, overwrite)
    metrics = json_ready(evaluation.metrics)
    paths: dict[str, Path] = {}
    if evaluation.examples:
        plot_examples(evaluation.examples, out / "examples.png")
        paths["examples"] = out / "examples.png"
    if metrics.get("kind") == "benchmark":
        plot_curves(metrics, "rmse_mm", "RMSE (mm)", out / "rmse_vs_amplitude.png")
        plot_curves(metrics, "corr", "correlation with target", out / "corr_vs_amplitude.png")
        paths["rmse"] = out / "rmse_vs_amplitude.png"
        paths["corr"] = out / "corr_vs_amplitude.png"
        plot_uncertainty(metrics, out / "uncertainty_calibration.png", paths, "uncertainty")
    for name, split_metrics in metrics.get("splits", {}).items():
        rmse_path = out / f"{name}_rmse_vs_amplitude.png"
        corr_path = out / f"{name}_corr_vs_amplitude.png"
        plot_curves(split_metrics, "rmse_mm", f"RMSE (mm), split {name}", rmse_path)
        plot_curves(split_metrics, "corr", f"correlation with target, split {name}", corr_path)
        paths[f"{name}_rmse"] = rmse_path
        paths[f"{name}_corr"] = corr_path
        unc_path = out / f"{name}_uncertainty_calibration.png"
        plot_uncertainty(split_metrics, unc_path, paths, f"{name}_uncertainty")
    return write_metrics_and_report(out, metrics, markdown(metrics), paths)
