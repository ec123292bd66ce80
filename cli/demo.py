"""``insar-denoise demo``: the bundled default run, scored against its simulated truth."""

from __future__ import annotations

import click


@click.command("demo")
@click.option(
    "-o",
    "--output",
    "out_dir",
    default="demo_out",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Output folder.",
)
@click.option("--model", default=None, help="Model name or file (default: shipped model).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto")
@click.option("--overwrite", is_flag=True, help="Replace an existing demo folder's files.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def demo(out_dir: str, model: str | None, device: str, overwrite: bool, quiet: bool) -> None:
    """Simulate a realistic stack on a real DEM patch, denoise it with the shipped model,
    write GeoTIFFs and a quicklook, and print the error next to the raw and all-zero maps."""
    from insar_denoise.demo import run_demo, summary_lines

    result = run_demo(out_dir, model=model, overwrite=overwrite, progress=not quiet, device=device)
    for line in summary_lines(result):
        click.echo(line)
