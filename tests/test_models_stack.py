"""The whole-stack model: temporal basis, noise weights, projection, export and the engine path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.testing import synthetic_dataset
from insar_denoise.models import load_model
from insar_denoise.models.registry import export_model, stack_metadata
from insar_denoise.models.stack_denoiser import (
    StackDenoiser,
    date_variances,
    ramp_basis,
    receptive_field_px,
)


def pwl_history(u: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Piecewise-linear history with values ``knots`` at u = 0, 1/K, ..., 1."""
    return np.interp(u, np.linspace(0.0, 1.0, len(knots)), knots)


def test_ramp_basis_spans_piecewise_linear_histories():
    times = torch.tensor([[0.0, 12, 24, 30, 48, 72, 84, 96]])
    ramps = ramp_basis(times, 4)[0].numpy()
    u = (times[0] / 96.0).numpy()
    knots = np.array([0.0, 2.0, -1.0, 5.0, 3.0])
    coef = np.diff(knots)  # ramp k rises by knots[k+1] - knots[k]
    np.testing.assert_allclose(ramps @ coef, pwl_history(u, knots), atol=1e-6)
    np.testing.assert_allclose(ramps[-1], 1.0)  # cumulative = sum of the ramp coefficients
    np.testing.assert_allclose(ramps[0], 0.0)


def test_date_variances_recover_per_date_noise_with_a_shared_reference():
    gen = torch.Generator().manual_seed(0)
    sigma = torch.tensor([2.0, 1.0, 4.0, 1.5, 3.0, 2.5, 1.0, 2.0])
    atm = torch.randn((1, 8, 96, 96), generator=gen) * sigma[None, :, None, None]
    disp = atm - atm[:, :1]  # every date relative to the first: shares its atmosphere
    est = date_variances(disp)[0].sqrt()
    np.testing.assert_allclose(est.numpy(), sigma.numpy(), rtol=0.15)


def test_untrained_model_is_the_weighted_fit_and_passes_signals_at_full_gain():
    """Zero-initialised head: the output is the least-squares fit, exact for PWL histories."""
    model = StackDenoiser().eval()
    t = 20
    times = torch.arange(t, dtype=torch.float32)[None] * 12.0
    u = (times[0] / times[0, -1]).numpy()
    yy, xx = np.mgrid[0:32, 0:32]
    pattern = 30.0 * np.exp(-((yy - 14) ** 2 + (xx - 18) ** 2) / 60.0)
    hist = pwl_history(u, np.array([0.0, 0.1, 0.7, 0.8, 1.0]))
    truth = (hist[:, None, None] * pattern[None]).astype(np.float32)
    disp = torch.from_numpy(truth)[None].clone()
    disp[0, 3:6, 5, 7] = float("nan")  # gaps in time on one pixel
    dem = torch.from_numpy((300 + 5 * xx).astype(np.float32))[None]
    with torch.no_grad():
        series, detection, sigma = model(disp, dem, times)
    # up to one constant per date (outputs are defined up to the reference)
    err = series[0].numpy() - truth
    err -= err.mean(axis=(1, 2), keepdims=True)
    assert np.abs(err).max() < 1e-3
    cum = (series[0, -1] - series[0, 0]).numpy()
    gain = np.polyfit((pattern - pattern.mean()).ravel(), (cum - cum.mean()).ravel(), 1)[0]
    assert gain == pytest.approx(1.0, abs=1e-4)
    assert torch.all((detection >= 0) & (detection <= 1))
    assert torch.all(sigma > 0)


def test_export_load_round_trip_and_metadata(tmp_path):
    model = StackDenoiser().eval()
    path = export_model(model, stack_metadata(model, 64), tmp_path / "stack.pt")
    loaded = load_model(path)
    meta = loaded.metadata
    assert meta["kind"] == "stack" and meta["default_tile"] == 192 and meta["train_crop_px"] == 64
    assert meta["receptive_field_px"] == receptive_field_px()
    x = torch.randn(2, 9, 16, 16)
    x[:, 0] = 0
    z = torch.randn(2, 16, 16) * 100
    times = torch.arange(9, dtype=torch.float32)[None].expand(2, -1) * 12
    with torch.no_grad():
        a, b = model(x, z, times), loaded.module(x, z, times)
    for p, q in zip(a, b, strict=True):
        torch.testing.assert_close(p, q)


