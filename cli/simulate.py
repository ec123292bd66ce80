"""``insar-denoise simulate``: write a synthetic, georeferenced displacement stack with its truth.

Output folder: one GeoTIFF per date ``disp_YYYYMMDD.tif`` (mm LOS, relative to the first
date, NaN in decorrelation holes), ``dem.tif`` (m), ``truth_cumulative.tif`` (mm, last minus
first date) and ``truth_series.tif`` (one band per date, band descriptions = dates). Every
file carries the simulation config (JSON), seed, source and amplitude as tags.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import xarray as xr

from insar_denoise.errors import ConfigError, OutputError

#: Where the synthetic scene is placed: UTM zone 16N, upper-left corner (m).
SCENE_CRS = "EPSG:32616"
SCENE_ORIGIN_M = (745000.0, 4055000.0)


def scene_dataset(scene: dict) -> xr.Dataset:
    """Georeferenced Dataset (``displacement``, ``deformation``, ``cumulative``, ``dem``) of a
    :func:`~insar_denoise.synth.simulate_scene` result, placed at :data:`SCENE_ORIGIN_M`."""
    import rioxarray  # noqa: F401  (registers .rio)

    from insar_denoise.io.units import SIGN_CONVENTION

    n_t, height, width = scene["displacement"].shape
    spacing = scene["pixel_spacing_m"]
    x = SCENE_ORIGIN_M[0] + (np.arange(width) + 0.5) * spacing
    y = SCENE_ORIGIN_M[1] - (np.arange(height) + 0.5) * spacing
    coords = {"time": scene["dates"].astype("datetime64[ns]"), "y": y, "x": x}
    mm = {"units": "mm"}
    ds = xr.Dataset(
        {
            "displacement": (("time", "y", "x"), scene["displacement"], mm),
            "deformation": (("time", "y", "x"), scene["deformation"], mm),
            "cumulative": (("y", "x"), scene["cumulative"], mm),
            "dem": (("y", "x"), scene["dem"], {"units": "m"}),
        },
        coords=coords,
        attrs={"units": "mm", "sign_convention": SIGN_CONVENTION},
    )
    return ds.rio.write_crs(SCENE_CRS)


def _targets(out: Path, dates: np.ndarray) -> list[Path]:
    days = [str(d).replace("-", "") for d in dates.astype("datetime64[D]")]
    names = [f"disp_{d}.tif" for d in days]
    names += ["dem.tif", "truth_cumulative.tif", "truth_series.tif"]
    return [out / n for n in names]


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
    from insar_denoise.io import write_geotiff
    from insar_denoise.synth import SimConfig, simulate_scene

    config = SimConfig(size=size, n_dates=n_dates, pixel_spacing_m=spacing)
    out = Path(out_dir)
    step = np.timedelta64(int(round(config.interval_days)), "D")
    try:
        dates = np.datetime64(start_date, "D") + step * np.arange(n_dates)
    except ValueError as exc:
        raise ConfigError(f"--start-date {start_date!r}: not an ISO date (YYYY-MM-DD)") from exc
    targets = _targets(out, dates)
    existing = [p.name for p in targets if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{out}: {existing[0]} already exists (pass --overwrite)")
    scene = simulate_scene(
        config, seed, source=source, amplitude_mm=amplitude_mm, start_date=start_date
    )
    out.mkdir(parents=True, exist_ok=True)
    ds = scene_dataset(scene)
    tags = {
        "sim_seed": seed,
        "sim_source": scene["source"],
        "sim_history": scene["history"],
        "sim_amplitude_mm": f"{scene['amplitude_mm']:.6g}",
        "sim_config": json.dumps(scene["config"]),
    }
    arrays = [ds["displacement"].isel(time=i) for i in range(n_dates)]
    arrays += [ds["dem"], ds["cumulative"], ds["deformation"]]
    per_file = [{"tifftag_datetime": f"{str(d).replace('-', ':')} 00:00:00"} for d in dates]
    per_file += [{}] * 3
    jobs = list(zip(arrays, targets, per_file, strict=True))
    with click.progressbar(jobs, label="writing", file=click.get_text_stream("stderr")) as items:
        for da, path, extra in items:
            write_geotiff(da, path, overwrite=overwrite, tags={**tags, **extra})
    click.echo(
        f"wrote {len(targets)} files to {out}: {n_dates} dates of {size}x{size} px "
        f"at {spacing:g} m, source {scene['source']} ({scene['history']}), "
        f"amplitude {scene['amplitude_mm']:.3g} mm"
    )
