"""Write an evaluation: ``metrics.json``, ``report.md`` and PNG figures (maps in mm, curves).

:func:`results_table` is also what ``scripts/results_table.py`` puts into the README, so
the README table and the report never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import (
    fmt,
    json_ready,
    prepare_dir,
)
from insar_denoise.io import atomic_output
from insar_denoise.plots import calibration_figure, pyplot, save_png


def _threshold(value: Any) -> str:
    return "not reached" if value is None else f"{value:g}"


def results_table(metrics: dict[str, Any]) -> str:
    """The README results table (markdown) from a ``metrics.json`` dict.

    Benchmark metrics: one row per method with the RMSE pooled over all scenes, the mean
    correlation per deformation amplitude, the SNR gain over all scenes, the detection
    threshold and the false-positive level. Stack metrics: RMSE, correlation and SNR gain
    per method. Both splits (``--split both``): :func:`split_table`, then each split's table.
    v2 (referee) metrics: :func:`insar_denoise.evaluation.referee_report.summary_table`.
    """
    if metrics.get("kind") == "referee":
        from insar_denoise.evaluation.referee_report import summary_table

        return summary_table(metrics)
    if metrics.get("kind") == "benchmark_splits":
        return (
            split_table(metrics)
            + "\n\n"
            + "\n\n".join(
                f"Split `{name}`:\n\n" + results_table(m) for name, m in metrics["splits"].items()
            )
        )
    methods = list(metrics["methods"])
    if metrics.get("kind") == "stack":
        lines = ["| method | RMSE (mm) | r | SNR gain (dB) |", "|---|---:|---:|---:|"]
        for m in methods:
            cells = [
                fmt(metrics["rmse_mm"][m]),
                fmt(metrics["corr"][m]),
                fmt(metrics["snr_gain_db"][m], 1),
            ]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        return "\n".join(lines)
    by_amp = metrics["groups"]["amplitude"]
    amps = [a for a in by_amp if float(a) > 0]
    head = ["method", "RMSE all (mm)"] + [f"r @ {a} mm" for a in amps]
    head += ["SNR gain (dB)", "detection threshold (mm)", "false-positive p99 (mm)"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    overall = metrics["groups"]["all"]["all"]
    for m in methods:
        cells = [fmt(overall["rmse_mm"][m])]
        cells += [fmt(by_amp[a]["corr"][m]) for a in amps]
        cells += [fmt(overall["snr_gain_db"][m], 1)]
        cells += [_threshold(metrics["detection_threshold_mm"]["all"][m])]
        cells += [fmt(metrics["false_positive_p99_mm"]["all"][m])]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    model = metrics.get("model") or {}
    lines.append("")
    lines.append(
        f"Simulated benchmark, split `{metrics['split']}`, seed {metrics['seed']}, "
        f"{metrics['n_scenes']} scenes of {metrics['size_px']} px x {metrics['window']} dates, "
        f"model `{model.get('id', 'none')}`; filter sigma "
        f"{fmt(metrics['sigma_tuning']['sigma_px']['filter'], 1)} px, best sigma "
        f"{fmt(metrics['sigma_tuning']['sigma_px']['best'], 1)} px (tuned)."
    )
    return "\n".join(lines)


def _summary_cells(metrics: dict[str, Any], method: str, amps: list[str]) -> list[str]:
    """One method's formatted summary cells of one split (the columns of :func:`split_table`)."""
    overall = metrics["groups"]["all"]["all"]
    by_amp = metrics["groups"]["amplitude"]
    cells = [fmt(overall["rmse_mm"][method])]
    cells += [fmt(by_amp[a]["corr"][method]) if a in by_amp else "–" for a in amps]
    cells += [fmt(overall["snr_gain_db"][method], 1)]
    cells += [_threshold(metrics["detection_threshold_mm"]["all"][method])]
    cells += [fmt(metrics["false_positive_p99_mm"]["all"][method])]
    return cells


