"""One frame end to end: open inputs (any supported layout), denoise, write outputs.

``insar-denoise run``, ``insar-denoise batch`` and the demo all call :func:`run_pipeline`,
which reads files, calls :func:`insar_denoise.product.denoise` (as the xarray accessor
does) and writes files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xarray as xr

from insar_denoise.errors import ConfigError, OutputError
from insar_denoise.io import write_output
from insar_denoise.io.layouts import load_inputs
from insar_denoise.io.licsbas import write_licsbas
from insar_denoise.io.mintpy import write_mintpy
from insar_denoise.io.writers import check_folder, check_target, remove_stale_partials
from insar_denoise.options import RunOptions
from insar_denoise.product import check_options, denoise, resolve_model

if TYPE_CHECKING:
    from insar_denoise.models.registry import ModelLike

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


#: run options that are file paths (the others are :class:`RunOptions`)
PATH_KEYS = ("series", "noise", "quicklook", "report", "uncertainty", "detection")


def run_pipeline(
    inputs: Sequence[str | Path] | str | Path,
    output: str | Path,
    *,
    dem: str | Path | None = None,
    series: str | Path | None = None,
    noise: str | Path | None = None,
    quicklook: str | Path | None = None,
    report: str | Path | None = None,
    uncertainty: str | Path | None = None,
    detection: str | Path | None = None,
    model: ModelLike = None,
    options: RunOptions | None = None,
    overwrite: bool = False,
    **option_kwargs: Any,
) -> RunResult:
    """Denoise one frame and write its outputs: read, :func:`insar_denoise.product.denoise`,
    write.

    ``output`` ``.tif``: band 1 = cumulative deformation (mm, first to last date);
    ``.nc``/``.zarr``: the whole result (cumulative, deformation series, removed noise).
    ``series`` / ``noise``: the denoised series / what was removed (``.tif``, ``.nc``, or
    ``.h5`` back in the input's MintPy/LiCSBAS layout). ``report``: folder of a QC report
    (:func:`insar_denoise.trust.write_qc_report`); ``uncertainty``: GeoTIFF of the 1-sigma
    and 95 % half-width (mm) of the cumulative map; ``detection``: GeoTIFF of the detection
    probability (whole-stack models). All targets are checked before any work starts; each
    file is written under a temporary name and renamed when complete. The
    out-of-distribution checks run on every call; their findings are raised as
    ``OutOfDistributionWarning`` and listed in ``warnings``.

    ``model``: a :class:`~insar_denoise.models.LoadedModel` (or a name/path; default
    ``options.model``). ``options``: :class:`~insar_denoise.options.RunOptions`, or its
    fields as keyword arguments (``tile=``, ``stride=``, ``ref_yx=``, ``min_valid_dates=``,
    ...; not both).
    """
    start = time.perf_counter()
    options = _run_options(options, option_kwargs, uncertainty, detection)
    paths = {"output": output, "series": series, "noise": noise, "quicklook": quicklook}
    paths.update(uncertainty=uncertainty, detection=detection)
    targets = check_targets(paths, report, overwrite)
    ds, layout = load_inputs(
        inputs,
        dem=dem,
        units=options.units,
        wavelength_mm=options.wavelength_mm,
        variable=options.variable,
        pairs_pattern=options.pairs_pattern,
    )
    check_formats(targets, layout)
    wide = targets["output"].suffix in (".nc", ".zarr")
    options = options.with_(return_noise=bool(noise or quicklook or report or wide))
    loaded = resolve_model(model, options)  # loaded and hashed once for the whole run
    result = denoise(ds, loaded, options, persist_below=PERSIST_LIMIT_BYTES)
    written = write_products(ds, result, targets, layout, options, overwrite)
    if report is not None:
        from insar_denoise.trust import qc_findings, write_qc_report

        meta = None if loaded is None else loaded.metadata
        paths = write_qc_report(ds, result, report, meta, overwrite, qc_findings(result))
        written["report"] = paths["report"]
    return _summary(ds, result, layout, written, start)


def _run_options(
    options: RunOptions | None, kwargs: dict[str, Any], uncertainty: Any, detection: Any
) -> RunOptions:
    """``options`` or ``RunOptions(**kwargs)``, with ``uncertainty`` / ``detection`` on when
    their output is asked for; refused combinations raise ``ConfigError`` here."""
    if options is not None and kwargs:
        raise ConfigError(f"run_pipeline: pass options= or {next(iter(kwargs))}=, not both")
    options = options or RunOptions.from_kwargs("run_pipeline", **kwargs)
    options = options.with_(
        uncertainty=options.uncertainty or uncertainty is not None,
        detection=options.detection or detection is not None,
    )
    check_options(options)
    return options


def check_targets(
    paths: dict[str, str | Path | None], report: str | Path | None, overwrite: bool
) -> dict[str, Path]:
    """Checked output paths (``OutputError`` before any work); stale partials removed."""
    targets = {
        k: check_target(v, overwrite, create_parent=True) for k, v in paths.items() if v is not None
    }
    if len({p.resolve() for p in targets.values()}) != len(targets):
        raise OutputError(f"{paths['output']}: two outputs name the same file")
    for path in targets.values():
        remove_stale_partials(path)  # a killed earlier run's; frees the space before the work
    if report is not None:
        from insar_denoise.trust import check_report_dir

        check_folder(report)
        check_report_dir(report, overwrite)
    return targets


def write_products(
    ds: xr.Dataset,
    result: xr.Dataset,
    targets: dict[str, Path],
    layout: str,
    options: RunOptions,
    overwrite: bool,
) -> dict[str, Path]:
    """Write each asked output of ``result`` (see :func:`run_pipeline`); their paths."""
    tags = {
        k.removeprefix("insar_denoise_"): v
        for k, v in result.attrs.items()
        if k.startswith("insar_denoise_")
    }
    written: dict[str, Path] = {}
    make_parents(targets.values())
    out = targets["output"]
    if out.suffix.lower() in (".tif", ".tiff"):
        cum = result["cumulative_deformation"]
        written["output"] = write_output(cum, out, overwrite=overwrite, cog=options.cog, tags=tags)
    else:
        written["output"] = write_output(result, out, overwrite=overwrite, tags=tags)
    for kind, name in (("series", "deformation"), ("noise", "noise")):
        if kind in targets:
            written[kind] = _write_series(result[name], targets[kind], layout, ds, overwrite, tags)
    if "quicklook" in targets:
        written["quicklook"] = write_quicklook(ds, result, targets["quicklook"], overwrite)
    if "uncertainty" in targets:
        from insar_denoise.trust import write_uncertainty

        written["uncertainty"] = write_uncertainty(
            ds, result, targets["uncertainty"], overwrite=overwrite, tags=tags
        )
    if "detection" in targets:
        det = result["detection"].assign_attrs(units="1")
        det_tags = {**tags, "DETECTION": det.attrs.get("long_name", "")}
        written["detection"] = write_output(
            det, targets["detection"], overwrite=overwrite, tags=det_tags
        )
    return written


def _summary(
    ds: xr.Dataset, result: xr.Dataset, layout: str, written: dict[str, Path], start: float
) -> RunResult:
    """The :class:`RunResult` of a run: pixel counts, ranges, reference, warnings."""
    from insar_denoise.inference.masks import pixel_counts
    from insar_denoise.plots import raw_cumulative, robust_range
    from insar_denoise.reference import reference_from_attrs
    from insar_denoise.trust import qc_findings

    need = int(result.attrs["insar_denoise_min_valid_dates"])
    pixels = pixel_counts(ds["displacement"].transpose("time", "y", "x").data, None, need)
    ref = reference_from_attrs(result.attrs)
    ranges = {"raw": robust_range(raw_cumulative(ds, ref).values)}
    nbytes = result["deformation"].size * 4 * (1 + ("noise" in result))
    if nbytes < PERSIST_LIMIT_BYTES:  # held in memory by denoise
        ranges["output"] = robust_range(result["cumulative_deformation"].values)
    return RunResult(
        outputs=written,
        layout=layout,
        n_dates=int(ds.sizes["time"]),
        shape=(int(ds.sizes["y"]), int(ds.sizes["x"])),
        wall_s=time.perf_counter() - start,
        attrs=dict(result.attrs),
        warnings=qc_findings(result),
        reference=result.attrs.get("insar_denoise_reference", "input as is"),
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
