"""``insar-denoise info``: describe a stack (dates, grid, units, NaN fraction, DEM cover)."""

from __future__ import annotations

import json

import click

from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM
from insar_denoise.methods import METHODS


def _format(info: dict) -> str:
    """Human-readable text of a ``stack_info`` dict."""
    shape = info["shape"]
    spacing = info["pixel_spacing"]
    lines = [
        f"layout:         {info['layout']}",
        f"files:          {len(info['source_files'])} ({info['source_files'][0]}"
        + (", ...)" if len(info["source_files"]) > 1 else ")"),
        f"dates:          {info['n_dates']} ({info['dates'][0]} .. {info['dates'][-1]})",
        f"grid:           {shape['y']} rows x {shape['x']} columns",
        f"crs:            {info['crs']}",
        f"pixel spacing:  {spacing[0]:.6g} x {spacing[1]:.6g} (CRS units)"
        + (
            f" = {info['pixel_spacing_m'][0]:.1f} m x {info['pixel_spacing_m'][1]:.1f} m"
            if info["crs_is_geographic"]
            else ""
        ),
        "bounds:         " + ", ".join(f"{b:.10g}" for b in info["bounds"]),
        f"units:          {info['units']} (input {info['input_units']}, "
        f"from {info['input_units_from']}); {info['sign_convention']}",
        f"memory:         {info['memory']} if loaded",
        "wavelength:     "
        + (
            f"{info['wavelength_mm']:.9g} mm (converts the rad input)"
            if info.get("wavelength_mm")
            else f"not used (input in {info['input_units']})"
        ),
        f"reference:      {info['reference']} (run's default; --ref-yx/--ref-lalo/--ref-area)",
    ]
    dem = info["dem"]
    if dem is None:
        lines.append("dem:            none given")
    else:
        lines.append(
            f"dem:            covers the stack; {dem['min_m']} .. {dem['max_m']} m, "
            f"NaN fraction {dem['nan_fraction']:.4f}"
        )
    lines.append("NaN fraction per date:")
    lines += [f"  {date}  {frac:.4f}" for date, frac in info["nan_fraction"].items()]
    checks = info.get("qc_warnings")
    if checks is not None:
        lines.append(f"run would warn ({info['qc_model']}):" + ("" if checks else " nothing"))
        lines += [f"  [{w['code']}] {w['message']}" for w in checks]
    return "\n".join(lines)


@click.command("info")
@click.argument("stack", nargs=-1, required=True)
@click.option("--dem", type=click.Path(dir_okay=False), help="DEM (any GDAL format and CRS).")
@click.option("--units", help="Units of the input: mm, cm, m or rad (beats the file's own).")
@click.option(
    "--wavelength",
    "wavelength_mm",
    type=float,
    default=None,
    help=f"Wavelength (mm) of rad inputs [default: tags, else {SENTINEL1_WAVELENGTH_MM}].",
)
@click.option("--variable", help="NetCDF/Zarr variable (default: the only 3-D one).")
@click.option("--pairs", "pairs_pattern", help="Interferogram name pattern, e.g. '{ref}_{sec}'.")
@click.option(
    "--model",
    default=None,
    help="Model whose out-of-distribution checks to run (default: shipped).",
)
@click.option(
    "--method",
    type=click.Choice(list(METHODS)),
    default="model",
    show_default=True,
    help="As for run: the classical methods skip the model's window check.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(
    stack: tuple[str, ...],
    dem: str | None,
    units: str | None,
    wavelength_mm: float | None,
    variable: str | None,
    pairs_pattern: str | None,
    model: str | None,
    method: str,
    as_json: bool,
) -> None:
    """Describe STACK: GeoTIFFs (files or globs), a multi-band GeoTIFF, NetCDF/Zarr,
    unwrapped interferograms, or a MintPy / LiCSBAS .h5; list the warnings run would give."""
    from insar_denoise.io import stack_info
    from insar_denoise.io.layouts import load_inputs

    ds, layout = load_inputs(
        list(stack),
        dem=dem,
        units=units,
        wavelength_mm=wavelength_mm,
        variable=variable,
        pairs_pattern=pairs_pattern,
        require_dem=False,
    )
    from dataclasses import asdict

    from insar_denoise.reference import resolve_reference
    from insar_denoise.trust import qc

    checks = qc.qc_checks(ds, qc.model_metadata(model, method))
    summary = {
        "reference": resolve_reference(ds).describe(),
        "layout": layout,
        **stack_info(ds),
        "wavelength_mm": ds.attrs.get("wavelength_mm"),
        "qc_model": model or "default" if method == "model" else f"method {method}",
        "qc_warnings": [asdict(w) for w in checks],
    }
    click.echo(json.dumps(summary, indent=2) if as_json else _format(summary))
