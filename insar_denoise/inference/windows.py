"""Sliding time windows and their least-squares combination into a displacement series.

The model sees ``N`` dates at a time and returns the deformation cumulated over its window
(last minus first date). For a stack of ``T >= N`` dates the window starting at date ``s``
(``s = 0, stride, 2 stride, ...``; a last window ending on the last date is always added)
gives one observation per pixel::

    d(t_{s+N-1}) - d(t_s) = w_s                                   (mm)

The unknowns are the denoised displacements ``d(t_1) ... d(t_{T-1})`` with ``d(t_0) = 0``.
With stride 1 and ``N > 2`` these differences leave ``N - 2`` sub-series free (each class of
dates modulo ``N - 1`` is tied to its own starting value), so a small second-difference
(curvature) regulariser is added, written for irregular sampling::

    lam * dt_mean * [ (d_{t+1} - d_t) / (t_{t+1} - t_t) - (d_t - d_{t-1}) / (t_t - t_{t-1}) ] = 0

for every inner date. ``lam`` (default 0.01, dimensionless) is small, so the window
observations dominate; a series linear in time satisfies every regulariser row exactly and is
therefore recovered exactly when the window outputs are exact, whatever ``lam`` is. The
least-squares solution is ``d = P w`` with ``P = pinv([A; lam R])[:, :M]`` (``A`` the ``M x
(T-1)`` difference design matrix, ``R`` the ``(T-2) x (T-1)`` regulariser): the same for every
pixel, so it is computed once and applied to all pixels with one matrix product. The
cumulative deformation is ``d(t_{T-1})``; for ``T == N`` (one window) it equals the window
output exactly and the series is the linear interpolation between the two ends.
"""

from __future__ import annotations

import numpy as np

from insar_denoise.errors import InputError

DEFAULT_LAMBDA = 0.01


def window_starts(n_dates: int, window: int, stride: int = 1) -> np.ndarray:
    """Start indices of the ``window``-date windows over ``n_dates`` dates.

    Parameters
    ----------
    n_dates : number of dates ``T`` in the stack.
    window : number of dates ``N`` per window (model metadata ``window``).
    stride : step between window starts in dates (default 1). A final window ending on the
        last date is added when the stride does not land on it.

    Returns
    -------
    (M,) int array of start indices.

    Raises
    ------
    InputError
        If ``T < N`` (the model needs at least ``N`` dates).
    """
    if window < 2:
        raise InputError(f"the time window must hold at least 2 dates, got N={window}")
    if stride < 1:
        raise InputError(f"the window stride must be >= 1 date, got {stride}")
    if n_dates < window:
        raise InputError(
            f"the stack has {n_dates} dates but the model needs at least N={window} dates "
            f"(its time window); add dates or use a model with a shorter window"
        )
    starts = list(range(0, n_dates - window + 1, stride))
    if starts[-1] != n_dates - window:
        starts.append(n_dates - window)
    return np.asarray(starts, dtype=np.int64)


def combination_matrix(
    n_dates: int,
    window: int,
    starts: np.ndarray,
    times_days: np.ndarray | None = None,
    lam: float = DEFAULT_LAMBDA,
) -> np.ndarray:
    """Matrix ``P`` of shape ``(T, M)`` mapping window outputs to the denoised series.

    Parameters
    ----------
    n_dates : ``T``.
    window : ``N``.
    starts : (M,) window start indices (:func:`window_starts`).
    times_days : (T,) acquisition times in days; None = evenly spaced.
    lam : weight of the second-difference regulariser (dimensionless, see module docstring).

    Returns
    -------
    (T, M) float64 matrix; row 0 is zero (``d(t_0) = 0``), ``series = P @ w``.
    """
    t_count = int(n_dates)
    starts = np.asarray(starts, dtype=np.int64)
    times = (
        np.arange(t_count, dtype=np.float64)
        if times_days is None
        else np.asarray(times_days, dtype=np.float64)
    )
    if times.shape != (t_count,) or np.any(np.diff(times) <= 0):
        raise InputError("acquisition times must be strictly increasing, one per date")
    m = starts.size
    a = np.zeros((m, t_count))
    a[np.arange(m), starts + window - 1] += 1.0
    a[np.arange(m), starts] -= 1.0
    dt = np.diff(times)
    rows = []
    for i in range(1, t_count - 1):
        r = np.zeros(t_count)
        r[i + 1] += 1.0 / dt[i]
        r[i] -= 1.0 / dt[i] + 1.0 / dt[i - 1]
        r[i - 1] += 1.0 / dt[i - 1]
        rows.append(r * dt.mean())
    reg = np.asarray(rows).reshape(-1, t_count) * lam
    design = np.concatenate([a, reg])[:, 1:]  # drop d(t_0) = 0
    pinv = np.linalg.pinv(design)[:, :m]
    return np.concatenate([np.zeros((1, m)), pinv])


def combine_windows(window_outputs: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply :func:`combination_matrix` to per-pixel window outputs.

    Parameters
    ----------
    window_outputs : (M, H, W) cumulative deformation of each window in mm.
    matrix : (T, M) from :func:`combination_matrix`.

    Returns
    -------
    (T, H, W) float32 denoised displacement series in mm, relative to the first date.
    """
    m, h, w = window_outputs.shape
    flat = window_outputs.reshape(m, h * w).astype(np.float32, copy=False)
    return (matrix.astype(np.float32) @ flat).reshape(-1, h, w)
