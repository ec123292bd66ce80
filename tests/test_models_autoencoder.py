"""The scripted autoencoder: tile sizes, invariances of the built-in normalisation, holes."""

from __future__ import annotations

import pytest
import torch

from insar_denoise.models import DenoisingAutoencoder, build_untrained, receptive_field
from insar_denoise.models.autoencoder import temporal_kernels
from insar_denoise.models.normalization import deplane, fit_plane, robust_plane

WINDOW = 5


@pytest.fixture(scope="module")
def model() -> torch.jit.ScriptModule:
    return build_untrained(window=WINDOW, channels=(4, 8, 8, 8), seed=3)


def stack(h: int = 24, w: int = 32, b: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    disp = torch.randn(b, WINDOW, h, w, generator=g).cumsum(-1) * 3.0
    dem = torch.randn(b, h, w, generator=g).cumsum(-2).cumsum(-1) * 20.0 + 500.0
    return disp, dem


def ramp(h: int, w: int, offset: float, ax: float, ay: float) -> torch.Tensor:
    y = torch.arange(h, dtype=torch.float32).view(-1, 1)
    x = torch.arange(w, dtype=torch.float32).view(1, -1)
    return offset + ax * x + ay * y


@pytest.mark.parametrize("window", [1, 2, 5, 9, 12])
def test_temporal_kernels_shrink_the_window_to_one_date(window: int) -> None:
    kernels = temporal_kernels(window)
    assert sum(k - 1 for k in kernels) == window - 1 and min(kernels) >= 1


@pytest.mark.parametrize("shape", [(8, 8), (16, 40), (64, 24)])
def test_runs_on_tiles_that_are_multiples_of_tile_multiple(model, shape) -> None:
    disp, dem = stack(*shape)
    out = model(disp, dem)
    assert out.shape == (2, *shape) and torch.isfinite(out).all()
    assert model.tile_multiple == 8


@pytest.mark.parametrize("shape", [(12, 16), (16, 20), (4, 8)])
def test_rejects_other_tile_sizes_clearly(model, shape) -> None:
    disp, dem = stack(*shape)
    with pytest.raises(Exception, match="multiples of 8"):
        model(disp, dem)


def test_rejects_wrong_window_and_dem_shape(model) -> None:
    disp, dem = stack()
    with pytest.raises(Exception, match="windows of 5 dates"):
        model(disp[:, :4], dem)
    with pytest.raises(Exception, match="does not match"):
        model(disp, dem[:, :16])


def test_output_unchanged_by_offset_and_ramp_on_a_date(model) -> None:
    disp, dem = stack()
    ref = model(disp, dem)
    shifted = disp.clone()
    shifted[:, 2] += 40.0
    shifted[:, 4] += ramp(24, 32, -12.0, 0.8, -1.3)
    out = model(shifted, dem)
    assert ref.abs().max() > 1e-2  # the test is not trivially about a zero output
    assert (out - ref).abs().max() <= 1e-4


@pytest.mark.parametrize("k", [0.01, 3.0, 250.0])
def test_scale_equivariance(model, k: float) -> None:
    disp, dem = stack()
    ref = model(disp, dem)
    out = model(disp * k, dem)
    torch.testing.assert_close(out, ref * k, rtol=1e-4, atol=1e-5 * k)


def test_holes_do_not_spread_nan(model) -> None:
    disp, dem = stack()
    disp[0, 1, 3:9, 5:12] = float("nan")  # a hole in one date only
    disp[1, :, 10:14, 20:26] = float("nan")  # a hole in every date
    dem[0, 0:2, 0:3] = float("nan")
    out = model(disp, dem)
    assert torch.isfinite(out[0]).all()
    nan = torch.isnan(out[1])
    assert nan[10:14, 20:26].all() and int(nan.sum()) == 4 * 6


def test_holes_filled_values_do_not_matter(model) -> None:
    disp, dem = stack()
    a = disp.clone()
    a[:, 2, 4:10, 4:10] = float("nan")
    b = disp.clone()
    b[:, 2, 4:10, 4:10] = 1e6  # not used: overwritten by NaN below
    b[:, 2, 4:10, 4:10] = float("nan")
    torch.testing.assert_close(model(a, dem), model(b, dem))


def test_output_has_no_plane_on_valid_pixels(model) -> None:
    disp, dem = stack()
    out = model(disp, dem)
    valid = torch.ones_like(out, dtype=torch.bool)
    assert fit_plane(out, valid.double()).abs().max() < 1e-4


def test_robust_plane_resists_outliers() -> None:
    h, w = 32, 32
    plane = ramp(h, w, 5.0, 0.3, -0.2).double()
    x = plane.expand(1, 1, h, w).clone()
    x[..., :4, :4] += 500.0  # 1.6 % gross outliers
    valid = torch.ones_like(x, dtype=torch.bool)
    err_ls = (robust_plane(x, valid, n_irls=0) - plane).abs().max()
    err_robust = (robust_plane(x, valid) - plane).abs().max()
    assert err_ls > 10.0 and err_robust < 0.01 * err_ls


def test_deplane_matches_lstsq_reference() -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.randn(1, 16, 24, generator=g, dtype=torch.float64)
    valid = torch.rand(1, 16, 24, generator=g) > 0.3
    out = deplane(v, valid)
    yy, xx = torch.meshgrid(
        torch.linspace(-1, 1, 16, dtype=torch.float64),
        torch.linspace(-1, 1, 24, dtype=torch.float64),
        indexing="ij",
    )
    a = torch.stack([torch.ones_like(xx), xx, yy], -1)[valid[0]]
    coef = torch.linalg.lstsq(a, v[0][valid[0]].unsqueeze(-1)).solution
    ref = v[0][valid[0]] - (a @ coef).squeeze(-1)
    torch.testing.assert_close(out[0][valid[0]], ref, atol=1e-8, rtol=0)
    assert torch.isnan(out[~valid]).all()


def test_receptive_field_bounds_the_network_footprint() -> None:
    torch.manual_seed(0)
    net = DenoisingAutoencoder(window=WINDOW, channels=(4, 8, 8, 8)).eval()
    rf = receptive_field(net)
    size = 128
    x = torch.randn(1, WINDOW, size, size)
    valid = torch.ones_like(x, dtype=torch.bool)
    dem = torch.zeros(1, size, size)
    with torch.no_grad():
        ref = net.network(x, valid, dem)
        x2 = x.clone()
        x2[0, 2, 64, 64] += 100.0
        diff = (net.network(x2, valid, dem) - ref).abs()[0] > 0
    ys, xs = torch.nonzero(diff, as_tuple=True)
    assert diff[64, 64]
    extent = max(int(ys.max() - ys.min()), int(xs.max() - xs.min())) + 1
    assert extent <= rf
    assert extent >= rf // 2
