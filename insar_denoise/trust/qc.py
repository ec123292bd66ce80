"""Quality control of a run: out-of-distribution checks and a report on what was removed.

:func:`qc_checks` compares the input with the training distribution recorded in the model's
metadata (``sim_config``; the package's default :class:`~insar_denoise.synth.SimConfig` when
absent) and returns :class:`QCWarning` items; :func:`emit_warnings` raises them as Python
warnings (:class:`OutOfDistributionWarning`). :func:`noise_statistics` describes the removed
noise per date, :func:`write_qc_report` writes ``report.md``, ``qc.json`` and figures.

Checks (codes), with generous factors so that they flag clear departures only:

- ``noise_high``: median over date pairs of the robust std (1.4826 MAD) of the date-to-date
  difference is above ``NOISE_FACTOR`` x sqrt(2) x the largest training turbulence std;
- ``pixel_spacing``: pixel spacing outside [0.5, 2] x the training spacing;
- ``interval``: median sampling interval outside [0.5, 2] x the training interval;
- ``unwrapping``: in some date-to-date difference, many neighbouring-pixel steps close to a
  multiple of half the wavelength (spatially coherent jumps, unlike smooth atmosphere);
- ``few_dates``: window models: fewer dates than the window, or barely more (< window + 2);
  whole-stack models (``kind: stack``): fewer than ``min_valid_dates``, or fewer than the
  shortest stacks of training (``train_config["dates"][0]``; else ``min_valid_dates + 2``).
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
from insar_denoise.synth.config import S1_HALF_WAVELENGTH_MM, SimConfig
from insar_denoise.synth.turbulence import ATMOSPHERE_BETA

if TYPE_CHECKING:
    from insar_denoise.models.registry import ModelLike

#: multiple of the expected largest in-distribution noise that triggers ``noise_high``
NOISE_FACTOR = 2.0
#: accepted ratio range of pixel spacing and sampling interval to the training values
RATIO_RANGE = (0.5, 2.0)
#: side (px) of the central crop the checks read (bounded cost on large stacks)
MAX_CHECK_PX = 512
#: neighbour steps within this share of a half wavelength of k * half wavelength count as jumps
JUMP_TOLERANCE = 0.2
#: jump edges needed (count and share of the large steps) to flag one date pair
MIN_JUMP_EDGES = 20
MIN_JUMP_SHARE = 0.5
#: band of spatial frequencies (cycles/px) used for the spectral slope
SPECTRAL_BAND = (1.0 / 32.0, 0.25)


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


def _central(ds: xr.Dataset, max_px: int = MAX_CHECK_PX) -> tuple[np.ndarray, np.ndarray | None]:
    """Central crop (at most ``max_px`` square) of displacement ``(T, H, W)`` mm and DEM, numpy."""
    disp = ds["displacement"].transpose("time", "y", "x")
    h, w = disp.shape[1:]
    y0, x0 = max(0, (h - max_px) // 2), max(0, (w - max_px) // 2)
    win = {"y": slice(y0, y0 + max_px), "x": slice(x0, x0 + max_px)}
    values = np.asarray(disp.isel(win).values, np.float32)
    if "valid" in ds:
        values[:, ~np.asarray(ds["valid"].isel(win).values, bool)] = np.nan
    dem = np.asarray(ds["dem"].isel(win).values, np.float64) if "dem" in ds else None
    return values, dem


def robust_std(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation of the finite values (mm); NaN if none."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def pixel_spacing_m(ds: xr.Dataset) -> float | None:
    """Mean of the x and y pixel sizes (m); degrees are converted at the scene's latitude.

    None without a CRS or with fewer than 2 pixels along an axis.
    """
    crs = ds.rio.crs
    if crs is None or ds.sizes["x"] < 2 or ds.sizes["y"] < 2:
        return None
    dx, dy = (abs(float(r)) for r in ds.rio.resolution())
    if crs.is_geographic:
        lat = math.radians(float(np.mean(ds["y"].values)))
        dx, dy = dx * 111_320.0 * math.cos(lat), dy * 110_574.0
    return 0.5 * (dx + dy)


def interval_days(ds: xr.Dataset) -> float | None:
    """Median time between consecutive dates (days); None with a single date."""
    t = np.asarray(ds["time"].values)
    if t.size < 2:
        return None
    if np.issubdtype(t.dtype, np.datetime64):
        return float(np.median(np.diff(t) / np.timedelta64(1, "D")))
    return float(np.median(np.diff(t.astype(np.float64))))


def jump_edges(diff: np.ndarray, half_wavelength_mm: float = S1_HALF_WAVELENGTH_MM) -> int:
    """Neighbour steps of a date-to-date difference that look like unwrapping jumps.

    Counts horizontal and vertical neighbour differences with ``|step| > 0.5`` half
    wavelength and within ``JUMP_TOLERANCE`` half wavelengths of a non-zero multiple of it;
    returns 0 unless these make up ``MIN_JUMP_SHARE`` of all large steps (smooth atmosphere
    has almost no large steps; random pixel noise spreads them over all values).
    """
    steps = np.concatenate([np.diff(diff, axis=0).ravel(), np.diff(diff, axis=1).ravel()])
    steps = np.abs(steps[np.isfinite(steps)]) / half_wavelength_mm
    large = steps > 0.5
    if not large.any():
        return 0
    near = large & (np.abs(steps - np.round(steps)) < JUMP_TOLERANCE)
    n_near = int(near.sum())
    return n_near if n_near >= MIN_JUMP_SHARE * int(large.sum()) else 0


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
    if spacing is not None:
        ratio = spacing / cfg.pixel_spacing_m
        if not RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]:
            out.append(
                QCWarning(
                    "pixel_spacing",
                    f"pixel spacing {spacing:.0f} m is {ratio:.2g}x the training spacing "
                    f"({cfg.pixel_spacing_m:.0f} m): source and atmosphere sizes in pixels differ "
                    "from training; resample the stack",
                    spacing,
                )
            )
    interval = interval_days(ds)
    if interval is not None:
        ratio = interval / cfg.interval_days
        if not RATIO_RANGE[0] <= ratio <= RATIO_RANGE[1]:
            out.append(
                QCWarning(
                    "interval",
                    f"median sampling interval {interval:.3g} days is {ratio:.2g}x the training "
                    f"interval ({cfg.interval_days:g} days)",
                    interval,
                )
            )
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
            dates = np.datetime_as_string(np.asarray(ds["time"].values)[1:][bad], unit="D")
            out.append(
                QCWarning(
                    "unwrapping",
                    f"{len(bad)} date(s) show coherent jumps of multiples of {half:g} mm "
                    f"(unwrapping errors?), first at {dates[0]}: fix them before denoising",
                    float(max(counts)),
                )
            )
    return out


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


def spectral_beta(image: np.ndarray, band: tuple[float, float] = SPECTRAL_BAND) -> float:
    """Exponent beta of ``P(k) ~ k^-beta`` of the radially averaged power spectrum.

    The map's mean is removed, NaN set to 0, a Hann window applied; beta is minus the slope
    of the least-squares line of log P on log k over ``band`` (cycles/px). NaN if the map
    is too small or empty.
    """
    img = np.asarray(image, np.float64)
    ok = np.isfinite(img)
    if ok.sum() < 64 or min(img.shape) < 16:
        return math.nan
    img = np.where(ok, img - img[ok].mean(), 0.0)
    h, w = img.shape
    img = img * np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(img)) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    k = np.hypot(ky, kx)
    edges = np.geomspace(band[0], band[1], 13)
    idx = np.digitize(k.ravel(), edges)
    logk, logp = [], []
    for b in range(1, len(edges)):
        sel = idx == b
        if sel.any() and power.ravel()[sel].mean() > 0:
            logk.append(math.log(k.ravel()[sel].mean()))
            logp.append(math.log(power.ravel()[sel].mean()))
    if len(logk) < 3:
        return math.nan
    return float(-np.polyfit(logk, logp, 1)[0])


def noise_statistics(ds: xr.Dataset, result: xr.Dataset) -> list[dict[str, Any]]:
    """Per date: removed-noise std (mm), phase-elevation coefficient (mm/km), spectral
    exponent beta, NaN share of the input (central crop of at most ``MAX_CHECK_PX``).

    The coefficient is the least-squares slope of the removed noise on elevation (km); the
    first date (the reference, zero noise) has NaN statistics except the NaN share.
    """
    values, dem = _central(ds)
    y0 = max(0, (ds.sizes["y"] - MAX_CHECK_PX) // 2)
    x0 = max(0, (ds.sizes["x"] - MAX_CHECK_PX) // 2)
    win = {"y": slice(y0, y0 + MAX_CHECK_PX), "x": slice(x0, x0 + MAX_CHECK_PX)}
    removed = np.asarray(result["noise"].transpose("time", "y", "x").isel(win).values, np.float64)
    dates = np.datetime_as_string(np.asarray(ds["time"].values), unit="D")
    rows = []
    for i, date in enumerate(dates):
        r = removed[i]
        ok = np.isfinite(r)
        row = {"date": str(date), "nan_share": float(np.mean(~np.isfinite(values[i])))}
        std = coef = beta = math.nan
        if i > 0 and ok.sum() > 2:
            std = float(np.std(r[ok]))
            if dem is not None:
                good = ok & np.isfinite(dem)
                h_km = dem[good] / 1000.0
                if good.sum() > 2 and np.ptp(h_km) > 0:
                    coef = float(np.polyfit(h_km, r[good], 1)[0])
            beta = spectral_beta(r)
        row.update(std_mm=std, elevation_mm_per_km=coef, spectral_beta=beta)
        rows.append(row)
    return rows


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
