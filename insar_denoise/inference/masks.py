"""Which pixels a run keeps, and how their missing dates are bridged.

One rule for every method: a pixel is kept when it is valid (``valid`` mask, if any) and
finite on at least ``min_valid_dates`` dates (:func:`valid_pixels`). A kept pixel's missing
dates are filled by linear interpolation in time, nearest valid date at the ends
(:func:`fill_time_gaps`), before the model (which cannot take NaN dates); the engine puts NaN
back at those dates in the output series. Works on numpy and dask arrays.
"""

from __future__ import annotations

import math

import dask.array as da
import numpy as np

#: share of the dates a pixel must be valid on by default
DEFAULT_VALID_SHARE = 0.5


def default_min_valid_dates(n_dates: int, window: int | None = None) -> int:
    """Default ``min_valid_dates``: half of the dates, at least 2 and at least ``window``.

    Parameters
    ----------
    n_dates : number of dates of the stack.
    window : the model's window (dates), or None for classical methods.

    Returns
    -------
    int, at most ``n_dates``.
    """
    need = max(2, math.ceil(DEFAULT_VALID_SHARE * n_dates), int(window or 0))
    return min(need, n_dates)


def valid_pixels(disp, valid=None, min_valid_dates: int = 2):
    """Pixels to keep: ``valid`` and finite on at least ``min_valid_dates`` dates.

    Parameters
    ----------
    disp : (T, H, W) displacement in mm, NaN = no data (numpy or dask).
    valid : optional (H, W) bool mask of usable pixels.
    min_valid_dates : dates a pixel must be finite on (at least 1).

    Returns
    -------
    (H, W) bool array of the same kind as ``disp``.
    """
    count = (da if isinstance(disp, da.Array) else np).isfinite(disp).sum(axis=0)
    keep = count >= max(1, int(min_valid_dates))
    if valid is not None:
        keep = keep & valid.astype(bool)
    return keep


def fill_time_gaps(disp: np.ndarray, times_days: np.ndarray) -> np.ndarray:
    """Fill each pixel's NaN dates by linear interpolation in time (nearest at the ends).

    Parameters
    ----------
    disp : (T, ...) values, NaN = missing; pixels with no finite date stay NaN.
    times_days : (T,) acquisition times in days, ascending.

    Returns
    -------
    Array of ``disp``'s shape and dtype; finite values are unchanged.
    """
    # Piecewise-linear interpolation between the bracketing valid dates (as numpy.interp)
    t_count = disp.shape[0]
    flat = np.asarray(disp).reshape(t_count, -1)
    ok = np.isfinite(flat)
    if ok.all():
        return np.array(disp, copy=True)
    index = np.arange(t_count)[:, None]
    prev = np.maximum.accumulate(np.where(ok, index, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(ok, index, t_count)[::-1], axis=0)[::-1]
    p, n = np.clip(prev, 0, t_count - 1), np.clip(nxt, 0, t_count - 1)
    vp, vn = np.take_along_axis(flat, p, 0), np.take_along_axis(flat, n, 0)
    t = np.asarray(times_days, np.float64)
    tp, tn = t[p], t[n]
    span = np.where(tn > tp, tn - tp, 1.0)
    w = np.where(tn > tp, (t[:, None] - tp) / span, 0.0)
    inside = vp + w * (vn - vp)
    out = np.where((prev >= 0) & (nxt < t_count), inside, np.where(prev >= 0, vp, vn))
    return out.astype(flat.dtype, copy=False).reshape(disp.shape)


def fill_time_gaps_lazy(disp, times_days: np.ndarray):
    """:func:`fill_time_gaps` on a numpy or dask ``(T, H, W)`` array (time in one chunk)."""
    if not isinstance(disp, da.Array):
        return fill_time_gaps(np.asarray(disp), times_days)
    disp = disp.rechunk({0: -1})
    return disp.map_blocks(fill_time_gaps, times_days, dtype=disp.dtype)


def restore_gaps(series, disp, keep):
    """``series`` where the input ``disp`` is finite on a kept pixel, NaN elsewhere."""
    lib = da if isinstance(series, da.Array) or isinstance(disp, da.Array) else np
    return lib.where(lib.isfinite(disp) & keep[None], series, np.nan).astype(np.float32)


def pixel_counts(disp, valid=None, min_valid_dates: int = 2) -> dict[str, int]:
    """Pixels with data on some date, kept (valid on >= ``min_valid_dates``), and dropped."""
    lib = da if isinstance(disp, da.Array) else np
    with_data = lib.isfinite(disp).any(axis=0)
    if valid is not None:
        with_data = with_data & valid.astype(bool)
    keep = valid_pixels(disp, valid, min_valid_dates)
    n_data, n_keep = (int(v) for v in (with_data.sum(), keep.sum()))
    if lib is da:
        n_data, n_keep = (int(v) for v in da.compute(with_data.sum(), keep.sum()))
    return {"with_data": n_data, "kept": n_keep, "below_min_valid_dates": n_data - n_keep}
