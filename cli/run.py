"""``insar-denoise run``: denoise one stack and write georeferenced results."""

from __future__ import annotations

import click

from insar_denoise.methods import METHODS


@click.command("run")
@click.argument("stack", nargs=-1, required=True)
@click.option(
    "--dem", type=click.Path(), help="DEM in metres (GDAL raster, or MintPy geometry .h5)."
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False),
    help=".tif: band 1 = cumulative deformation (mm); .nc/.zarr: the whole result.",
)
@click.option(
    "--series",
    type=click.Path(),
    help="Denoised series: .tif, .nc, or .h5 (MintPy/LiCSBAS).",
)
@click.option("--noise", "noise_path", type=click.Path(), help="What was removed, per date (mm).")
@click.option(
    "--quicklook",
    type=click.Path(),
    help="PNG: raw, output, classical (best) and removed cumulative maps, reference marked.",
)
@click.option("--model", default=None, help="Model name or TorchScript file (default: shipped).")
@click.option(
    "--method",
    type=click.Choice(list(METHODS)),
    default="model",
    show_default=True,
    help="The network, or a classical correction (see README).",
)
@click.option("--tile", type=int, help="Tile side in pixels (default from the model).")
@click.option("--overlap", type=int, help="Tile overlap in pixels (default from the model).")
@click.option("--window", type=int, help="Dates per window (must match the model).")
@click.option(
    "--stride",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Dates between window starts; window-1 (8) is ~8x faster on long stacks.",
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--batch-size", type=int, help="Tiles per model call (default: fitted to memory).")
@click.option("--units", help="Input units: mm, cm, m or rad (overrides the files).")
@click.option(
    "--wavelength", type=float, help="Wavelength (mm) of rad inputs (default Sentinel-1)."
)
@click.option("--variable", help="NetCDF/Zarr variable name.")
@click.option("--pairs", "pairs_pattern", help="Interferogram name pattern, e.g. '{ref}_{sec}'.")
@click.option("--cog", is_flag=True, help="Write the cumulative map as a Cloud-Optimized GeoTIFF.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or summary.")
@click.option(
    "--report",
    type=click.Path(file_okay=False),
    help="Folder of a QC report: report.md, qc.json, figures, out-of-distribution warnings.",
)
@click.option(
    "--uncertainty",
    type=click.Path(dir_okay=False),
    help="GeoTIFF of the calibrated uncertainty of the cumulative map (model), mm: band 1 "
    "1-sigma (68 % half-width), band 2 the 95 % half-width.",
)
@click.option(
    "--detection",
    "detection_path",
    type=click.Path(dir_okay=False),
    help="GeoTIFF of the detection probability (whole-stack models): the chance that the "
    "cumulative deformation exceeds the model's detect_mm there.",
)
@click.option(
    "--deramp",
    is_flag=True,
    help="Remove each date's least-squares plane first (orbital ramps). Off by default: it "
    "also deletes deformation broader than the scene (bowls, inflation, interseismic).",
)
@click.option(
    "--fix-unwrapping/--no-fix-unwrapping",
    default=True,
    show_default=True,
    help="Remove unwrapping errors of single dates first (regions offset by whole half "
    "wavelengths on one date only; stacks of 12 dates or more, whole-stack models). The "
    "removed jumps are listed in the output's insar_denoise_unwrapping attribute.",
)
@click.option(
    "--denoise-fine-scales",
    is_flag=True,
    help="Inside the detected areas, take out each date's fine scales (under a 4 px "
    "Gaussian) where the stack's own do not stand above their noise: cleaner maps of broad "
    "sources; the peak of a compact source can lose 5-7 %. Off by default.",
)
@click.option(
    "--ref-yx",
    nargs=2,
    type=int,
    metavar="ROW COL",
    help="Reference pixel (0-based row, column): outputs are relative to it.",
)
@click.option(
    "--ref-lalo",
    nargs=2,
    type=float,
    metavar="LAT LON",
    help="Reference point in WGS 84 degrees (in the stack's CRS when it is geographic).",
)
@click.option(
    "--ref-area",
    nargs=4,
    type=int,
    metavar="ROW0 ROW1 COL0 COL1",
    help="Reference area (end excluded): outputs relative to its median. Default reference: "
    "the input's own (MintPy REF_Y/REF_X, LiCSBAS refarea), else the valid-area median.",
)
@click.option(
    "--min-valid-dates",
    type=int,
    help="Keep a pixel valid on at least N dates (default: half the dates, at least the "
    "model window); its missing dates stay NaN in the series.",
)
def run(
    stack,
    dem,
    output,
    series,
    noise_path,
    quicklook,
    overwrite,
    quiet,
    report,
    uncertainty,
    detection_path,
    wavelength,
    **options,
):
    """Denoise STACK (GeoTIFFs per date, a multi-band GeoTIFF, NetCDF/Zarr, interferograms,
    or a MintPy/LiCSBAS .h5) and write the cumulative deformation in mm (LOS)."""
    from insar_denoise.messages import input_label, labelled_warnings
    from insar_denoise.options import RunOptions
    from insar_denoise.pipeline import run_pipeline

    # the other click options are RunOptions fields by name; empty ref_* tuples are unset
    options = {k: (v or None) if k.startswith("ref_") else v for k, v in options.items()}
    options = RunOptions(progress=not quiet, wavelength_mm=wavelength, **options)
    with labelled_warnings(input_label(list(stack)), always=False):
        res = run_pipeline(
            list(stack),
            output,
            dem=dem,
            series=series,
            noise=noise_path,
            quicklook=quicklook,
            report=report,
            uncertainty=uncertainty,
            detection=detection_path,
            options=options,
            overwrite=overwrite,
        )
    if not quiet:
        h, w = res.shape
        click.echo(
            f"{res.layout}: {res.n_dates} dates of {h}x{w} pixels, method {options.method}, "
            f"{res.wall_s:.1f} s"
        )
        for kind, path in res.outputs.items():
            click.echo(f"  {kind}: {path}")
        for line in summary_lines(res, h * w):
            click.echo(line)


def summary_lines(res, n_pixels: int) -> list[str]:
    """Reference, kept pixels and p1-p99 ranges of a run, for the printed summary."""
    px, n_dates = res.pixels, res.n_dates
    lines = [f"reference: {res.reference}"]
    if px:
        lines.append(
            f"pixels kept: {px['kept']} of {px['with_data']} with data "
            f"({px['kept'] / max(1, n_pixels):.1%} of the grid), valid on >= "
            f"{px['min_valid_dates']} of {n_dates} dates; {px['below_min_valid_dates']} "
            f"pixels valid on < {px['min_valid_dates']} dates are NaN"
        )
    for name in ("raw", "output"):
        if name in res.ranges:
            lo, hi = res.ranges[name]
            lines.append(f"{name} cumulative p1..p99: {lo:.2f} .. {hi:.2f} mm")
    return lines
