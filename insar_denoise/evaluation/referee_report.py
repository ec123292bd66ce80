"""Write the v2 benchmark (referee) report: ``metrics.json``, ``report.md`` and two figures.

Figures: ``detection_vs_snr.png`` (share of deforming scenes with r >= 0.7) and
``gain_vs_snr.png`` (median gain), one panel per split, one curve per method, against the
ideal observer's SNR with its 5 sigma line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.evaluation.report_common import REFEREE_FIGURES as FIGURES
from insar_denoise.evaluation.report_common import (
    fmt,
    json_ready,
    prepare_dir,
    write_metrics_and_report,
)
from insar_denoise.plots import pyplot, save_png


def _cells(summary: dict[str, Any], methods: list[str], key: str, digits: int = 2) -> list[str]:
    return [fmt(summary["methods"][m][key], digits) for m in methods]


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def snr_table(split: dict[str, Any], methods: list[str]) -> list[str]:
    """Per SNR bin (all T): n, median SNR, then detection share, gain and RMSE per method."""
    head = ["SNR bin", "n", "median SNR"]
    head += [f"detected {m}" for m in methods] + [f"gain {m}" for m in methods]
    head += [f"RMSE {m} (mm)" for m in methods]
    rows = []
    for b, groups in split["by_snr"].items():
        s = groups["all"]
        rows.append(
            [b, str(s["n"]), fmt(s["snr_median"], 1)]
            + _cells(s, methods, "detected")
            + _cells(s, methods, "gain")
            + _cells(s, methods, "rmse_mm")
        )
    return _table(head, rows)


def per_t_table(split: dict[str, Any], methods: list[str]) -> list[str]:
    """Per T and SNR bin: n, then "detected / gain / RMSE" per method."""
    keys = sorted(
        {k for g in split["by_snr"].values() for k in g if k != "all"},
        key=lambda k: int(k.split("=")[1]),
    )
    rows = []
    for t in keys:
        for b, groups in split["by_snr"].items():
            if t not in groups:
                continue
            s = groups[t]
            cells = [
                " / ".join(fmt(s["methods"][m][k], d) for k, d in (("detected", 2), ("gain", 2)))
                + f" / {fmt(s['methods'][m]['rmse_mm'], 1)}"
                for m in methods
            ]
            rows.append([t.split("=")[1], b, str(s["n"])] + cells)
    return _table(["T", "SNR bin", "n"] + methods, rows)


def source_table(split: dict[str, Any], methods: list[str]) -> list[str]:
    """Per source type (all SNR): n, median SNR, detection share and gain per method."""
    head = ["source", "n", "median SNR"]
    head += [f"detected {m}" for m in methods] + [f"gain {m}" for m in methods]
    rows = []
    for kind, groups in split["by_source"].items():
        s = groups["all"]
        rows.append(
            [kind, str(s["n"]), fmt(s["snr_median"], 1)]
            + _cells(s, methods, "detected")
            + _cells(s, methods, "gain")
        )
    return _table(head, rows)


def false_positive_table(split: dict[str, Any], methods: list[str]) -> list[str]:
    """p99 of |output| (mm) on the no-deformation scenes, per T and overall."""
    fp = split["false_positive_p99_mm"]
    rows = [[k] + [fmt(v.get(m), 2) for m in methods] for k, v in fp.items()]
    return _table(["T"] + methods, rows)


def gap_pixel_table(split: dict[str, Any], methods: list[str]) -> list[str]:
    """RMSE (mm) on the gap patches (not in the tables above) beside the compared pixels'."""
    gp = split.get("gap_pixels")
    if not gp or not gp["n_scenes"]:
        return ["No scene with gap pixels."]
    rows = [
        [label] + [fmt(gp[key].get(m), 2) for m in methods]
        for label, key in (
            ("median on the gap patch", "median_gap_rmse_mm"),
            ("largest on the gap patch", "max_gap_rmse_mm"),
            ("median on the compared pixels", "median_rmse_mm_same_scenes"),
        )
    ]
    return [
        f"{gp['n_scenes']} scenes with a gap patch.",
        "",
        *_table(["RMSE (mm)"] + methods, rows),
    ]


def summary_table(metrics: dict[str, Any]) -> str:
    """Detection share per SNR bin and method, splits side by side (printed by ``evaluate``)."""
    methods = list(metrics["methods"])
    splits = metrics["splits"]
    lines = [f"Detection share (r >= 0.7) per ideal-observer SNR bin; splits {', '.join(splits)}"]
    head = ["split", "SNR bin", "n"] + methods
    rows = []
    for name, split in splits.items():
        for b, groups in split["by_snr"].items():
            s = groups["all"]
            rows.append([name, b, str(s["n"])] + _cells(s, methods, "detected"))
        fp = split["false_positive_p99_mm"].get("all", {})
        rows.append([name, "no deformation: p99 (mm)", "–"] + [fmt(fp.get(m)) for m in methods])
    return "\n".join([*lines, "", *_table(head, rows)])


