"""``insar-denoise evaluate``: model versus baselines on the simulated benchmarks or a stack."""

from __future__ import annotations

import json
from pathlib import Path

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
    "--suite",
    type=click.Choice(["v2", "v1"]),
    default="v2",
    show_default=True,
    help="v2: whole stacks (T = 9-72 dates, 192 px) scored against the ideal observer's "
    "SNR; v1: the 9-date window benchmark stratified by amplitude.",
)
@click.option(
    "--n",
    "n_scenes",
    type=click.IntRange(min=1),
    help="v2: scenes per split (default 84, about 27 min on 2 cores for both splits); "
    "v1: scenes per amplitude level (default 200).",
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
    help="Scene side in pixels (default v2: 192, v1: 64).",
)
@click.option(
    "--split",
    type=click.Choice(["in", "shifted", "both"]),
    help="Scene distribution: 'in' = the training distribution; 'shifted' = generated "
    "differently (other turbulence, strong nonlinear stratification, sources outside the "
    "training depths, more holes and unwrapping errors, rougher/higher DEMs); 'both' = the "
    "two side by side (default v2: both, v1: in).",
)
@click.option(
    "--n-tune",
    type=click.IntRange(min=1),
    help="Scenes for tuning the sigma of the Gaussian filter (v2: per split, default n/4, "
    "at least 7; v1: per amplitude, default n/4, at least 6).",
)
@click.option("--window", type=int, help="v1: dates per scene without a model (default 9).")
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
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="v2: processes computing the ideal observer's SNRs beside the main one (0: none).",
)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(file_okay=False),
    help="Report folder: report.md, metrics.json and PNG figures.",
)
@click.option(
    "--baseline",
    help="v2: a second model scored on the same scenes (e.g. window_v1, the previous release).",
)
@click.option(
    "--snr-from",
    type=click.Path(dir_okay=False),
    help="v2: reuse the ideal observer's SNRs of an earlier metrics.json (same seed and size); "
    "the observer is most of the run time.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing report in the folder.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def evaluate(
    model,
    suite,
    n_scenes,
    seed,
    size,
    split,
    n_tune,
    window,
    stack,
    dem,
    truth,
    sigma,
    workers,
    device,
    output,
    baseline,
    snr_from,
    overwrite,
    quiet,
) -> None:
    """Compare the model with the all-zero map, raw and classical corrections.

    Without --stack: a fixed-seed simulated benchmark; v2 (default): whole stacks binned by
    the ideal observer's SNR, per T and source type; v1: 9-date windows stratified by
    amplitude, noise level, source and DEM. With --stack/--dem/--truth: the v1 metrics on a
    stack whose cumulative deformation is known (e.g. written by `insar-denoise simulate`).
    """
    from insar_denoise.evaluation import results_table
    from insar_denoise.evaluation.report_common import prepare_dir
    from insar_denoise.models import load_model

    if bool(stack) != bool(truth):
        raise ConfigError("--stack and --truth go together (a stack and its true cumulative map)")
    if suite == "v2" and window is not None and not stack:
        raise ConfigError("--window applies to --suite v1 (v2 scenes have 9 to 72 dates)")
    cache = _read_snr_cache(snr_from) if snr_from else None  # before anything is written
    prepare_dir(output, overwrite)
    loaded = None if model == "none" else load_model(model, device=device)
    run = dict(n=n_scenes, seed=seed, size=size, split=split, n_tune=n_tune, snr_cache=cache)
    if stack:
        result = _score_stack(stack, dem, truth, loaded, sigma, device)
    elif suite == "v2":
        base = None if baseline is None else load_model(baseline, device=device)
        result = _run_v2(loaded, base, run, device=device, quiet=quiet, workers=workers)
    else:
        result = _run_v1(loaded, run, window)
    paths = _write(result, output, overwrite)
    if not quiet:
        click.echo(results_table(result.metrics))
        for path in paths.values():
            click.echo(f"  wrote {path}")


def _read_snr_cache(path: str) -> dict:
    """The SNRs of an earlier v2 report; one-line error naming the file otherwise."""
    from insar_denoise.evaluation.referee import snr_cache

    try:
        return snr_cache(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: cannot reuse its SNRs: {exc}") from None


def _score_stack(stack, dem, truth, loaded, sigma, device):
    """The v1 metrics on a stack whose cumulative deformation is known."""
    from insar_denoise.evaluation import evaluate_stack
    from insar_denoise.io import open_dem
    from insar_denoise.io.layouts import load_inputs

    ds, _ = load_inputs(list(stack), dem=dem)
    truth_map = open_dem(truth, ds)
    return evaluate_stack(ds, truth_map, loaded, sigma_px=sigma, device=device)


def _run_v2(loaded, baseline, run: dict, *, device, quiet: bool, workers: int):
    """Benchmark v2 (the referee); a bad setting is a ``ConfigError``."""
    from insar_denoise.evaluation import run_referee
    from insar_denoise.evaluation.referee import DEFAULT_N, DEFAULT_SIZE

    try:
        return run_referee(
            loaded,
            n=run["n"] or DEFAULT_N,
            seed=run["seed"],
            size=run["size"] or DEFAULT_SIZE,
            split=run["split"] or "both",
            n_tune=run["n_tune"],
            device=device,
            progress=not quiet,
            workers=workers,
            baseline=baseline,
            snr_cache=run["snr_cache"],
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _run_v1(loaded, run: dict, window):
    """Benchmark v1 with trust's uncertainty scoring; a bad setting is a ``ConfigError``."""
    from insar_denoise.evaluation import run_benchmark
    from insar_denoise.trust.uncertainty import benchmark_uncertainty

    try:
        return run_benchmark(
            loaded,
            n_per_amplitude=run["n"] or 200,
            seed=run["seed"],
            size=run["size"] or 64,
            window=window,
            split=run["split"] or "in",
            n_tune=run["n_tune"],
            uncertainty=benchmark_uncertainty,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _write(result, output, overwrite: bool) -> dict:
    """The report of ``result`` (the referee's own for v2) into ``output``."""
    from insar_denoise.evaluation import write_report
    from insar_denoise.evaluation.referee_report import write_referee_report

    if result.metrics.get("kind") == "referee":
        return write_referee_report(result.metrics, output, overwrite=overwrite)
    return write_report(result, output, overwrite=overwrite)
