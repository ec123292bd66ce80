"""Measurements of a stack for quality control: pixel spacing, sampling interval, robust
noise, unwrapping-like jumps, the spectral slope and the removed noise per date (what the
checks in :mod:`.qc` compare with the training ranges and what its report shows)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from insar_denoise.synth.config import S1_HALF_WAVELENGTH_MM

#: side (px) of the central crop the checks read (bounded cost on large stacks)
MAX_CHECK_PX = 512
#: neighbour steps within this share of a half wavelength of k * half wavelength count as jumps
JUMP_TOLERANCE = 0.2
#: jump edges needed (count and share of the large steps) to flag one date pair
MIN_JUMP_EDGES = 20
MIN_JUMP_SHARE = 0.5
#: band of spatial frequencies (cycles/px) used for the spectral slope
SPECTRAL_BAND = (1.0 / 32.0, 0.25)


def _central(ds: xr.Dataset, max_px: int = MAX_CHECK_PX) -> tuple[np.ndarray, np.ndarray | None]:
    """Central crop (at most ``max_px`` square) of displacement ``(T, H, W)`` mm and DEM, numpy."""
    disp = ds["displacement"].transpose("time", "y", "x")
    h, w = disp.shape[1:]
    y0, x0 = max(0, (h - max_px) // 2), max(0, (w - max_px) // 2)
    win = {"y": slice(y0, y0 + max_px), "x": slice(x0, x0 + max_px)}
    values = np.asarray(disp.isel(win).values, np.float32)
    if "valid" in ds:
        values[:, ~np.asarray(ds["valid"].isel(win).values, bool)] = np.nan
    dem = np.asarray(ds["dem"].isel(win).values, np.float64) if "dem" in ds else None
    return values, dem


def robust_std(values: np.ndarray) -> float:
    """1.4826 x median absolute deviation of the finite values (mm); NaN if none."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan
    return float(1.4826 * np.median(np.abs(v - np.median(v))))


def pixel_spacing_m(ds: xr.Dataset) -> float | None:
    """Mean of the x and y pixel sizes (m); degrees are converted at the scene's latitude.

    None without a CRS or with fewer than 2 pixels along an axis.
    """
    crs = ds.rio.crs
    if crs is None or ds.sizes["x"] < 2 or ds.sizes["y"] < 2:
        return None
    dx, dy = (abs(float(r)) for r in ds.rio.resolution())
    if crs.is_geographic:
        lat = math.radians(float(np.mean(ds["y"].values)))
        dx, dy = dx * 111_320.0 * math.cos(lat), dy * 110_574.0
    return 0.5 * (dx + dy)


def interval_days(ds: xr.Dataset) -> float | None:
    """Median time between consecutive dates (days); None with a single date."""
    t = np.asarray(ds["time"].values)
    if t.size < 2:
        return None
    if np.issubdtype(t.dtype, np.datetime64):
        return float(np.median(np.diff(t) / np.timedelta64(1, "D")))
    return float(np.median(np.diff(t.astype(np.float64))))


def jump_edges(diff: np.ndarray, half_wavelength_mm: float = S1_HALF_WAVELENGTH_MM) -> int:
    """Neighbour steps of a date-to-date difference that look like unwrapping jumps.

    Counts horizontal and vertical neighbour differences with ``|step| > 0.5`` half
    wavelength and within ``JUMP_TOLERANCE`` half wavelengths of a non-zero multiple of it;
    returns 0 unless these make up ``MIN_JUMP_SHARE`` of all large steps (smooth atmosphere
    has almost no large steps; random pixel noise spreads them over all values).
    """
    steps = np.concatenate([np.diff(diff, axis=0).ravel(), np.diff(diff, axis=1).ravel()])
    steps = np.abs(steps[np.isfinite(steps)]) / half_wavelength_mm
    large = steps > 0.5
    if not large.any():
        return 0
    near = large & (np.abs(steps - np.round(steps)) < JUMP_TOLERANCE)
    n_near = int(near.sum())
    return n_near if n_near >= MIN_JUMP_SHARE * int(large.sum()) else 0


def spectral_beta(image: np.ndarray, band: tuple[float, float] = SPECTRAL_BAND) -> float:
    """Exponent beta of ``P(k) ~ k^-beta`` of the radially averaged power spectrum.

    The map's mean is removed, NaN set to 0, a Hann window applied; beta is minus the slope
    of the least-squares line of log P on log k over ``band`` (cycles/px). NaN if the map
    is too small or empty.
    """
    img = np.asarray(image, np.float64)
    ok = np.isfinite(img)
    if ok.sum() < 64 or min(img.shape) < 16:
        return math.nan
    img = np.where(ok, img - img[ok].mean(), 0.0)
    h, w = img.shape
    img = img * np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(img)) ** 2
    ky, kx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    k = np.hypot(ky, kx)
    edges = np.geomspace(band[0], band[1], 13)
    idx = np.digitize(k.ravel(), edges)
    logk, logp = [], []
    for b in range(1, len(edges)):
        sel = idx == b
        if sel.any() and power.ravel()[sel].mean() > 0:
            logk.append(math.log(k.ravel()[sel].mean()))
            logp.append(math.log(power.ravel()[sel].mean()))
    if len(logk) < 3:
        return math.nan
    return float(-np.polyfit(logk, logp, 1)[0])


def noise_statistics(ds: xr.Dataset, result: xr.Dataset) -> list[dict[str, Any]]:
    """Per date: removed-noise std (mm), phase-elevation coefficient (mm/km), spectral
    exponent beta, NaN share of the input (central crop of at most ``MAX_CHECK_PX``).

    The coefficient is the least-squares slope of the removed noise on elevation (km); the
    first date (the reference, zero noise) has NaN statistics except the NaN share.
    """
    values, dem = _central(ds)
    y0 = max(0, (ds.sizes["y"] - MAX_CHECK_PX) // 2)
    x0 = max(0, (ds.sizes["x"] - MAX_CHECK_PX) // 2)
    win = {"y": slice(y0, y0 + MAX_CHECK_PX), "x": slice(x0, x0 + MAX_CHECK_PX)}
    removed = np.asarray(result["noise"].transpose("time", "y", "x").isel(win).values, np.float64)
    dates = np.datetime_as_string(np.asarray(ds["time"].values), unit="D")
    rows = []
    for i, date in enumerate(dates):
        r = removed[i]
        ok = np.isfinite(r)
        row = {"date": str(date), "nan_share": float(np.mean(~np.isfinite(values[i])))}
        std = coef = beta = math.nan
        if i > 0 and ok.sum() > 2:
            std = float(np.std(r[ok]))
            if dem is not None:
                good = ok & np.isfinite(dem)
                h_km = dem[good] / 1000.0
                if good.sum() > 2 and np.ptp(h_km) > 0:
                    coef = float(np.polyfit(h_km, r[good], 1)[0])
            beta = spectral_beta(r)
        row.update(std_mm=std, elevation_mm_per_km=coef, spectral_beta=beta)
        rows.append(row)
    return rows
