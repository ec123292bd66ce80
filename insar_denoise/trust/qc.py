"""Quality control of a run: out-of-distribution checks and a report on what was removed.

:func:`qc_checks` compares the input with the training distribution recorded in the model's
metadata (``sim_config``; the package's default :class:`~insar_denoise.synth.SimConfig` when
absent) and returns :class:`QCWarning` items; :func:`emit_warnings` raises them as Python
warnings (:class:`OutOfDistributionWarning`). :func:`noise_statistics` describes the removed
noise per date, :func:`write_qc_report` writes ``report.md``, ``qc.json`` and figures; the
measurements (spacing, interval, robust noise, jumps, spectral slope, removed noise per date)
are in :mod:`.measures`.

Checks (codes), with generous factors so that they flag clear departures only:

- ``noise_high``: median over date pairs of the robust std (1.4826 MAD) of the date-to-date
  difference is above ``NOISE_FACTOR`` x sqrt(2) x the largest training turbulence std;
- ``pixel_spacing``: pixel spacing outside [0.5, 2] x the training spacing;
- ``interval``: median sampling interval outside [0.5, 2] x the training interval;
- ``unwrapping``: in some date-to-date difference, many neighbouring-pixel steps close to a
  multiple of half the wavelength (spatially coherent jumps, unlike smooth atmosphere);
- ``few_dates``: window models: fewer dates than the window, or barely more (< window + 2);
  whole-stack models (``kind: stack``): fewer than ``min_valid_dates``, or fewer than the
  shortest stacks of training (``train_config["dates"][0]``; else ``min_valid_dates + 2``);
- ``unwrapping_removed`` (from the result, :func:`unwrapping_findings`): the engine removed
  unwrapping errors of single dates; which, and where to check them.
- ``relief`` (from the result, :func:`relief_findings`): the least-squares cumulative follows
  the elevation more than its noise maps do (:mod:`insar_denoise.inference.relief`);
- ``fault_trace`` (from the result, :func:`fault_trace_findings`): the engine restored a
  straight creeping fault, a fitted model inserted in the output
  (:mod:`insar_denoise.inference.fault_trace`);
- ``creep_model`` (from the result, :func:`creep_model_findings`): the engine modelled a
  creeping fault as a finite dislocation and added it to the output
  (:mod:`insar_denoise.inference.creep_model`).
- ``correlated_dates`` (from the result, :func:`.date_correlation.date_correlation_findings`):
  what the run left in the stack has dates correlated beyond what the engine's noise maps
  assume (detections near the threshold and the bands may be optimistic).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from insar_denoise.errors import OutOfDistributionWarning
from insar_denoise.synth.config import SimConfig
from insar_denoise.synth.turbulence import ATMOSPHERE_BETA

# The measurements the checks and the report use live in :mod:`.measures` (re-exported here).
from insar_denoise.trust.measures import (  # noqa: F401
    JUMP_TOLERANCE,
    MAX_CHECK_PX,
    MIN_JUMP_EDGES,
    MIN_JUMP_SHARE,
    SPECTRAL_BAND,
    _central,
    interval_days,
    jump_edges,
    noise_statistics,
    pixel_spacing_m,
    robust_std,
    spectral_beta,
)

if TYPE_CHECKING:
    from insar_denoise.models.registry import ModelLike

#: multiple of the expected largest in-distribution noise that triggers ``noise_high``
NOISE_FACTOR = 2.0
#: accepted ratio range of pixel spacing and sampling interval to the training values
RATIO_RANGE = (0.5, 2.0)


@dataclass(frozen=True)
class QCWarning:
    """One out-of-distribution finding: a stable ``code``, a sentence, the measured value."""

    code: str
    message: str
    value: float | None = None


def training_config(metadata: dict[str, Any] | None) -> tuple[SimConfig, bool]:
    """The model's training distribution and whether it came from the metadata.

    Returns the package default :class:`SimConfig` (and False) when the metadata has none.
    """
    sim = (metadata or {}).get("sim_config")
    if isinstance(sim, dict):
        try:
            return SimConfig.from_dict(sim), True
        except Exception:  # noqa: BLE001  a foreign config: fall back to the defaults
            pass
    return SimConfig(), False


def _off_ratio(measured: float | None, trained: float) -> float | None:
    """``measured / trained`` when it is outside :data:`RATIO_RANGE`, else None."""
    if measured is None:
        return None
    ratio = measured / trained
    return None if RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1] else ratio


def qc_checks(ds: xr.Dataset, metadata: dict[str, Any] | None = None) -> list[QCWarning]:
    """Out-of-distribution checks of a canonical Dataset against a model's training ranges.

    Parameters
    ----------
    ds : canonical Dataset (``displacement(time, y, x)`` mm, ``dem`` m, CRS via rioxarray).
    metadata : model metadata (``sim_config``, ``window`` or ``kind: stack`` with
        ``min_valid_dates``); None: package defaults, no date-count check.

    Returns
    -------
    list of QCWarning, empty when the input looks in distribution.
    """
    cfg, _ = training_config(metadata)
    out: list[QCWarning] = []
    n_dates = int(ds.sizes["time"])
    out.extend(_date_checks(n_dates, metadata))
    spacing = pixel_spacing_m(ds)
    if (ratio := _off_ratio(spacing, cfg.pixel_spacing_m)) is not None:
        text = (
            f"pixel spacing {spacing:.0f} m is {ratio:.2g}x the training spacing "
            f"({cfg.pixel_spacing_m:.0f} m): source and atmosphere sizes in pixels differ "
            "from training; resample the stack"
        )
        out.append(QCWarning("pixel_spacing", text, spacing))
    interval = interval_days(ds)
    if (ratio := _off_ratio(interval, cfg.interval_days)) is not None:
        text = (
            f"median sampling interval {interval:.3g} days is {ratio:.2g}x the training "
            f"interval ({cfg.interval_days:g} days)"
        )
        out.append(QCWarning("interval", text, interval))
    values, _ = _central(ds)
    diffs = np.diff(values, axis=0)
    if diffs.shape[0]:
        noise = float(np.nanmedian([robust_std(d) for d in diffs]))
        limit = NOISE_FACTOR * math.sqrt(2.0) * cfg.turbulence_std_mm[1]
        if np.isfinite(noise) and noise > limit:
            out.append(
                QCWarning(
                    "noise_high",
                    f"date-to-date noise (robust std {noise:.1f} mm) is far above the training "
                    f"range (turbulence std up to {cfg.turbulence_std_mm[1]:g} mm per date, "
                    f"limit {limit:.1f} mm): check units (--units) and the stack",
                    noise,
                )
            )
        half = cfg.unwrap_half_wavelength_mm
        counts = [jump_edges(d, half) for d in diffs]
        bad = [i for i, c in enumerate(counts) if c >= MIN_JUMP_EDGES]
        if bad:
            from insar_denoise.inference.unwrapping import MIN_DATES

            dates = np.datetime_as_string(np.asarray(ds["time"].values)[1:][bad], unit="D")
            n_dates = int(ds.sizes["time"])
            todo = (
                "the model path removes those of single dates (attribute "
                "insar_denoise_unwrapping); fix the others before denoising"
                if n_dates >= MIN_DATES
                else f"with {n_dates} dates (the model path removes them from {MIN_DATES} on) "
                "fix them before denoising"
            )
            out.append(
                QCWarning(
                    "unwrapping",
                    f"{len(bad)} date(s) show coherent jumps of multiples of {half:g} mm "
                    f"(unwrapping errors?), first at {dates[0]}: {todo}",
                    float(max(counts)),
                )
            )
    return out


def relief_findings(attrs: dict[str, Any]) -> list[QCWarning]:
    """The ``relief`` finding from the relief check the engine recorded in a result's
    attributes (empty when it passed or did not run)."""
    from insar_denoise.inference import relief
    from insar_denoise.inference.stratification import STRAT_ATTR, TREND_SD_KEY

    try:
        ratio = float(attrs.get(relief.RELIEF_RATIO_ATTR, "nan"))
        mm = float(attrs.get(relief.RELIEF_MM_ATTR, "nan"))
    except (TypeError, ValueError):
        return []
    text = relief.relief_warning(ratio, mm)
    if text is None:
        return []
    if str(attrs.get(STRAT_ATTR, "")).startswith("{"):
        text += (
            "; the date-to-date stratified delay was removed before the network (attribute "
            f"{STRAT_ATTR}), what follows the relief steadily in time was kept"
        )
        sd = json.loads(attrs[STRAT_ATTR]).get(TREND_SD_KEY)
        if sd is not None:
            text += (
                f", uncertain by up to {sd:.1f} mm (1 sigma) where the ground is highest or "
                "lowest (included in the uncertainty bands)"
            )
    return [QCWarning("relief", text, ratio)]


def _trace_place(result: xr.Dataset, trace: dict) -> tuple[str, float]:
    """Where a trace's point is (pixel, and map coordinates when the result has them) and
    its strike (degrees clockwise from the grid's up direction)."""
    row, col = trace["point"]
    n_row, n_col = trace["normal"]
    strike = math.degrees(math.atan2(n_row, n_col)) % 180.0  # along the line, from image up
    where = f"pixel (row {row:.0f}, column {col:.0f})"
    if "x" in result.coords and "y" in result.coords and result.sizes.get("x", 0) > 1:
        x = float(np.interp(col, np.arange(result.sizes["x"]), result["x"].values))
        y = float(np.interp(row, np.arange(result.sizes["y"]), result["y"].values))
        where += f", x {x:.6g} y {y:.6g} in the output's CRS"
    return where, strike


def creep_model_findings(result: xr.Dataset) -> list[QCWarning]:
    """The ``creep_model`` finding when the engine modelled a creeping fault
    (:mod:`insar_denoise.inference.creep_model`): where, its tips and width, how large, and
    that it is a fitted model added to the output, to check against mapped faults."""
    from insar_denoise.inference.creep_model import CREEP_ATTR

    try:
        fit = json.loads(result.attrs.get(CREEP_ATTR, "none"))
    except (TypeError, ValueError):
        return []
    if not isinstance(fit, dict):
        return []
    trace = fit["trace"]
    where, strike = _trace_place(result, trace)
    tips = ", ".join("beyond the scene" if t is None else f"{t:+.0f} px" for t in fit["tips_px"])
    text = (
        f"a creeping fault was modelled and added to the output: a strike-slip dislocation "
        f"(Okada 1985) under a trace through {where} ({trace['z']:.1f} robust sigma), strike "
        f"{strike:.0f} degrees clockwise from the grid's up direction, tips along it at "
        f"{tips} from that point, slipping from {fit['top_px']:.0f} to "
        f"{fit['top_px'] + fit['width_px']:.0f} px down dip (dip {fit['dip_deg']:.0f} "
        f"degrees), up to {fit['largest_mm']:.1f} mm in the line of sight. It is a fitted "
        "model: check it against mapped faults (on high relief a ridge can look like a trace)"
    )
    return [QCWarning("creep_model", text, float(trace["z"]))]


def fault_trace_findings(result: xr.Dataset) -> list[QCWarning]:
    """The ``fault_trace`` finding when the engine restored a fault trace
    (:mod:`insar_denoise.inference.fault_trace`): where, how large, and that it is a fitted
    model inserted in the output, to check against mapped faults."""
    from insar_denoise.inference.fault_trace import TRACE_ATTR

    try:
        trace = json.loads(result.attrs.get(TRACE_ATTR, "none"))
    except (TypeError, ValueError):
        return []
    if not isinstance(trace, dict):
        return []
    where, strike = _trace_place(result, trace)
    text = (
        f"a straight step was found in the least-squares cumulative ({trace['z']:.1f} robust "
        f"sigma over all lines) and restored in the output as a creeping strike-slip fault: "
        f"{trace['amplitude_mm']:+.1f} mm across a line through {where}, strike "
        f"{strike:.0f} degrees clockwise from the grid's up direction. It is a fitted model: "
        "check it against mapped faults (on high relief a ridge can look like a trace)"
    )
    return [QCWarning("fault_trace", text, float(trace["z"]))]


def unwrapping_findings(attrs: dict[str, Any]) -> list[QCWarning]:
    """The ``unwrapping_removed`` finding when the engine removed unwrapping errors of single
    dates (:mod:`insar_denoise.inference.unwrapping`): on which dates, how large, how many
    pixels, and where to look at them."""
    from insar_denoise.inference.unwrapping import UNWRAP_ATTR

    try:
        removed = json.loads(attrs.get(UNWRAP_ATTR, "none"))
    except (TypeError, ValueError):
        return []
    if not isinstance(removed, list) or not removed:
        return []
    each = ", ".join(f"{r['jump_mm']:+g} mm on {r['pixels']} px of {r['date']}" for r in removed)
    text = (
        f"{len(removed)} region(s) offset by whole half wavelengths on one date only were "
        f"taken for unwrapping errors and removed before denoising ({each}); they are in the "
        "noise output: check them there"
    )
    rim = sum(int(r.get("rim_missing", 0)) for r in removed)
    if rim:
        text += f"; {rim} px around them were set missing on their date"
    return [QCWarning("unwrapping_removed", text, float(sum(r["pixels"] for r in removed)))]


def date_needs(metadata: dict[str, Any] | None) -> tuple[int, int, str] | None:
    """Dates the model needs to run, dates below which it warns, and how to say it; None
    without a model. Window models: the window and window + 2; whole-stack models
    (``kind: stack``): ``min_valid_dates`` and the shortest training stacks."""
    meta = metadata or {}
    if meta.get("kind") == "stack":
        need = int(meta.get("min_valid_dates", 6))
        fewest = int(((meta.get("train_config") or {}).get("dates") or [need + 2])[0])
        return need, max(need, fewest), f"whole stack, trained on >= {fewest} dates"
    if meta.get("window") is None:
        return None
    window = int(meta["window"])
    return window, window + 2, f"window {window}"


def _date_checks(n_dates: int, metadata: dict[str, Any] | None) -> list[QCWarning]:
    """``few_dates`` findings for a stack of ``n_dates`` dates and the model's metadata."""
    needs = date_needs(metadata)
    if needs is None or n_dates >= needs[1]:
        return []
    need, fewest, _ = needs
    stack = (metadata or {}).get("kind") == "stack"
    if n_dates < need:
        what = f"at least {need} dates" if stack else f"a window of {need}"
        text = (
            f"{n_dates} dates but the model needs {what}: the model cannot run; use a "
            "classical --method or more dates"
        )
    elif stack:
        text = (
            f"{n_dates} dates: fewer than the shortest stacks the model was trained on "
            f"({fewest} dates), so its estimate is barely constrained; add dates if you can"
        )
    else:
        text = (
            f"{n_dates} dates for a {need}-date window: few overlapping windows, so the "
            "estimate is barely averaged; add dates if you can"
        )
    return [QCWarning("few_dates", text, float(n_dates))]


def emit_warnings(items: list[QCWarning], stacklevel: int = 2) -> None:
    """Raise each item as an :class:`OutOfDistributionWarning` (``"[code] message"``)."""
    for item in items:
        warnings.warn(f"[{item.code}] {item.message}", OutOfDistributionWarning, stacklevel)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def write_qc_report(
    ds: xr.Dataset,
    result: xr.Dataset,
    out_dir: str | Path,
    metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
    warnings_: list[QCWarning] | None = None,
) -> dict[str, Path]:
    """Write ``report.md``, ``qc.json``, ``maps.png`` and ``noise_per_date.png`` to ``out_dir``.

    Parameters
    ----------
    ds : the canonical input Dataset.
    result : output of :func:`~insar_denoise.inference.denoise_dataset` with ``noise``.
    out_dir : folder (created); existing report files are refused unless ``overwrite``.
    metadata : model metadata (training ranges), or None.
    warnings_ : precomputed :func:`qc_checks` result (computed when None).

    Returns
    -------
    dict name -> written path.
    """
    from insar_denoise.inference.masks import pixel_counts
    from insar_denoise.io import atomic_output
    from insar_denoise.trust.figures import map_figure, noise_figure
    from insar_denoise.trust.reports import qc_markdown

    out = Path(out_dir)
    paths = check_report_dir(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    found = qc_checks(ds, metadata) if warnings_ is None else warnings_
    cfg, from_model = training_config(metadata)
    rows = noise_statistics(ds, result)
    need = int(result.attrs.get("insar_denoise_min_valid_dates", ds.sizes["time"]))
    pixels = pixel_counts(ds["displacement"].transpose("time", "y", "x").data, None, need)
    summary = {
        "method": result.attrs.get("insar_denoise_method", "model"),
        "model_id": result.attrs.get("insar_denoise_model_id", "none"),
        "n_dates": int(ds.sizes["time"]),
        "shape": [int(ds.sizes["y"]), int(ds.sizes["x"])],
        "pixel_spacing_m": pixel_spacing_m(ds),
        "interval_days": interval_days(ds),
        "training_ranges": {
            "source": "model metadata sim_config" if from_model else "package defaults",
            "turbulence_std_mm": list(cfg.turbulence_std_mm),
            "pixel_spacing_m": cfg.pixel_spacing_m,
            "interval_days": cfg.interval_days,
            "window": (metadata or {}).get("window"),
            "dates": (date_needs(metadata) or (0, 0, "no model"))[2],
        },
        "reference": result.attrs.get("insar_denoise_reference", "input as is"),
        "pixels": {**pixels, "min_valid_dates": need},
        "warnings": [asdict(w) for w in found],
        "per_date": rows,
        "atmosphere_beta_range": list(ATMOSPHERE_BETA),
    }
    with atomic_output(paths["qc"], overwrite=overwrite) as tmp:
        Path(tmp).write_text(json.dumps(_finite(summary), indent=1))
    map_figure(ds, result, paths["maps"], overwrite)
    noise_figure(rows, paths["noise"], overwrite)
    with atomic_output(paths["report"], overwrite=overwrite) as tmp:
        Path(tmp).write_text(qc_markdown(summary))
    return paths


def check_report_dir(out_dir: str | Path, overwrite: bool) -> dict[str, Path]:
    """The report's paths; fail (``OutputError``) if one exists and ``overwrite`` is False."""
    from insar_denoise.io.targets import check_report_files

    names = {"report": "report.md", "qc": "qc.json", "maps": "maps.png"}
    names["noise"] = "noise_per_date.png"
    return dict(zip(names, check_report_files(out_dir, names.values(), overwrite), strict=True))


def model_metadata(model: ModelLike, method: str = "model") -> dict[str, Any] | None:
    """Metadata of the model a run uses (None for classical methods).

    ``model``: a ``LoadedModel``, or what :func:`insar_denoise.models.as_model` resolves.
    """
    if method != "model":
        return None
    from insar_denoise.models.registry import as_model

    return as_model(model).metadata
