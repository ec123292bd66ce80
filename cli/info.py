"""``insar-denoise info``: describe a stack (dates, grid, units, NaN fraction, DEM cover)."""

from __future__ import annotations

import json

import click

from insar_denoise.io.units import SENTINEL1_WAVELENGTH_MM


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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def info(
    stack: tuple[str, ...],
    dem: str | None,
    units: str | None,
    wavelength_mm: float | None,
    variable: str | None,
    pairs_pattern: str | None,
    as_json: bool,
) -> None:
    """Describe STACK: GeoTIFFs (files or globs), a multi-band GeoTIFF, NetCDF/Zarr,
    unwrapped interferograms, or a MintPy / LiCSBAS .h5."""
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
    summary = {"layout": layout, **stack_info(ds)}
    click.echo(json.dumps(summary, indent=2) if as_json else _format(summary))
