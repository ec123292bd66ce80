"""One frame end to end: open inputs (any supported layout), denoise, write outputs.

``insar-denoise run``, ``insar-denoise batch`` and the demo all call :func:`run_pipeline`;
the xarray accessor calls the same :func:`insar_denoise.inference.denoise_dataset`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr

from insar_denoise.errors import ConfigError, OutputError
from insar_denoise.inference import denoise_dataset
from insar_denoise.io import write_output
from insar_denoise.io.layouts import load_inputs
from insar_denoise.io.licsbas import write_licsbas
from insar_denoise.io.mintpy import write_mintpy
from insar_denoise.io.writers import check_folder, check_target, remove_stale_partials
from insar_denoise.reference import apply_reference, resolve_reference

log = logging.getLogger(__name__)

#: keep the result in memory (instead of recomputing it per output) below this size
PERSIST_LIMIT_BYTES = 2 * 1024**3


@dataclass
class RunResult:
    """What a run wrote and how long it took."""

    outputs: dict[str, Path] = field(default_factory=dict)
    layout: str = "stack"
    n_dates: int = 0
    shape: tuple[int, int] = (0, 0)
    wall_s: float = 0.0
    attrs: dict[str, Any] = field(default_factory=dict)
    warnings: list[Any] = field(default_factory=list)
    reference: str = ""
    #: ``with_data``, ``kept``, ``below_min_valid_dates`` pixel counts and ``min_valid_dates``
    pixels: dict[str, int] = field(default_factory=dict)
    #: ``raw`` / ``output`` cumulative: (p1, p99) in mm (output: when held in memory)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


RASTER_SUFFIXES = (".tif", ".tiff", ".nc", ".nc4", ".zarr")
H5_SUFFIXES = (".h5", ".hdf5", ".he5")


def check_formats(targets: dict[str, Path], layout: str) -> None:
    """Fail before any work when an output's extension cannot be written (``OutputError``).

    ``targets``: ``{"output"|"series"|"noise"|"uncertainty"|...: path}``; ``layout`` as
    :func:`insar_denoise.io.layouts.detect_layout` (``.h5`` needs ``mintpy``/``licsbas``).
    """
    for kind in ("output", "series", "noise", "uncertainty"):
        path = targets.get(kind)
        if path is None:
            continue
        suffix = path.suffix.lower()
        if kind in ("series", "noise") and suffix in H5_SUFFIXES:
            if layout not in ("mintpy", "licsbas"):
                raise OutputError(
                    f"{path}: .h5 output needs a MintPy or LiCSBAS input; use .tif or .nc"
                )
        elif suffix not in RASTER_SUFFIXES:
            raise OutputError(f"{path}: unknown output format {suffix!r}; use .tif, .nc or .zarr")


def make_parents(paths: Any) -> None:
    """Create the missing folder of each output (its parent exists: see ``check_target``)."""
    for path in paths:
        Path(path).parent.mkdir(exist_ok=True)


def _write_series(
    da: xr.DataArray, path: Path, layout: str, template: xr.Dataset, overwrite: bool, tags: dict
) -> Path:
    """Write a (time, y, x) series; ``.h5`` goes back to the input's MintPy/LiCSBAS layout."""
    if path.suffix.lower() in (".h5", ".hdf5", ".he5"):
        if layout == "mintpy":
            return write_mintpy(
                da.to_dataset(name="displacement").assign_attrs(template.attrs),
                path,
                overwrite=overwrite,
            )
        if layout == "licsbas":
            return write_licsbas(
                da.to_dataset(name="displacement").assign_attrs(template.attrs),
                path,
                overwrite=overwrite,
            )
        raise OutputError(f"{path}: .h5 output needs a MintPy or LiCSBAS input; use .tif or .nc")
    return write_output(da, path, overwrite=overwrite, tags=tags)


