"""Optional per-date ramp removal (``run --deramp``): not the default, since it deletes every
signal broader than the scene's own plane (subsidence bowls, inflation, interseismic strain).

Each date loses its least-squares plane ``a + b x + c y`` over its valid pixels (the classic
orbital-ramp correction, e.g. MintPy's ``deramp``); the sums are dask reductions, so a scene
larger than memory is never loaded.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import xarray as xr


def deramp_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Copy of ``ds`` whose ``displacement`` has each date's least-squares plane removed.

    Coordinates are pixel indices centred on the scene (well conditioned on any grid).
    Dates with fewer than 3 valid pixels are left unchanged.
    """
    disp = ds["displacement"].transpose("time", "y", "x")
    data = disp.data if isinstance(disp.data, da.Array) else da.from_array(disp.values)
    _, h, w = data.shape
    yy = da.arange(h, dtype=np.float64)[:, None] - (h - 1) / 2.0
    xx = da.arange(w, dtype=np.float64)[None, :] - (w - 1) / 2.0
    yy, xx = da.broadcast_to(yy, (h, w)), da.broadcast_to(xx, (h, w))
    ok = da.isfinite(data)
    d = da.where(ok, data, 0.0).astype(np.float64)
    m = ok.astype(np.float64)
    basis = (da.ones((h, w)), xx, yy)
    # normal equations per date: G[t] = sum m b_i b_j, r[t] = sum m b_i d
    gram = [[(m * (bi * bj)[None]).sum(axis=(1, 2)) for bj in basis] for bi in basis]
    rhs = [(d * bi[None]).sum(axis=(1, 2)) for bi in basis]
    g, r = da.compute(gram, rhs)
    g = np.moveaxis(np.array(g), -1, 0)  # (T, 3, 3)
    r = np.moveaxis(np.array(r), -1, 0)  # (T, 3)
    coef = np.zeros_like(r)
    for t in range(len(r)):
        if g[t, 0, 0] >= 3:
            coef[t] = np.linalg.lstsq(g[t], r[t], rcond=None)[0]
    c = [da.from_array(coef[:, i][:, None, None]) for i in range(3)]
    plane = c[0] + c[1] * xx[None] + c[2] * yy[None]
    out = (data - plane).astype(np.float32)
    if not isinstance(disp.data, da.Array):
        out = out.compute()
    new = ds.copy()
    new["displacement"] = disp.copy(data=out)
    new.attrs = {**ds.attrs, "insar_denoise_deramp": "per-date least-squares plane removed"}
    return new
