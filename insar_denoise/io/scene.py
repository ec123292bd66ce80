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

from insar_denoise.io.dataset import dataset_from_arrays
from insar_denoise.io.targets import check_report_files
from insar_denoise.io.writers import write_geotiff

#: Where synthetic scenes are placed: UTM zone 16N, upper-left corner (m).
SCENE_CRS = "EPSG:32616"
SCENE_ORIGIN_M = (745000.0, 4055000.0)


def scene_dataset(scene: dict) -> xr.Dataset:
    """Georeferenced Dataset (``displacement``, ``deformation``, ``cumulative``, ``dem``) of a
    simulated scene, placed at :data:`SCENE_ORIGIN_M` in :data:`SCENE_CRS`."""
    return dataset_from_arrays(
        scene["displacement"],
        scene["dem"],
        times=scene["dates"],
        spacing=scene["pixel_spacing_m"],
        origin=SCENE_ORIGIN_M,
        crs=SCENE_CRS,
        extra={"deformation": scene["deformation"], "cumulative": scene["cumulative"]},
    )


def scene_targets(out: Path, dates: np.ndarray) -> list[Path]:
    """The files :func:`write_scene` writes for ``dates``, in writing order."""
    days = [str(d).replace("-", "") for d in dates.astype("datetime64[D]")]
    names = [f"disp_{d}.tif" for d in days]
    names += ["dem.tif", "truth_cumulative.tif", "truth_series.tif"]
    return [Path(out) / n for n in names]


def check_scene_targets(out: Path, dates: np.ndarray, overwrite: bool) -> list[Path]:
    """Fail before any work when a target exists and ``overwrite`` is False."""
    return check_report_files(out, [p.name for p in scene_targets(out, dates)], overwrite)


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
