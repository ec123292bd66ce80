"""Dataset assembly: the mosaic of block outputs and the output Dataset of a run."""

from __future__ import annotations

from collections.abc import Callable

import dask
import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  registers ds.rio
import xarray as xr

from insar_denoise.inference.tiling import Block

MM = {"units": "mm", "sign_convention": "positive towards the satellite (LOS)"}


def assemble(
    fn: Callable,
    disp: da.Array,
    dem: da.Array | None,
    valid: da.Array | None,
    blocks: list[list[Block]],
    extra: tuple = (),
    n_out: int | None = None,
) -> da.Array:
    """Run ``fn(disp, dem, valid, block, *extra)`` on every block; return the mosaic of its
    ``(n_out, h, w)`` outputs (default ``n_out``: the number of dates)."""
    n_dates = disp.shape[0] if n_out is None else int(n_out)
    rows = []
    for row in blocks:
        parts = []
        for b in row:
            sy, sx = slice(*b.read_y), slice(*b.read_x)
            args = (
                disp[:, sy, sx],
                None if dem is None else dem[sy, sx],
                None if valid is None else valid[sy, sx],
                b,
                *extra,
            )
            out = dask.delayed(fn, pure=False)(*args)
            parts.append(da.from_delayed(out, shape=(n_dates, *b.core_shape), dtype=np.float32))
        rows.append(parts)
    return da.block(rows)


def to_dataset(ds, src, deformation, cumulative, noise, attrs) -> xr.Dataset:
    """Wrap the arrays with the input's coords, attrs and CRS."""
    coords3 = src.coords
    coords2 = src.isel(time=0, drop=True).coords
    out = xr.Dataset(
        {
            "cumulative_deformation": xr.DataArray(
                cumulative,
                coords=coords2,
                dims=("y", "x"),
                attrs={**MM, "long_name": "denoised cumulative deformation, last minus first date"},
            ),
            "deformation": xr.DataArray(
                deformation,
                coords=coords3,
                dims=src.dims,
                attrs={**MM, "long_name": "denoised displacement relative to the first date"},
            ),
        },
        attrs={**ds.attrs, **attrs},
    )
    if noise is not None:
        out["noise"] = xr.DataArray(
            noise,
            coords=coords3,
            dims=src.dims,
            attrs={**MM, "long_name": "input displacement minus denoised displacement"},
        )
    crs = ds.rio.crs if "spatial_ref" in ds.coords or ds.rio.crs is not None else None
    if crs is not None:
        out = out.rio.write_crs(crs)
        out = out.rio.write_transform(ds.rio.transform())
    return out
