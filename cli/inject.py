"""``insar-denoise inject``: injection test of detectability on the user's own stack."""

from __future__ import annotations

import click

from insar_denoise.errors import ConfigError
from insar_denoise.methods import METHODS

METHOD_CHOICES = list(METHODS)


def _amplitudes(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--amplitudes {text!r}: need comma-separated numbers in mm") from None
    if not values or min(values) <= 0:
        raise ConfigError(f"--amplitudes {text!r}: need positive amplitudes in mm")
    return values


@click.command("inject")
@click.argument("stack", nargs=-1, required=True)
@click.option("--dem", type=click.Path(), help="DEM in metres (GDAL raster, or MintPy .h5).")
@click.option(
    "-o", "--output", required=True, type=click.Path(file_okay=False), help="Report folder."
)
@click.option(
    "--amplitudes",
    default="1,2,3,5,10,20",
    show_default=True,
    help="Injected amplitudes, max |LOS| of the cumulative signal (mm), comma-separated.",
)
@click.option(
    "--n", type=click.IntRange(min=1), default=20, show_default=True, help="Sources per amplitude."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Places, sources, histories.")
@click.option("--model", default=None, help="Model name or TorchScript file (default: shipped).")
@click.option("--method", type=click.Choice(METHOD_CHOICES), default="model", show_default=True)
@click.option("--grid", type=click.IntRange(min=1), help="Tiles per side of the threshold map.")
@click.option(
    "--crop", type=click.IntRange(min=8), default=48, show_default=True, help="Crop side (px)."
)
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True
)
@click.option("--units", help="Input units: mm, cm, m or rad (overrides the files).")
@click.option("--wavelength", type=float, help="Wavelength (mm) of rad inputs.")
@click.option("--variable", help="NetCDF/Zarr variable name.")
@click.option("--pairs", "pairs_pattern", help="Interferogram name pattern, e.g. '{ref}_{sec}'.")
@click.option("--overwrite", is_flag=True, help="Replace an existing report.")
def inject(
    stack,
    dem,
    output,
    amplitudes,
    n,
    seed,
    model,
    method,
    grid,
    crop,
    device,
    units,
    wavelength,
    variable,
    pairs_pattern,
    overwrite,
):
    """Inject Okada and Mogi signals of known amplitude into STACK, denoise, and report how
    well they come back: correlation, amplitude error, detection threshold (also per tile)."""
    from insar_denoise.io.layouts import load_inputs
    from insar_denoise.trust.inject import run_injection, write_injection_report
    from insar_denoise.trust.qc import model_metadata, qc_checks

    amps = _amplitudes(amplitudes)
    ds, _ = load_inputs(
        list(stack),
        dem=dem,
        units=units,
        wavelength_mm=wavelength,
        variable=variable,
        pairs_pattern=pairs_pattern,
    )
    for item in qc_checks(ds, model_metadata(model, method)):
        click.echo(f"insar-denoise: warning: [{item.code}] {item.message}", err=True)
    extra = {"device": device} if method == "model" else {}
    result = run_injection(
        ds,
        model,
        amplitudes=amps,
        n=n,
        seed=seed,
        method=method,
        grid=grid,
        crop_px=crop,
        **extra,
    )
    paths = write_injection_report(result, output, overwrite=overwrite)
    thr = "not reached" if result.threshold_mm is None else f"{result.threshold_mm:g} mm"
    click.echo(f"detection threshold ({method}): {thr}")
    for row in result.per_amplitude:
        click.echo(
            f"  {row['amplitude_mm']:g} mm: median r {row['corr_median']:.2f}, detected "
            f"{row['detected_frac']:.0%}, median gain {row['gain_median']:.2f}"
        )
    if result.ideal:
        for name, row in result.ideal["per_source"].items():
            med = row["median_5sigma_mm"]
            five = "n/a" if med is None else f"{med:.2g} mm"
            thr = row.get("empirical_threshold_mm")
            emp = "not reached" if thr is None else f"{thr:g} mm"
            click.echo(
                f"  {name}: ideal observer: 5σ at {five} on this stack (empirical threshold {emp})"
            )
        check = result.ideal.get("model_check") or {}
        if check.get("z_rms") is not None:
            verdict = (
                "holds" if check["holds"] else "does not hold: the 5σ amplitudes are optimistic"
            )
            click.echo(
                f"  ideal observer's noise model: matched filters on the stack scatter "
                f"{check['z_rms']:.2f}x their modelled std over {check['n']} places ({verdict})"
            )
    click.echo(f"report: {paths['report']}")
