"""Write a simulated scene (from :func:`insar_denoise.synth.simulate_scene`) as a GeoTIFF stack.

Folder layout: one GeoTIFF per date ``disp_YYYYMMDD.tif`` (mm LOS, relative to the first
date, NaN in decorrelation holes), ``dem.tif`` (m), ``truth_cumulative.tif`` (mm, last minus
first date) and ``truth_series.tif`` (one band per date, band descriptions = dates). Every
file carries the simulation config (JSON), seed, source and amplitude as tags.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import xarray as xr

from insar_denoise.errors import OutputError
from insar_denoise.io.units import SIGN_CONVENTION
from insar_denoise.io.writers import write_geotiff

#: Where synthetic scenes are placed: UTM zone 16N, upper-left corner (m).
SCENE_CRS = "EPSG:32616"
SCENE_ORIGIN_M = (745000.0, 4055000.0)


def scene_dataset(scene: dict) -> xr.Dataset:
    """Georeferenced Dataset (``displacement``, ``deformation``, ``cumulative``, ``dem``) of a
    simulated scene, placed at :data:`SCENE_ORIGIN_M` in :data:`SCENE_CRS`."""
    import rioxarray  # noqa: F401  (registers .rio)

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


def scene_targets(out: Path, dates: np.ndarray) -> list[Path]:
    """The files :func:`write_scene` writes for ``dates``, in writing order."""
    days = [str(d).replace("-", "") for d in dates.astype("datetime64[D]")]
    names = [f"disp_{d}.tif" for d in days]
    names += ["dem.tif", "truth_cumulative.tif", "truth_series.tif"]
    return [Path(out) / n for n in names]


def check_scene_targets(out: Path, dates: np.ndarray, overwrite: bool) -> list[Path]:
    """Fail before any work when a target exists and ``overwrite`` is False."""
    targets = scene_targets(out, dates)
    existing = [p.name for p in targets if p.exists()]
    if existing and not overwrite:
        raise OutputError(f"{out}: {existing[0]} already exists (pass --overwrite)")
    return targets


def write_scene(
    scene: dict,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    on_written: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write ``scene`` into ``out_dir`` (created if missing); return the written paths.

    ``on_written`` is called with each path once written (e.g. to advance a progress bar).
    """
    out = Path(out_dir)
    dates = scene["dates"]
    targets = check_scene_targets(out, dates, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    ds = scene_dataset(scene)
    tags = {
        "sim_seed": scene["seed"],
        "sim_source": scene["source"],
        "sim_history": scene["history"],
        "sim_amplitude_mm": f"{scene['amplitude_mm']:.6g}",
        "sim_config": json.dumps(scene["config"]),
    }
    n_dates = len(dates)
    arrays = [ds["displacement"].isel(time=i) for i in range(n_dates)]
    arrays += [ds["dem"], ds["cumulative"], ds["deformation"]]
    per_file = [
        {"tifftag_datetime": f"{str(d)[:10].replace('-', ':')} 00:00:00"}
        for d in dates.astype("datetime64[D]")
    ]
    per_file += [{}] * 3
    for da, path, extra in zip(arrays, targets, per_file, strict=True):
        write_geotiff(da, path, overwrite=overwrite, tags={**tags, **extra})
        if on_written is not None:
            on_written(path)
    return targets