def test_engine_stack_path_is_exact_across_tiles_with_gaps(tmp_path):
    """A noise-free PWL signal comes back whole through tiling, blending and gaps."""
    model = StackDenoiser().eval()
    path = export_model(model, stack_metadata(model, 32), tmp_path / "stack.pt")
    ds = synthetic_dataset(n_dates=14, shape=(70, 90), noise_mm=0.0)
    disp = ds["displacement"].values.copy()
    disp[4:6, 10, 20] = np.nan  # a pixel missing on 2 of 14 dates keeps its outputs
    disp[1:13, 30, 40] = np.nan  # a pixel missing on 12 of 14 dates is dropped
    ds["displacement"].values[:] = disp
    out = denoise_dataset(ds, str(path), tile=32, overlap=8, progress=False)
    truth = disp[-1] - disp[0]
    cum = out["cumulative_deformation"].values
    assert np.isnan(cum[30, 40]) and np.isfinite(cum[10, 20])
    assert np.isnan(out["deformation"].values[4, 10, 20])
    ok = np.isfinite(cum) & np.isfinite(truth)
    err = (cum - truth)[ok]
    assert np.abs(err - np.median(err)).max() < 1e-3
    assert set(out.data_vars) >= {"detection", "uncertainty", "uncertainty_95"}
    assert out.attrs["insar_denoise_tile_px"] == 32


class _TileOffsets(torch.nn.Module):
    """The untrained (exact) stack model plus a constant per date that depends on the tile
    (its mean input): outputs defined up to a constant, as a trained model's are."""

    def __init__(self, metadata: dict) -> None:
        super().__init__()
        self.inner = StackDenoiser().eval()
        self.insar_metadata = metadata

    def forward(self, displacement, dem, times_days, date_var=None):
        series, detection, sigma = self.inner(displacement, dem, times_days, date_var)
        level = torch.nan_to_num(displacement).mean((-2, -1)) + 0.01 * dem.mean((-2, -1))[:, None]
        return series + 3.0 * level[..., None, None], detection, sigma


@pytest.mark.parametrize("chunk", [None, 40])
def test_engine_aligns_the_constant_of_each_tile(chunk):
    """Tiles whose series carry different constants are brought onto one another, within a
    block and across blocks (``chunk=40``: 2 x 3 blocks): the mosaic equals the truth up to
    one constant per date (no steps at tile or block seams)."""
    base = StackDenoiser().eval()
    model = _TileOffsets(stack_metadata(base, 32))
    ds = synthetic_dataset(n_dates=12, shape=(70, 90), noise_mm=0.0)
    out = denoise_dataset(ds, model, tile=32, overlap=8, chunk=chunk, progress=False)
    assert out.attrs["insar_denoise_chunk_px"] == (chunk or 144)
    disp = ds["displacement"].values
    err = out["deformation"].values - (disp - disp[:1])
    err -= np.median(err, axis=(1, 2), keepdims=True)
    assert np.abs(err).max() < 1e-3
    cum = out["cumulative_deformation"].values - (disp[-1] - disp[0])
    assert np.abs(cum - np.median(cum)).max() < 1e-3


def test_detection_is_the_gaussian_exceedance_probability():
    from scipy.stats import norm

    from insar_denoise.models.stack_denoiser import exceedance

    est = torch.tensor([0.0, 0.5, 1.0, 3.0, -2.0])
    sig = torch.tensor([0.5, 1.0, 0.2, 1.0, 0.7])
    ref = norm.sf(1.0, est.numpy(), sig.numpy()) + norm.cdf(-1.0, est.numpy(), sig.numpy())
    np.testing.assert_allclose(exceedance(est, sig, 1.0).numpy(), ref, atol=1e-6)
