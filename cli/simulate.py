"""``insar-denoise simulate``: write a synthetic, georeferenced displacement stack with its truth.

Output folder: one GeoTIFF per date ``disp_YYYYMMDD.tif`` (mm LOS, relative to the first
date, NaN in decorrelation holes), ``dem.tif`` (m), ``truth_cumulative.tif`` (mm, last minus
first date) and ``truth_series.tif`` (one band per date, band descriptions = dates). Every
file carries the simulation config (JSON), seed, source and amplitude as tags.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from insar_denoise.errors import ConfigError


@click.command("simulate")
@click.option(
    "-o",
    "--output",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output folder (created if missing).",
)
@click.option("--size", default=512, show_default=True, help="Scene side (pixels).")
@click.option("--dates", "n_dates", default=24, show_default=True, help="Number of dates.")
@click.option("--spacing", default=90.0, show_default=True, help="Pixel spacing (m).")
@click.option("--seed", default=0, show_default=True, help="Random seed.")
@click.option(
    "--source",
    type=click.Choice(["okada", "mogi", "none"]),
    help="Force the deformation source (default: drawn from the training mix).",
)
@click.option("--amplitude", "amplitude_mm", type=float, help="Max |LOS| of the truth (mm).")
@click.option("--start-date", default="2020-01-01", show_default=True, help="First date.")
@click.option("--overwrite", is_flag=True, help="Replace existing files in the folder.")
def simulate(
    out_dir: str,
    size: int,
    n_dates: int,
    spacing: float,
    seed: int,
    source: str | None,
    amplitude_mm: float | None,
    start_date: str,
    overwrite: bool,
) -> None:
    """Write a synthetic displacement stack (mm LOS) with its ground truth.

    One GeoTIFF per date (disp_YYYYMMDD.tif, 12 days apart, UTM 16N), dem.tif,
    truth_cumulative.tif and truth_series.tif (one band per date).
    """
    from insar_denoise.io.scene import check_scene_targets, write_scene
    from insar_denoise.synth import SimConfig, simulate_scene

    config = SimConfig(size=size, n_dates=n_dates, pixel_spacing_m=spacing)
    step = np.timedelta64(int(round(config.interval_days)), "D")
    try:
        dates = np.datetime64(start_date, "D") + step * np.arange(n_dates)
    except ValueError as exc:
        raise ConfigError(f"--start-date {start_date!r}: not an ISO date (YYYY-MM-DD)") from exc
    targets = check_scene_targets(Path(out_dir), dates, overwrite)
    scene = simulate_scene(
        config, seed, source=source, amplitude_mm=amplitude_mm, start_date=start_date
    )

    stderr = click.get_text_stream("stderr")
    with click.progressbar(length=len(targets), label="writing", file=stderr) as bar:
        write_scene(scene, out_dir, overwrite=overwrite, on_written=lambda _: bar.update(1))
    out = out_dir
    click.echo(
        f"wrote {len(targets)} files to {out}: {n_dates} dates of {size}x{size} px "
        f"at {spacing:g} m, source {scene['source']} ({scene['history']}), "
        f"amplitude {scene['amplitude_mm']:.3g} mm"
    )
