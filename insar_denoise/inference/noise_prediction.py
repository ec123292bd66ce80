"""The noise inside an area predicted from around it, and the elevation fit removed first.

Turbulent delay is smooth: inside an area the best linear prediction of a ``k⁻²`` field from
the pixels around it is its harmonic interpolation (kriging with the generalised covariance
of such a field; Matheron 1973, Adv. Appl. Prob. 5, 439). Stratified delay follows the
relief: each map first loses its least-squares ``c + k z + q z²`` (``z`` the DEM), or, for a
map that may hold a signal broader than the relief's features, the same with ``k, q`` fitted in
a high-pass band (:func:`elevation_free_banded`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse.linalg import splu

#: each unknown area is solved in its box widened by this many pixels
MARGIN_PX = 16


def gradient_operator(h: int, w: int) -> sparse.csr_matrix:
    """Forward differences along x and y of an ``h x w`` grid."""
    idx = np.arange(h * w).reshape(h, w)
    a = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    b = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    r = np.arange(a.size)
    vals = np.r_[np.ones(a.size), -np.ones(a.size)]
    return sparse.csr_matrix((vals, (np.r_[r, r], np.r_[a, b])), shape=(a.size, h * w))


class HarmonicPredictor:
    """The harmonic interpolation (least ``sum |∇u|²``) of a map's pixels ``unknown`` from the
    rest, solved in each unknown area's box widened by ``margin`` and factorised once, so
    that many maps share it; ``near``: only the boxes holding one of these pixels."""

    def __init__(
        self, unknown: np.ndarray, margin: int = MARGIN_PX, near: np.ndarray | None = None
    ) -> None:
        self.unknown = unknown
        self.boxes = []
        labels, _ = ndimage.label(ndimage.binary_dilation(unknown, iterations=margin))
        for box in ndimage.find_objects(labels):
            u = unknown[box].ravel()
            if not u.any() or u.all() or (near is not None and not near[box].any()):
                continue
            d = gradient_operator(*unknown[box].shape)
            du, dk = d[:, u], d[:, ~u]
            self.boxes.append((box, u, splu((du.T @ du).tocsc()), (du.T @ dk).tocsr()))

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """``values (H, W)`` with the pixels ``unknown`` (of the boxes kept) predicted."""
        out = np.array(values, np.float64)
        for box, u, lu, coupling in self.boxes:
            flat = out[box].ravel()
            flat[u] = lu.solve(-(coupling @ flat[~u]))
            out[box] = flat.reshape(out[box].shape)
        return out


def harmonic_fill(values: np.ndarray, unknown: np.ndarray, margin: int = MARGIN_PX) -> np.ndarray:
    """``values`` with the pixels ``unknown`` replaced by the harmonic interpolation of the
    rest (:class:`HarmonicPredictor`)."""
    return HarmonicPredictor(unknown, margin)(values)


def elevation_basis(shape: tuple[int, int], dem) -> np.ndarray:
    """``(H, W, k)`` columns ``1, z, z²`` (``z`` the DEM in km less its median; without a
    DEM only ``1``)."""
    cols = [np.ones(shape)]
    if dem is not None:
        z = np.asarray(dem, np.float64)
        z = (np.where(np.isfinite(z), z, np.nanmedian(z)) - np.nanmedian(z)) / 1e3
        cols += [z, z * z]
    return np.stack(cols, axis=-1)


def elevation_free(maps: np.ndarray, ok: np.ndarray, dem, fit_on: np.ndarray) -> np.ndarray:
    """``maps (n, H, W)`` less their least-squares ``c + k z + q z²`` fitted on ``fit_on``
    (``z`` the DEM in km; without a DEM only ``c``); 0 off ``ok``."""
    basis = elevation_basis(ok.shape, dem)
    coef = np.linalg.lstsq(basis[fit_on], maps[:, fit_on].T, rcond=None)[0]
    out = maps - np.moveaxis(basis @ coef, -1, 0)
    return np.where(ok, out, 0.0)


def elevation_free_banded(
    values: np.ndarray, ok: np.ndarray, dem, sigma_px: float, fit_on: np.ndarray | None = None
) -> np.ndarray:
    """``values (H, W)`` less ``c + k z + q z²`` (``z`` the DEM in km), ``k, q`` fitted on the
    map and the basis each less its Gaussian mean of ``sigma_px`` (normalised over ``ok``;
    pixels of ``fit_on``, default ``ok``, where ``ok`` covers over half of that mean), ``c``
    so that those pixels' mean is 0; 0 off ``ok``.

    A plain fit takes the part of a broad signal that lies along the relief (a bowl under a
    valley) for stratified delay; above ``sigma_px`` the signal barely enters this fit, while
    the relief's sharp features (ridges, valleys) still carry the delay (Lin et al. 2010,
    Geochem. Geophys. Geosyst. 11, Q09002: the phase-elevation ratio estimated band by
    band). Without a DEM, or too few pixels, the plain :func:`elevation_free`."""
    ok = np.asarray(ok, bool)
    fit_on = ok if fit_on is None else np.asarray(fit_on, bool)
    if dem is None:
        return elevation_free(values[None], ok, None, fit_on)[0]
    basis = elevation_basis(ok.shape, dem)
    weight = ndimage.gaussian_filter(ok.astype(np.float64), sigma_px)
    inner = ok & (weight > 0.5) & fit_on
    if inner.sum() < 10 * basis.shape[-1]:
        return elevation_free(values[None], ok, dem, fit_on)[0]

    def high_pass(image: np.ndarray) -> np.ndarray:
        mean = ndimage.gaussian_filter(np.where(ok, image, 0.0), sigma_px)
        return image - mean / np.maximum(weight, 1e-9)

    filled = np.where(ok, np.asarray(values, np.float64), 0.0)
    columns = np.stack([high_pass(basis[..., j])[inner] for j in range(1, basis.shape[-1])], 1)
    coef = np.linalg.lstsq(columns, high_pass(filled)[inner], rcond=None)[0]
    out = filled - basis[..., 1:] @ coef
    return np.where(ok, out - out[inner].mean(), 0.0)
