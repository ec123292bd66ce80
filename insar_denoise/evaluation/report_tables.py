"""Markdown tables of evaluation metrics: the summary (also the README's, via
``scripts/results_table.py``), the per-split summary and the per-group tables."""

from __future__ import annotations

from typing import Any

from insar_denoise.evaluation.report_common import fmt


def threshold_cell(value: Any) -> str:
    """A detection threshold (mm) as a table cell."""
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
        cells += [threshold_cell(metrics["detection_threshold_mm"]["all"][m])]
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
    cells += [threshold_cell(metrics["detection_threshold_mm"]["all"][method])]
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


def metric_table(groups: dict[str, Any], methods: list[str], metric: str, digits: int = 2) -> str:
    """One ``metric`` per group (rows) and method (columns)."""
    lines = ["| group | n | " + " | ".join(methods) + " |", "|---|---:|" + "---:|" * len(methods)]
    for key, row in groups.items():
        cells = [fmt(row[metric][m], digits) for m in methods]
        lines.append(f"| {key} | {row['n']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