def split_table(metrics: dict[str, Any]) -> str:
    """Side-by-side table of the splits of a ``--split both`` metrics dict (``in / shifted``).

    One row per method; each cell holds the splits' values separated by `` / ``.
    """
    splits = metrics["splits"]
    names = list(splits)
    first = splits[names[0]]
    amps = [a for a in first["groups"]["amplitude"] if float(a) > 0]
    sep = " / "
    head = ["method", "RMSE all (mm)"] + [f"r @ {a} mm" for a in amps]
    head += ["SNR gain (dB)", "detection threshold (mm)", "false-positive p99 (mm)"]
    lines = [
        f"Splits: {sep.join(f'`{n}`' for n in names)} (each cell: {sep.join(names)}).",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for m in metrics["methods"]:
        per_split = [_summary_cells(splits[n], m, amps) for n in names]
        cells = [sep.join(values) for values in zip(*per_split, strict=True)]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _metric_table(groups: dict[str, Any], methods: list[str], metric: str, digits: int = 2) -> str:
    lines = ["| group | n | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
    for key, row in groups.items():
        cells = [fmt(row[metric][m], digits) for m in methods]
        lines.append(f"| {key} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    if metrics.get("kind") == "stack":
        out += [
            "",
            f"{metrics['n_dates']} dates, {metrics['shape'][0]} x {metrics['shape'][1]} px, "
            f"{metrics['n_pixels']} compared pixels; max |target| "
            f"{fmt(metrics['truth_max_abs_mm'])} mm; filter/best sigma "
            f"{metrics['sigma_px']:g} px (not tuned: one scene).",
            "",
            "![maps](examples.png)",
            "",
        ]
        return "\n".join(out)
    tuning = metrics["sigma_tuning"]
    out += ["", "## Filter width", ""]
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
    methods = list(metrics["methods"])
    titles = {
        "amplitude": "amplitude (mm)",
        "amplitude_noise": "amplitude (mm) | noise",
        "noise": "noise level (all amplitudes)",
        "source": "source (deformed scenes)",
        "dem": "DEM (deformed scenes)",
    }
    for metric, digits in (("rmse_mm", 2), ("corr", 2), ("snr_gain_db", 1), ("detected_frac", 2)):
        out += ["", f"## {metric} by group", ""]
        for group, title in titles.items():
            out += [
                f"### by {title}",
                "",
                _metric_table(metrics["groups"][group], methods, metric, digits),
                "",
            ]
    out += ["## Detection threshold (mm) and false-positive p99 (mm)", ""]
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
        cells = [_threshold(metrics["detection_threshold_mm"][lv][m]) for lv in levels]
        cells += [fmt(metrics["false_positive_p99_mm"][lv][m]) for lv in levels]
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    series = metrics.get("series_rmse_mm") or {}
    if series:
        n = len(next(iter(series.values()))["per_date"])
        out += [
            "",
            "## Denoised time series: per-date RMSE (mm), deforming scenes",
            "",
            "| method | all dates | " + " | ".join(f"date {k}" for k in range(1, n)) + " |",
            "|---|---:|" + "---:|" * (n - 1),
        ]
        for m, row in series.items():
            cells = [fmt(v) for v in row["per_date"][1:]]
            out.append(f"| {m} | {fmt(row['all'])} | " + " | ".join(cells) + " |")
    design = metrics["design"]
    out += [
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
    out += uncertainty_section(metrics.get("uncertainty"), figure_prefix)
    return "\n".join(out)


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


def panel_limit(values: np.ndarray) -> float:
    """Symmetric colour limit of one map: the larger |p1|, |p99| of its finite values (1 mm
    when there are none or all are zero), so every panel has its own robust scale."""
    from insar_denoise.plots import robust_range

    lo, hi = robust_range(values)
    vmax = max(abs(lo), abs(hi)) if np.isfinite(lo) else 0.0
    return vmax if vmax > 0 else 1.0


def plot_examples(examples: list[tuple[str, dict[str, np.ndarray]]], path: Path) -> None:
    """One row per example scene: target and every method, each map on its own robust
    colour scale (symmetric p1-p99) with its own colour bar in mm."""
    plt = pyplot()
    ncol = max(len(maps) for _, maps in examples)
    fig, axes = plt.subplots(
        len(examples),
        ncol,
        figsize=(2.4 * ncol + 1.0, 2.6 * len(examples)),
        squeeze=False,
    )
    fig.subplots_adjust(left=0.02, right=0.96, top=0.9, bottom=0.03, wspace=0.35, hspace=0.5)
    for row, (title, maps) in zip(axes, examples, strict=True):
        for ax, (name, m) in zip(row, maps.items(), strict=False):
            vmax = panel_limit(m)
            im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            label = f"target: {title}" if name == "truth" else name
            ax.set_title(f"{label}\n±{vmax:.3g} mm", fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02).ax.tick_params(labelsize=6)
        for ax in row[len(maps) :]:
            ax.axis("off")
    save_png(fig, path, overwrite=True, dpi=90)


def plot_curves(metrics: dict[str, Any], metric: str, label: str, path: Path) -> None:
    """``metric`` versus amplitude, one panel per noise level, one line per method."""
    plt = pyplot()
    groups = metrics["groups"]["amplitude_noise"]
    levels = list(metrics["design"]["noise_turbulence_std_mm"])
    fig, axes = plt.subplots(
        1, len(levels), figsize=(5 * len(levels), 3.6), squeeze=False, layout="constrained"
    )
    for ax, level in zip(axes[0], levels, strict=True):
        keys = [k for k in groups if k.endswith(f"|{level}")]
        amps = [float(k.split("|")[0]) for k in keys]
        for m in metrics["methods"]:
            vals = [groups[k][metric][m] for k in keys]
            vals = [np.nan if v is None else v for v in vals]
            ax.plot(amps, vals, marker="o", lw=2.5 if m == "model" else 1.2, label=m)
        std = metrics["design"]["noise_turbulence_std_mm"][level]
        ax.set_title(f"{level} noise (turbulence {std:g} mm)")
        ax.set_xlabel("deformation amplitude (mm)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    save_png(fig, path, overwrite=True, dpi=90)


def _plot_uncertainty(metrics: dict[str, Any], path: Path, paths: dict, key: str) -> None:
    """The coverage curve of the uncertainty bands, if the metrics have one."""
    unc = metrics.get("uncertainty") or {}
    if "curve" not in unc:
        return
    calibration_figure(
        np.asarray(unc["curve"]["levels_sigma"]),
        np.asarray(unc["curve"]["observed"]),
        path,
        True,
        coverage_95=unc["coverage_95"],
        title=f"split {metrics.get('split', '')}",
    )
    paths[key] = path


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
        _plot_uncertainty(metrics, out / "uncertainty_calibration.png", paths, "uncertainty")
    for name, split_metrics in metrics.get("splits", {}).items():
        rmse_path = out / f"{name}_rmse_vs_amplitude.png"
        corr_path = out / f"{name}_corr_vs_amplitude.png"
        plot_curves(split_metrics, "rmse_mm", f"RMSE (mm), split {name}", rmse_path)
        plot_curves(split_metrics, "corr", f"correlation with target, split {name}", corr_path)
        paths[f"{name}_rmse"] = rmse_path
        paths[f"{name}_corr"] = corr_path
        unc_path = out / f"{name}_uncertainty_calibration.png"
        _plot_uncertainty(split_metrics, unc_path, paths, f"{name}_uncertainty")
    with atomic_output(out / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1, allow_nan=False) + "\n")
    with atomic_output(out / "report.md", overwrite=True) as tmp:
        tmp.write_text(markdown(metrics) + "\n")
    paths["metrics"] = out / "metrics.json"
    paths["report"] = out / "report.md"
    return paths
