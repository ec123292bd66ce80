"""``insar-denoise evaluate``: model versus baselines on the simulated benchmark or a stack."""

from __future__ import annotations

import click

from insar_denoise.errors import ConfigError


@click.command("evaluate")
@click.option(
    "--model",
    default="default",
    show_default=True,
    help="Model name or TorchScript file; 'none' evaluates the baselines only.",
)
@click.option(
    "--n",
    "n_per_amplitude",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="Benchmark scenes per amplitude level.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Benchmark seed (same seed: identical metrics).",
)
@click.option(
    "--size",
    type=click.IntRange(min=16),
    default=64,
    show_default=True,
    help="Scene side in pixels.",
)
@click.option(
    "--split",
    type=click.Choice(["in", "shifted", "both"]),
    default="in",
    show_default=True,
    help="Scene distribution: 'in' = the training distribution; 'shifted' = generated "
    "differently (other turbulence, strong nonlinear stratification, sources outside the "
    "training depths, more holes and unwrapping errors, rougher/higher DEMs); 'both' = the "
    "two side by side.",
)
@click.option(
    "--n-tune",
    type=click.IntRange(min=1),
    help="Scenes per amplitude for tuning the filter sigma (default n/4, at least 6).",
)
@click.option("--window", type=int, help="Dates per scene without a model (default 9).")
@click.option(
    "--stack",
    multiple=True,
    help="Evaluate this stack instead (files or globs; repeatable). Needs --truth.",
)
@click.option("--dem", type=click.Path(), help="DEM of --stack (m).")
@click.option(
    "--truth",
    type=click.Path(exists=True, dir_okay=False),
    help="True cumulative deformation of --stack, last minus first date (mm, GeoTIFF).",
)
@click.option(
    "--sigma",
    type=float,
    default=2.0,
    show_default=True,
    help="Gaussian sigma (px) of filter/best in --stack mode.",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Report folder: report.md, metrics.json and PNG figures.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing report in the folder.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def evaluate(
    model,
    n_per_amplitude,
    seed,
    size,
    split,
    n_tune,
    window,
    stack,
    dem,
    truth,
    sigma,
    device,
    output,
    overwrite,
    quiet,
) -> None:
    """Compare the model with the all-zero map, raw and classical corrections.

    Without --stack: a fixed-seed simulated benchmark stratified by amplitude, noise level,
    source and DEM. With --stack/--dem/--truth: the same metrics on a stack whose cumulative
    deformation is known (e.g. written by `insar-denoise simulate`).
    """
    from insar_denoise.models import load_model

    from insar_denoise.evaluation import evaluate_stack, results_table, run_benchmark, write_report
    from insar_denoise.evaluation.report import prepare_dir

    if bool(stack) != bool(truth):
        raise ConfigError("--stack and --truth go together (a stack and its true cumulative map)")
    prepare_dir(output, overwrite)
    loaded = None if model == "none" else load_model(model, device=device)
    if stack:
        from insar_denoise.io import open_dem
        from insar_denoise.io.layouts import load_inputs

        ds, _ = load_inputs(list(stack), dem=dem)
        truth_map = open_dem(truth, ds)
        result = evaluate_stack(ds, truth_map, loaded, sigma_px=sigma, device=device)
    else:
        try:
            result = run_benchmark(
                loaded,
                n_per_amplitude=n_per_amplitude,
                seed=seed,
                size=size,
                window=window,
                split=split,
                n_tune=n_tune,
            )
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    paths = write_report(result, output, overwrite=overwrite)
    if not quiet:
        click.echo(results_table(result.metrics))
        for path in paths.values():
            click.echo(f"  wrote {path}")
