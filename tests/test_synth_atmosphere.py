"""Atmospheric and other nuisance terms: turbulence spectra, stratified delay, DEMs, artifacts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from insar_denoise.synth import artifacts, dems
from insar_denoise.synth.stratified import stratified_delay
from insar_denoise.synth.turbulence import spectral_field, turbulent_delay


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _radial_slope(
    fields: np.ndarray, window: bool, kmin: float = 0.03, kmax: float = 0.25
) -> float:
    """Log-log slope of the radially averaged power spectrum (cycles / pixel), averaged over
    realisations, fitted between ``kmin`` and ``kmax``."""
    n = fields.shape[-1]
    if window:
        w = np.hanning(n)
        fields = fields * np.outer(w, w)
    power = (np.abs(np.fft.fft2(fields)) ** 2).mean(axis=0)
    k = np.fft.fftfreq(n)
    kr = np.hypot(k[:, None], k[None, :])
    edges = np.linspace(kmin, kmax, 25)
    idx = np.digitize(kr.ravel(), edges)
    centres, means = [], []
    for i in range(1, len(edges)):
        sel = idx == i
        if not sel.any():
            continue
        centres.append(kr.ravel()[sel].mean())
        means.append(power.ravel()[sel].mean())
    return float(np.polyfit(np.log(centres), np.log(means), 1)[0])


@pytest.mark.parametrize("beta", [5 / 3, 8 / 3, 11 / 3])
def test_powerlaw_spectral_slope(beta: float) -> None:
    full = spectral_field(
        _gen(1), (8,), 64, torch.full((8,), beta), pixel_spacing_m=90.0, crop=False
    )
    assert full.shape == (8, 128, 128)
    assert _radial_slope(full.double().numpy(), window=False) == pytest.approx(-beta, abs=0.2)
    tile = spectral_field(_gen(2), (32,), 128, torch.full((32,), beta), pixel_spacing_m=90.0)
    assert _radial_slope(tile.double().numpy(), window=True) == pytest.approx(-beta, abs=0.2)


def test_von_karman_flattens_below_corner() -> None:
    """beta = 3 with L = 300 m (H = 1/2: exponential covariance): steep above k0, flat below."""
    spacing, length = 90.0, 300.0
    k0 = 1.0 / (2 * math.pi * length)  # cycles / m
    f = (
        spectral_field(
            _gen(3),
            (16,),
            128,
            torch.full((16,), 3.0),
            pixel_spacing_m=spacing,
            k0_per_m=k0,
            crop=False,
        )
        .double()
        .numpy()
    )
    k0_px = k0 * spacing  # cycles / pixel (~0.048)
    assert _radial_slope(f, window=False, kmin=0.25, kmax=0.5) == pytest.approx(-3.0, abs=0.3)
    assert abs(_radial_slope(f, window=False, kmin=0.005, kmax=k0_px / 2)) < 0.8


def test_exponential_covariance_length() -> None:
    """H = 1/2 von Karman: the empirical correlation at lag L is about exp(-1)."""
    spacing, length = 100.0, 1500.0
    f = spectral_field(
        _gen(4),
        (64,),
        128,
        torch.full((64,), 3.0),
        pixel_spacing_m=spacing,
        k0_per_m=1 / (2 * math.pi * length),
        pad=4.0,
    ).double()
    lag = int(length / spacing)
    corr = (f[..., :, :-lag] * f[..., :, lag:]).mean() / (f * f).mean()
    assert corr.item() == pytest.approx(math.exp(-1), abs=0.1)


def test_turbulent_std_and_independence() -> None:
    d = turbulent_delay(
        _gen(5),
        6,
        4,
        48,
        pixel_spacing_m=90.0,
        powerlaw_prob=0.5,
        powerlaw_beta=(5 / 3, 11 / 3),
        vonkarman_hurst=(0.3, 1.0),
        correlation_length_km=(1.0, 30.0),
        std_mm=(7.0, 7.0),
        pad=2.0,
        device="cpu",
    )
    assert d.shape == (6, 4, 48, 48)
    torch.testing.assert_close(d.std(dim=(-2, -1), correction=0), torch.full((6, 4), 7.0))
    torch.testing.assert_close(d.mean(dim=(-2, -1)), torch.zeros(6, 4), atol=1e-4, rtol=0)
    c = torch.corrcoef(d.reshape(24, -1))
    off = c[~torch.eye(24, dtype=torch.bool)]
    assert off.abs().mean() < 0.3


def test_no_periodic_wrap_around() -> None:
    """Opposite edges of a cropped tile are not correlated the way a periodic field's are."""
    beta = torch.full((64,), 11 / 3)
    periodic = spectral_field(_gen(6), (64,), 64, beta, pixel_spacing_m=90.0, pad=1.0)
    cropped = spectral_field(_gen(6), (64,), 64, beta, pixel_spacing_m=90.0, pad=2.0)

    def edge_corr(f: torch.Tensor) -> float:
        a, b = f[..., :, 0], f[..., :, -1]
        a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
        return ((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))).mean().item()

    assert edge_corr(periodic) > 0.8
    assert edge_corr(cropped) < 0.5


