"""Small helpers for tests and benchmarks: a tiny scripted model and synthetic Datasets.

The tiny model is fully convolutional (receptive field 5 px), so a tiled run must equal an
untiled one away from the scene edges; it is not trained and not meant for real data.
"""

from __future__ import annotations

import numpy as np
import rioxarray  # noqa: F401  registers ds.rio
import torch
import xarray as xr
from torch import nn

from insar_denoise.io.dataset import dataset_from_arrays
from insar_denoise.models.registry import LoadedModel

TINY_METADATA = {
    "window": 5,
    "tile_multiple": 4,
    "receptive_field_px": 5,
    "default_tile": 32,
    "default_overlap": 8,
}


class TinyConvModel(nn.Module):
    """``last - first`` date plus a small fixed 2-layer 3x3 convolution of the window and DEM."""

    def __init__(self, window: int = 5, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(window + 1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 1, 3, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(0.2 * torch.randn(p.shape, generator=gen))

    def forward(self, displacement: torch.Tensor, dem: torch.Tensor) -> torch.Tensor:
        x = torch.nan_to_num(displacement.float())
        inp = torch.cat([x, 0.001 * dem.float()[:, None]], dim=1)
        out = self.conv2(torch.tanh(self.conv1(inp)))[:, 0]
        return out + x[:, -1] - x[:, 0]


class DifferenceModel(nn.Module):
    """Returns exactly ``last - first`` date: an oracle when the input is noise-free."""

    def forward(self, displacement: torch.Tensor, dem: torch.Tensor) -> torch.Tensor:
        return displacement[:, -1] - displacement[:, 0]


def tiny_model(window: int = 5, seed: int = 0, exact: bool = False) -> LoadedModel:
    """A scripted :class:`TinyConvModel` (or :class:`DifferenceModel`) with metadata."""
    net = DifferenceModel() if exact else TinyConvModel(window, seed)
    meta = {**TINY_METADATA, "window": window}
    return LoadedModel(torch.jit.script(net.eval()), meta, "tiny-test-model")


def synthetic_dataset(
    n_dates: int = 8,
    shape: tuple[int, int] = (48, 40),
    seed: int = 0,
    crs: str | None = "EPSG:32611",
    noise_mm: float = 1.0,
) -> xr.Dataset:
    """A canonical Dataset: a Gaussian bump growing linearly in time plus noise (mm)."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    bump = 10.0 * np.exp(-((yy - h / 2) ** 2 + (xx - w / 2) ** 2) / (2 * (min(h, w) / 5) ** 2))
    frac = np.linspace(0.0, 1.0, n_dates)
    disp = frac[:, None, None] * bump[None] + noise_mm * rng.normal(size=(n_dates, h, w))
    disp -= disp[:1]
    dem = 500 + 200 * np.sin(yy / 9.0) + 100 * np.cos(xx / 7.0)
    time = np.datetime64("2020-01-01") + 12 * np.arange(n_dates).astype("timedelta64[D]")
    return dataset_from_arrays(
        disp.astype(np.float32),
        dem.astype(np.float32),
        times=time,
        spacing=30.0,
        origin=(500_000.0, 4_000_000.0),
        crs=crs,
    )