def markdown(metrics: dict[str, Any]) -> str:
    """The whole ``report.md`` of a v2 run."""
    methods = list(metrics["methods"])
    model = metrics.get("model") or {}
    d = metrics["design"]
    out = ["# insar-denoise benchmark v2 (the ideal observer as referee)", ""]
    base = metrics.get("baseline")
    if base:
        out += [f"Baseline (method `baseline`): `{base.get('id', '?')}` ({base.get('path')}).", ""]
    out.append(
        f"Model: `{model.get('id', 'none')}` ({model.get('path', 'no model')}); package "
        f"{metrics['package_version']}; seed {metrics['seed']}; {metrics['n_per_split']} "
        f"scenes per split of {metrics['size_px']} px and T = "
        f"{', '.join(map(str, d['n_dates']))} dates (12-day or irregular 6/12/24-day "
        f"sampling); sources {', '.join(k for k in d['source_types'] if k != 'none')} "
        f"and none; amplitudes {d['amplitude_mm'][0]:g}-{d['amplitude_mm'][1]:g} mm "
        f"(log-spread), turbulence {d['turbulence_mm'][0]:g}-{d['turbulence_mm'][1]:g} mm "
        f"per date; gaps in time in {d['gap_prob']:.0%} of the scenes."
    )
    out += ["", f"**Truth**: {metrics['target']}.", ""]
    out.append(
        "**SNR axis**: the ideal observer's SNR of each scene's true deformation under the "
        "simulator's own noise, history known (matched filter). At SNR 5 an ideal observer "
        "detects the signal at 5 sigma; no method can do much better below that line."
    )
    out += ["", "## Definitions", ""]
    out += [f"- `{k}`: {v}" for k, v in metrics["definitions"].items()]
    out += ["", "![detection](detection_vs_snr.png)", "", "![gain](gain_vs_snr.png)", ""]
    for name, split in metrics["splits"].items():
        tuning = split["sigma_tuning"]
        out += [f"## Split `{name}`", ""]
        out.append(
            f"{split['n_scenes']} scenes ({split['n_unbinned']} deforming scenes without a "
            f"finite SNR left out of the bins); `best` sigma {fmt(tuning['sigma_px'], 0)} px, "
            f"tuned on {tuning['n_scenes']} separate scenes; {split['wall_s']:.0f} s."
        )
        if split["split_overrides"]:
            items = ", ".join(f"`{k}` {v}" for k, v in split["split_overrides"].items())
            out += [
                "",
                f"Simulator overrides of the split (the design wins on its factors): {items}.",
            ]
        out += ["", "### Per SNR bin (all T)", "", *snr_table(split, methods), ""]
        out += ["### Per T: detected / gain / RMSE (mm)", "", *per_t_table(split, methods), ""]
        out += ["### Per source type (all SNR)", "", *source_table(split, methods), ""]
        out += [
            "### No deformation: false-positive p99 of |output| (mm)",
            "",
            *false_positive_table(split, methods),
            "",
            "### Pixels missing on some dates (gap patches; not in the tables above)",
            "",
            *gap_pixel_table(split, methods),
            "",
        ]
    return "\n".join(out)


def plot_vs_snr(metrics: dict[str, Any], key: str, label: str, path: Path) -> None:
    """``key`` (``detected`` or ``gain``) per SNR bin against the bin's median SNR; one panel
    per split, one curve per method, the ideal observer's 5 sigma line."""
    plt = pyplot()
    splits = metrics["splits"]
    fig, axes = plt.subplots(
        1, len(splits), figsize=(5.2 * len(splits), 3.8), squeeze=False, layout="constrained"
    )
    for ax, (name, split) in zip(axes[0], splits.items(), strict=True):
        groups = [g["all"] for g in split["by_snr"].values()]
        x = [g["snr_median"] for g in groups]
        for m in metrics["methods"]:
            y = [g["methods"][m][key] for g in groups]
            y = [np.nan if v is None else v for v in y]
            ax.plot(x, y, marker="o", lw=2.5 if m == "model" else 1.2, label=m)
        ax.axvline(metrics["snr_detection_sigma"], color="k", ls="--", lw=1)
        ax.text(
            metrics["snr_detection_sigma"], 0.02, " ideal observer 5σ",
            transform=ax.get_xaxis_transform(), fontsize=7,
        )  # fmt: skip
        if key == "gain":
            ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"split {name}")
        ax.set_xlabel("ideal-observer SNR (history known)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    save_png(fig, path, overwrite=True, dpi=90)


def write_referee_report(
    metrics: dict[str, Any], out_dir: str | Path, overwrite: bool = False
) -> dict[str, Path]:
    """Write ``metrics.json``, ``report.md``, ``detection_vs_snr.png`` and ``gain_vs_snr.png``.

    Returns the written paths by name.
    """
    out = prepare_dir(out_dir, overwrite)
    clean = json_ready(metrics)
    paths = {"detection": out / FIGURES[0], "gain": out / FIGURES[1]}
    plot_vs_snr(clean, "detected", "detection share (r ≥ 0.7)", paths["detection"])
    plot_vs_snr(clean, "gain", "gain (slope on truth, median)", paths["gain"])
    return write_metrics_and_report(out, clean, markdown(clean), paths)
