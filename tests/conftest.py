"""Shared fixtures: small real GeoTIFF / NetCDF stacks and DEMs written with rasterio."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

DATA = Path(__file__).parent / "data"

# Grids inside the bundled DEM tests/data/dem_jacksboro_tn.tif (EPSG:4326, -84.41..-84.08 E,
# 36.45..36.73 N), so that DEM can be matched to either.
GRIDS = {
    "utm": ("EPSG:32616", from_origin(745000.0, 4055000.0, 90.0, 90.0)),
    "geographic": ("EPSG:4326", from_origin(-84.30, 36.65, 0.001, 0.001)),
}
DATES = ("2021-03-05", "2021-03-17", "2021-03-29", "2021-04-10")


@dataclass
class Stack:
    """A stack written to disk and the values the readers must return."""

    paths: list[Path]
    data: np.ndarray  # (time, y, x) float32, in the file's units, NaN = nodata
    times: np.ndarray  # datetime64[ns], ascending
    crs: str
    transform: rasterio.Affine


def write_raster(
    path: Path,
    data: np.ndarray,
    crs: str | None,
    transform: rasterio.Affine,
    *,
    nodata: float | None = np.nan,
    unit: str | None = None,
    tags: dict | None = None,
    descriptions: list[str] | None = None,
    band_tags: list[dict] | None = None,
    driver: str = "GTiff",
) -> Path:
    """Write a 2-D or (band, y, x) array with rasterio."""
    data = np.asarray(data)
    bands = data[None] if data.ndim == 2 else data
    with rasterio.open(
        path,
        "w",
        driver=driver,
        count=bands.shape[0],
        height=bands.shape[1],
        width=bands.shape[2],
        dtype=bands.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as dst:
        dst.write(bands)
        if tags:
            dst.update_tags(**tags)
        for band in range(bands.shape[0]):
            if unit:
                dst.set_band_unit(band + 1, unit)
            if descriptions:
                dst.set_band_description(band + 1, descriptions[band])
            if band_tags:
                dst.update_tags(band + 1, **band_tags[band])
    return path


def random_stack(n_dates: int = 4, shape: tuple[int, int] = (24, 32), seed: int = 0) -> np.ndarray:
    """A float32 (time, y, x) stack with a few NaN holes."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 5.0, size=(n_dates, *shape)).astype("float32")
    data[:, :3, :2] = np.nan
    data[-1, 5, 5] = np.nan
    return data


def multiband_file(
    folder: Path, descriptions: list[str] | None = None, band_tags: list[dict] | None = None
) -> tuple[Path, np.ndarray]:
    """``folder/cube.tif``: 3 bands on the geographic grid, with these descriptions/tags."""
    crs, transform = GRIDS["geographic"]
    data = random_stack(3, (10, 12))
    path = write_raster(
        folder / "cube.tif", data, crs, transform, descriptions=descriptions, band_tags=band_tags
    )
    return path, data


@pytest.fixture
def make_stack(tmp_path: Path) -> Callable[..., Stack]:
    """Factory: single-band GeoTIFFs, one per date, named ``S1_YYYYMMDD.tif``."""

    def make(
        grid: str = "utm",
        *,
        n_dates: int = 4,
        shape: tuple[int, int] = (24, 32),
        unit: str | None = "mm",
        folder: str = "stack",
        name: str = "S1_{:%Y%m%d}.tif",
    ) -> Stack:
        crs, transform = GRIDS[grid]
        out = tmp_path / folder
        out.mkdir(exist_ok=True)
        data = random_stack(n_dates, shape)
        times = np.array(
            [np.datetime64(DATES[0]) + np.timedelta64(12 * i, "D") for i in range(n_dates)],
            dtype="datetime64[ns]",
        )
        paths = []
        for band, when in zip(data, times.astype("datetime64[s]").tolist(), strict=True):
            path = out / name.format(when)
            paths.append(write_raster(path, band, crs, transform, unit=unit))
        return Stack(paths, data, times, crs, transform)

    return make


@pytest.fixture(params=sorted(GRIDS))
def grid(request: pytest.FixtureRequest) -> str:
    """Each test grid in turn: a UTM one and a geographic (EPSG:4326) one."""
    return request.param


@pytest.fixture
def plane_dem(tmp_path: Path) -> tuple[Path, Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """An EPSG:4326 DEM that is a plane in lon/lat, and the plane as a function.

    Bilinear resampling reproduces a plane exactly, so resampled values can be checked
    against the closed form at each target pixel centre.
    """

    def plane(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return 300.0 + 2000.0 * (lon + 84.3) - 1500.0 * (lat - 36.6)

    transform = from_origin(-84.45, 36.75, 0.0005, 0.0005)
    rows, cols = np.mgrid[0:400, 0:500]
    lon = -84.45 + (cols + 0.5) * 0.0005
    lat = 36.75 - (rows + 0.5) * 0.0005
    path = write_raster(
        tmp_path / "plane_dem.tif", plane(lon, lat).astype("float32"), "EPSG:4326", transform
    )
    return path, plane


@pytest.fixture
def real_dem() -> Path:
    """The bundled SRTM-derived DEM around Jacksboro, Tennessee (EPSG:4326, ~90 m)."""
    return DATA / "dem_jacksboro_tn.tif"