def test_stratified_correlates_with_dem() -> None:
    dem = dems.fractal_dem(
        _gen(7),
        4,
        48,
        pixel_spacing_m=90.0,
        beta=(4.0, 4.0),
        relief_m=(1000.0, 1000.0),
        device="cpu",
    )
    d = stratified_delay(_gen(8), dem, 5, coef_mm_per_km=(10.0, 15.0), quad_mm_per_km2=(0.0, 0.0))
    assert d.shape == (4, 5, 48, 48)
    for b in range(4):
        for t in range(5):
            r = torch.corrcoef(torch.stack([d[b, t].flatten(), dem[b].flatten()]))[0, 1]
            assert r > 0.999
    # 10-15 mm/km over 1 km of relief
    span = d.amax(dim=(-2, -1)) - d.amin(dim=(-2, -1))
    assert ((span >= 10 - 1e-3) & (span <= 15 + 1e-3)).all()
    neg = stratified_delay(_gen(8), dem, 2, coef_mm_per_km=(-5.0, -5.0), quad_mm_per_km2=(2.0, 2.0))
    z = (dem - dem.amin(dim=(-2, -1), keepdim=True)) / 1000.0
    torch.testing.assert_close(neg[:, 0], -5.0 * z + 2.0 * z**2)


def test_real_dem_data_and_patches() -> None:
    data = dems.load_real_dems()
    assert set(data) == {"jacksboro_tn", "salish_sea"}
    elev, spacing = data["jacksboro_tn"]
    assert elev.dtype == np.float32 and elev.shape == (344, 403) and np.isfinite(elev).all()
    assert 70 < spacing[0] < 100 and 70 < spacing[1] < 100
    p = dems.real_dem_patches(
        _gen(9), 6, 200, zoom=(0.5, 2.5), relief_scale=(1.0, 1.0), device="cpu"
    )
    assert p.shape == (6, 200, 200) and torch.isfinite(p).all()
    assert (p.amin(dim=(-2, -1)) == 0).all() and (p.amax(dim=(-2, -1)) > 1.0).all()
    # smooth (bilinear upsampling and mirrored continuation, no seams of random values)
    assert p.diff(dim=-1).abs().amax() < 0.5 * p.amax()


def test_sample_dems_mix_and_base() -> None:
    d = dems.sample_dems(
        _gen(10),
        8,
        32,
        pixel_spacing_m=90.0,
        real_prob=0.5,
        beta=(3.6, 4.4),
        relief_m=(50.0, 2000.0),
        base_m=(100.0, 100.0),
        zoom=(0.25, 1.5),
        relief_scale=(0.3, 2.0),
        device="cpu",
    )
    assert d.shape == (8, 32, 32)
    torch.testing.assert_close(d.amin(dim=(-2, -1)), torch.full((8,), 100.0))


def test_holes_fraction_and_unwrapping_jumps() -> None:
    valid = artifacts.decorrelation_holes(
        _gen(11), 10, 64, prob=1.0, fraction=(0.1, 0.1), pixel_spacing_m=90.0, device="cpu"
    )
    frac = (~valid).float().mean(dim=(-2, -1))
    torch.testing.assert_close(frac, torch.full((10,), 0.1), atol=2e-3, rtol=0)
    none = artifacts.decorrelation_holes(
        _gen(11), 10, 64, prob=0.0, fraction=(0.1, 0.1), pixel_spacing_m=90.0, device="cpu"
    )
    assert none.all()
    jumps = artifacts.unwrapping_errors(
        _gen(12), 10, 5, 64, prob=1.0, radius_frac=(0.1, 0.2), half_wavelength_mm=27.7, device="cpu"
    )
    assert (jumps[:, 0] == 0).all()
    assert ((jumps != 0).sum(dim=(-2, -1)) > 0).sum(dim=1).eq(1).all()  # exactly one date each
    cycles = jumps[jumps != 0] / 27.7
    torch.testing.assert_close(cycles, cycles.round())
    assert cycles.abs().max() <= 2


def test_orbital_ramps_are_planes_of_the_requested_span() -> None:
    r = artifacts.orbital_ramps(_gen(13), 3, 4, 32, ramp_mm=(4.0, 4.0), device="cpu")
    assert r.shape == (3, 4, 32, 32)
    second = r[..., 2:, :] - 2 * r[..., 1:-1, :] + r[..., :-2, :]
    assert second.abs().max() < 1e-4
    gx = (r[..., :, -1] - r[..., :, 0]).mean(-1)
    gy = (r[..., 0, :] - r[..., -1, :]).mean(-1)
    span = torch.hypot(gx, gy) * 32 / 31
    torch.testing.assert_close(span, torch.full((3, 4), 4.0), atol=1e-3, rtol=0)
