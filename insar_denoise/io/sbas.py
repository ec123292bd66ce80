"""SBAS inversion of an interferogram network into a displacement series.

Inversion (Berardino et al. 2002, SBAS; Schmidt & Bürgmann 2003): for each pixel the
interferogram of pair (i, j) is ``d[j] - d[i]``, with ``d[0] = 0`` at the first date, solved
by (weighted) least squares over the pairs valid at that pixel. Pixels are grouped by their
pattern of valid pairs and each group is solved with one factorisation. Dates that a pixel's
valid pairs do not connect to the first date are NaN at that pixel (no temporal smoothing
bridges gaps). A network whose dates split into several groups altogether is an
``InputError`` naming the groups.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from insar_denoise.errors import InputError

_PIXEL_BLOCK = 16384
"""Pixels solved at once in the weighted inversion (memory ~ block * pairs * dates * 8 B)."""


def network_components(pairs: Sequence[tuple[int, int]], n_dates: int) -> list[list[int]]:
    """Groups of date indices connected by the pairs (graph components), sorted.

    Parameters
    ----------
    pairs : sequence of (int, int)
        Date indices of each interferogram.
    n_dates : int
        Number of dates; a date in no pair is a group of its own.
    """
    parent = list(range(n_dates))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    for i, j in pairs:
        parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for k in range(n_dates):
        groups.setdefault(root(k), []).append(k)
    return sorted(groups.values())


def design_matrix(pairs: Sequence[tuple[int, int]], n_dates: int) -> np.ndarray:
    """SBAS design matrix (P, n_dates): +1 at the secondary, -1 at the reference date."""
    matrix = np.zeros((len(pairs), n_dates))
    for row, (i, j) in enumerate(pairs):
        matrix[row, j] += 1.0
        matrix[row, i] -= 1.0
    return matrix


def _solve_group(a: np.ndarray, y: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Least-squares solution (npix, n) of ``a x = y`` for y (npix, P), weights w (npix, P)."""
    if w is None:
        return np.linalg.lstsq(a, y.T, rcond=None)[0].T
    out = np.empty((y.shape[0], a.shape[1]))
    for start in range(0, y.shape[0], _PIXEL_BLOCK):
        sw = np.sqrt(w[start : start + _PIXEL_BLOCK])
        aw = sw[:, :, None] * a[None]
        out[start : start + _PIXEL_BLOCK] = np.einsum(
            "nkp,np->nk", np.linalg.pinv(aw), sw * y[start : start + _PIXEL_BLOCK]
        )
    return out


def invert_network(
    ifgs: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    n_dates: int,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Per-pixel SBAS least-squares inversion of interferograms into a time series.

    Parameters
    ----------
    ifgs : ndarray (P, H, W)
        Interferograms, any displacement unit (the output has the same unit); NaN = no data.
        Pair ``(i, j)`` measures ``d[j] - d[i]``.
    pairs : sequence of (int, int)
        Reference and secondary date index of each interferogram.
    n_dates : int
        Number of dates T.
    weights : ndarray (P, H, W), optional
        Non-negative weights (inverse variances); 0 or NaN drops a pair at a pixel.

    Returns
    -------
    ndarray (T, H, W)
        float64 displacement relative to date 0 (0 there); NaN where a date is not
        connected to date 0 by the pixel's valid pairs.
    """
    ifgs = np.asarray(ifgs)
    n_pairs, height, width = ifgs.shape
    if len(pairs) != n_pairs:
        raise InputError(f"invert_network: {len(pairs)} pairs for {n_pairs} interferograms")
    flat = ifgs.reshape(n_pairs, -1).T.astype(np.float64)
    valid = np.isfinite(flat)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64).reshape(n_pairs, -1).T
        valid &= np.isfinite(w) & (w > 0)
    a_full = design_matrix(pairs, n_dates)
    out = np.full((flat.shape[0], n_dates), np.nan)
    patterns, inverse = np.unique(valid, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    groups = np.split(order, np.cumsum(np.bincount(inverse.ravel()))[:-1])
    for pattern, pixels in zip(patterns, groups, strict=True):
        used = [p for p, ok in zip(pairs, pattern, strict=True) if ok]
        reached = next(g for g in network_components(used, n_dates) if 0 in g)
        if len(reached) == 1:
            continue
        rows = np.flatnonzero(pattern)
        rows = rows[[pairs[r][0] in reached for r in rows]]
        a = a_full[np.ix_(rows, reached[1:])]
        y = flat[np.ix_(pixels, rows)]
        out[np.ix_(pixels, reached[1:])] = _solve_group(
            a, y, None if w is None else w[np.ix_(pixels, rows)]
        )
        out[pixels, 0] = 0.0
    return out.T.reshape(n_dates, height, width)


def coherence_weights(coherence: np.ndarray) -> np.ndarray:
    """Inverse phase variance ``2 c^2 / (1 - c^2)`` from coherence clipped to [0.01, 0.99].

    (Hanssen 2001, eq. 4.2.24, the single-look Cramér-Rao bound, as LiCSBAS' WLS uses it.)
    NaN coherence stays NaN (the pair is dropped at that pixel).
    """
    c = np.clip(np.asarray(coherence, dtype=np.float64), 0.01, 0.99)
    return 2.0 * c**2 / (1.0 - c**2)