def run_pipeline(
    inputs: Sequence[str | Path] | str | Path,
    output: str | Path,
    *,
    dem: str | Path | None = None,
    series: str | Path | None = None,
    noise: str | Path | None = None,
    quicklook: str | Path | None = None,
    model: Any = None,
    method: str = "model",
    tile: int | None = None,
    overlap: int | None = None,
    window: int | None = None,
    stride: int = 1,
    device: str = "auto",
    batch_size: int | None = None,
    units: str | None = None,
    wavelength_mm: float | None = None,
    variable: str | None = None,
    pairs_pattern: str | None = None,
    cog: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    report: str | Path | None = None,
    uncertainty: str | Path | None = None,
    detection: str | Path | None = None,
    deramp: bool = False,
    ref_yx: tuple[int, int] | None = None,
    ref_lalo: tuple[float, float] | None = None,
    ref_area: tuple[int, int, int, int] | None = None,
    min_valid_dates: int | None = None,
) -> RunResult:
    """Denoise one frame and write its outputs.

    ``output`` ``.tif``: band 1 = cumulative deformation (mm, first to last date);
    ``.nc``/``.zarr``: the whole result (cumulative, deformation series, removed noise).
    ``series`` / ``noise``: the denoised series / what was removed (``.tif``, ``.nc``, or
    ``.h5`` back in the input's MintPy/LiCSBAS layout). All targets are checked before any
    work starts; each file is written under a temporary name and renamed when complete.
    ``report``: folder of a QC report (:func:`insar_denoise.trust.qc.write_qc_report`);
    ``uncertainty``: GeoTIFF of the 1-sigma uncertainty (mm) of the cumulative map (model
    method, :func:`insar_denoise.trust.uncertainty.predict_with_uncertainty`). The
    out-of-distribution checks (:func:`insar_denoise.trust.qc.qc_checks`) run on every call;
    their findings are raised as ``OutOfDistributionWarning`` and listed in ``warnings``.
    ``stride``: dates between window starts (1: every window; ``window - 1``: each date pair
    seen once, about ``window - 1`` times faster on long stacks).
    ``ref_yx`` / ``ref_lalo`` / ``ref_area``: the spatial reference of the outputs
    (:func:`insar_denoise.reference.resolve_reference`; default: the input's own, else the
    median of the valid area). ``min_valid_dates``: dates a pixel must be valid on to be kept
    (:mod:`insar_denoise.inference.masks`).
    """
    start = time.perf_counter()
    targets = {"output": output, "series": series, "noise": noise, "quicklook": quicklook}
    if uncertainty is not None:
        if method != "model":
            raise ConfigError("--uncertainty needs --method model")
        targets["uncertainty"] = uncertainty
    if detection is not None:
        if method != "model":
            raise ConfigError("--detection needs --method model")
        targets["detection"] = detection
    targets = {
        k: check_target(v, overwrite, create_parent=True)
        for k, v in targets.items()
        if v is not None
    }
    if len({p.resolve() for p in targets.values()}) != len(targets):
        raise OutputError(f"{output}: two outputs name the same file")
    for path in targets.values():
        remove_stale_partials(path)  # a killed earlier run's; frees the space before the work
    if report is not None:
        from insar_denoise.trust.qc import check_report_dir

        check_folder(report)
        check_report_dir(report, overwrite)
    ds, layout = load_inputs(
        inputs,
        dem=dem,
        units=units,
        wavelength_mm=wavelength_mm,
        variable=variable,
        pairs_pattern=pairs_pattern,
    )
    check_formats(targets, layout)
    ref = resolve_reference(ds, ref_yx=ref_yx, ref_lalo=ref_lalo, ref_area=ref_area)
    from insar_denoise.trust import qc

    metadata = qc.model_metadata(model, method)
    found = qc.qc_checks(ds, metadata)
    result = denoise_dataset(
        ds,
        model,
        tile=tile,
        overlap=overlap,
        window=window,
        stride=stride,
        device=device,
        batch_size=batch_size,
        method=method,
        progress=progress,
        deramp=deramp,
        min_valid_dates=min_valid_dates,
        return_noise=noise is not None
        or quicklook is not None
        or report is not None
        or targets["output"].suffix in (".nc", ".zarr"),
    )
    qc.emit_warnings(found)  # after denoise_dataset's own validation, before the work
    if detection is not None and "detection" not in result:
        raise ConfigError("--detection needs a whole-stack model (this one has no detection map)")
    nbytes = result["deformation"].size * 4 * (1 + ("noise" in result))
    in_memory = nbytes < PERSIST_LIMIT_BYTES
    if in_memory:  # written, plotted and summarised without recomputing
        result = result.persist()
    estimate = result[
        "cumulative_deformation"
    ]  # the uncertainty is calibrated on the unreferenced map
    result = apply_reference(result, ref)
    tags = {
        k.removeprefix("insar_denoise_"): v
        for k, v in result.attrs.items()
        if k.startswith("insar_denoise_")
    }
    written: dict[str, Path] = {}
    make_parents(targets.values())
    out = targets["output"]
    if out.suffix.lower() in (".tif", ".tiff"):
        written["output"] = write_output(
            result["cumulative_deformation"], out, overwrite=overwrite, cog=cog, tags=tags
        )
    else:
        written["output"] = write_output(result, out, overwrite=overwrite, tags=tags)
    if series is not None:
        written["series"] = _write_series(
            result["deformation"], targets["series"], layout, ds, overwrite, tags
        )
    if noise is not None:
        written["noise"] = _write_series(
            result["noise"], targets["noise"], layout, ds, overwrite, tags
        )
    if quicklook is not None:
        written["quicklook"] = write_quicklook(ds, result, targets["quicklook"], overwrite)
    if report is not None:
        paths = qc.write_qc_report(ds, result, report, metadata, overwrite, warnings_=found)
        written["report"] = paths["report"]
    if uncertainty is not None:
        from insar_denoise.trust.uncertainty import write_uncertainty

        written["uncertainty"] = write_uncertainty(
            ds,
            model,
            targets["uncertainty"],
            method=method,
            overwrite=overwrite,
            tags=tags,
            estimate=estimate,
            result=result,
            tile=tile,
            overlap=overlap,
            stride=stride,
            device=device,
            batch_size=batch_size,
        )
    if detection is not None:
        det = result["detection"].assign_attrs(units="1")
        det_tags = {**tags, "DETECTION": det.attrs.get("long_name", "")}
        written["detection"] = write_output(
            det, targets["detection"], overwrite=overwrite, tags=det_tags
        )
    from insar_denoise.inference.masks import pixel_counts
    from insar_denoise.plots import raw_cumulative, robust_range

    need = int(result.attrs["insar_denoise_min_valid_dates"])
    pixels = pixel_counts(ds["displacement"].transpose("time", "y", "x").data, None, need)
    ranges = {"raw": robust_range(raw_cumulative(ds, ref).values)}
    if in_memory:
        ranges["output"] = robust_range(result["cumulative_deformation"].values)
    return RunResult(
        outputs=written,
        layout=layout,
        n_dates=int(ds.sizes["time"]),
        shape=(int(ds.sizes["y"]), int(ds.sizes["x"])),
        wall_s=time.perf_counter() - start,
        attrs=dict(result.attrs),
        warnings=found,
        reference=ref.describe(),
        pixels={**pixels, "min_valid_dates": need},
        ranges=ranges,
    )


def write_quicklook(ds: xr.Dataset, result: xr.Dataset, path: str | Path, overwrite: bool) -> Path:
    """Raw, output, classical (best) and removed cumulative maps, uncertainty and detection
    when present, each with its own robust colour bar, the reference marked (PNG)."""
    from insar_denoise.plots import quicklook, result_panels
    from insar_denoise.reference import reference_from_attrs

    ref = reference_from_attrs(result.attrs)
    panels, step = result_panels(ds, result, ref)
    dates = f"{str(ds.time.values[0])[:10]} → {str(ds.time.values[-1])[:10]}"
    where = result.attrs.get("insar_denoise_reference", "input as is")
    return quicklook(
        panels,
        path,
        title=f"insar-denoise, LOS displacement {dates}; reference: {where}",
        overwrite=overwrite,
        reference=ref,
        step=step,
    )
