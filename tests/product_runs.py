"""``run``'s product of a scene read in chunks, with its warnings, for tests that share it."""

from __future__ import annotations

import warnings

import xarray as xr


def run_in_chunks(ds: xr.Dataset, chunk: int = 64) -> tuple[xr.Dataset, list[str]]:
    """``run``'s product (the shipped model, default options) of ``ds`` read in ``chunk`` px
    chunks, computed, and the texts of its out-of-distribution warnings."""
    from insar_denoise.errors import OutOfDistributionWarning
    from insar_denoise.models import load_model
    from insar_denoise.options import RunOptions
    from insar_denoise.product import denoise

    lazy = ds.chunk({"time": -1, "y": chunk, "x": chunk})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = denoise(lazy, load_model("default"), RunOptions(progress=False, chunk=chunk))
        out = out.compute()
    texts = [str(w.message) for w in caught if issubclass(w.category, OutOfDistributionWarning)]
    return out, texts
