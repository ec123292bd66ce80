"""Shared pieces of the evaluation reports (v1 and v2): file names, number format, JSON, folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from insar_denoise.errors import OutputError
from insar_denoise.io.targets import atomic_output, check_report_files

FILES = ("metrics.json", "report.md")
FIGURES = ("examples.png", "rmse_vs_amplitude.png", "corr_vs_amplitude.png")
#: curve figures of each split of a ``--split both`` report (``{split}_{name}``)
SPLIT_FIGURES = tuple(f"{s}_{f}" for s in ("in", "shifted") for f in FIGURES[1:])
#: figures of a v2 (referee) report, :mod:`.referee_report`
REFEREE_FIGURES = ("detection_vs_snr.png", "gain_vs_snr.png")


def fmt(value: Any, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; an en dash for None or a non-finite float."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def json_ready(obj: Any) -> Any:
    """Copy with NaN/inf floats as None and numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def prepare_dir(out_dir: str | Path, overwrite: bool = False) -> Path:
    """Create ``out_dir``; refuse a folder holding report files unless ``overwrite``."""
    out = Path(out_dir)
    check_report_files(out, FILES + FIGURES + SPLIT_FIGURES + REFEREE_FIGURES, overwrite)
    if not out.parent.is_dir():
        raise OutputError(f"{out}: folder {out.parent} does not exist")
    out.mkdir(exist_ok=True)
    return out


def write_metrics_and_report(
    out: Path, metrics: dict[str, Any], report_md: str, paths: dict[str, Path]
) -> dict[str, Path]:
    """Write ``metrics.json`` (strict JSON) and ``report.md`` into ``out`` atomically; their
    paths are added to ``paths`` (returned)."""
    with atomic_output(out / FILES[0], overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1, allow_nan=False) + "\n")
    with atomic_output(out / FILES[1], overwrite=True) as tmp:
        tmp.write_text(report_md + "\n")
    paths["metrics"] = out / FILES[0]
    paths["report"] = out / FILES[1]
    return paths
