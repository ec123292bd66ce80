"""A small convolutional variance head: per-pixel 1-sigma of the model's cumulative map.

The denoiser is trained for the mean (MSE); where it is unsure whether a blob is deformation
or atmosphere it shrinks the blob, and the error it leaves is a missed signal that nothing in
its output marks. The variance head looks at the same evidence (the raw cumulative map, the
linear-rate stack of the window, the model's estimate, the DEM and the validity) and is
trained with the Gaussian negative log-likelihood ``log sigma + e^2 / (2 sigma^2)`` of the
model's error ``e`` on simulated scenes (heteroscedastic regression: Nix & Weigend 1994;
Kendall & Gal 2017, eq. 5), so that it learns ``E[e^2 | evidence]``. Its inputs are divided
by a per-scene noise scale and its output multiplied back, so it is scale-equivariant.

Only torch and numpy are needed (it trains on the device machine too).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from insar_denoise.atomic import write_atomic
from insar_denoise.models.normalization import deplane, normalize_dem, robust_scale
from insar_denoise.models.registry import LoadedModel

#: input channels, in order
CHANNELS = ("model", "raw", "stack", "dem", "valid")
FORMAT = "insar-denoise-sigma-head"


def stack_cumulative(displacement: Tensor, times_days: Tensor) -> Tensor:
    """Linear-rate stack of each scene, ``(B, N, H, W) -> (B, H, W)`` mm (0 where a pixel has
    fewer than two finite dates): :func:`insar_denoise.baselines.linear_rate_stack`."""
    from insar_denoise.baselines import linear_rate_stack

    b, n, h, w = displacement.shape
    dates_first = displacement.double().transpose(0, 1).reshape(n, b * h, w)
    return torch.nan_to_num(linear_rate_stack(dates_first, times_days.double())).view(b, h, w)


def head_inputs(
    estimate: Tensor, raw: Tensor, stack: Tensor, dem: Tensor, valid: Tensor
) -> tuple[Tensor, Tensor]:
    """Normalised ``(B, 5, H, W)`` inputs and the per-scene scale ``(B,)`` (mm).

    ``estimate``, ``raw`` and ``stack`` are ``(B, H, W)`` cumulative maps in mm (the model's,
    last minus first date, linear-rate stack); each is de-planed on ``valid`` and divided by
    the robust scale of ``raw - estimate`` (the atmosphere the model removed).
    """
    valid = valid & torch.isfinite(estimate) & torch.isfinite(raw) & torch.isfinite(stack)
    maps = [deplane(torch.nan_to_num(a).double(), valid) for a in (estimate, raw, stack)]
    scale = robust_scale(torch.nan_to_num(maps[1] - maps[0]), valid).double()
    s = scale.view(-1, 1, 1)
    chans = [torch.nan_to_num(a / s) for a in maps]
    chans.append(normalize_dem(torch.where(valid, dem, torch.nan)).double())
    chans.append(valid.double())
    return torch.stack(chans, 1).float(), scale.float()


class SigmaHead(nn.Module):
    """``(B, 5, H, W)`` normalised evidence -> ``(B, H, W)`` log(sigma / scale).

    Full-resolution stem, a half-resolution trunk of dilated residual convolutions (receptive
    field about 70 px), and a full-resolution head on the upsampled trunk and the stem.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        c = int(width)
        self.stem = nn.Sequential(
            nn.Conv2d(len(CHANNELS), c, 3, padding=1), nn.GELU(), nn.Conv2d(c, c, 3, padding=1)
        )
        self.down = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.trunk = nn.ModuleList(
            nn.Conv2d(2 * c, 2 * c, 3, padding=d, dilation=d) for d in (1, 2, 4, 8)
        )
        self.head = nn.Sequential(nn.Conv2d(3 * c, c, 3, padding=1), nn.GELU(), nn.Conv2d(c, 1, 1))
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2], x.shape[-1]
        f = self.act(self.stem(x))
        g = self.act(self.down(nn.functional.avg_pool2d(f, 2, ceil_mode=True)))
        for conv in self.trunk:
            g = g + self.act(conv(g))
        g = nn.functional.interpolate(g, size=(h, w), mode="bilinear", align_corners=False)
        out = self.head(torch.cat([f, g], 1))[:, 0]
        return out.clamp(-6.0, 6.0)  # sigma within e^-6 .. e^6 times the scene scale


def gaussian_nll(log_sigma: Tensor, error: Tensor, mask: Tensor) -> Tensor:
    """Mean over ``mask`` of ``log sigma + e^2 / (2 sigma^2)`` (the error in scale units)."""
    # Heteroscedastic Gaussian likelihood (Nix & Weigend 1994; Kendall & Gal 2017, eq. 5)
    nll = log_sigma + 0.5 * error**2 * torch.exp(-2.0 * log_sigma)
    return nll[mask].mean()


def predict_sigma(head: Any, inputs: Tensor, scale: Tensor, batch: int = 32) -> Tensor:
    """``(B, H, W)`` 1-sigma in mm from :func:`head_inputs` (no gradient)."""
    outs = []
    with torch.no_grad():
        for i in range(0, inputs.shape[0], batch):
            outs.append(torch.exp(head(inputs[i : i + batch]).double()))
    return torch.cat(outs) * scale.double().view(-1, 1, 1)


def examples(
    model: LoadedModel, n_per_amplitude: int, seed: int, size: int = 64
) -> dict[str, Tensor]:
    """Benchmark-design scenes with the model's single-pass estimate: head inputs and errors.

    Returns ``inputs`` ``(S, 5, H, W)``, ``scale`` ``(S,)``, the de-planed error ``error``
    (truth minus estimate, mm) and ``mask`` (pixels where both are defined).
    """
    from insar_denoise.inference.predict import predict_in_batches
    from insar_denoise.scoring import benchmark_scenes as scn

    window = int(model.metadata["window"])
    sc = scn.generate(n_per_amplitude, seed, size=size, n_dates=window)
    est = predict_in_batches(model, sc.displacement, sc.dem, 32).double()
    raw = (sc.displacement[:, -1] - sc.displacement[:, 0]).double()
    stack = stack_cumulative(sc.displacement, torch.from_numpy(sc.times_days))
    mask = sc.valid & torch.isfinite(sc.cumulative) & torch.isfinite(est)
    inputs, scale = head_inputs(est, raw, stack, sc.dem, mask)
    error = deplane(sc.cumulative.double(), mask) - deplane(torch.nan_to_num(est), mask)
    return {"inputs": inputs, "scale": scale, "error": error.float(), "mask": mask}


def _dihedral(x: Tensor, k: int, flip: bool) -> Tensor:
    x = torch.flip(x, dims=(-1,)) if flip else x
    return torch.rot90(x, k, dims=(-2, -1))


def train_head(
    data: dict[str, Tensor],
    *,
    steps: int,
    batch: int = 32,
    lr: float = 2e-3,
    seed: int = 0,
    head: SigmaHead | None = None,
    log_every: int = 200,
    log: Any = print,
) -> SigmaHead:
    """Fit :class:`SigmaHead` by Gaussian NLL with random dihedral augmentation (cosine lr)."""
    gen = torch.Generator().manual_seed(seed)
    head = SigmaHead() if head is None else head
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, steps))
    n = data["inputs"].shape[0]
    err_rel = data["error"] / data["scale"].view(-1, 1, 1)
    running = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, n, (batch,), generator=gen)
        k, flip = (
            int(torch.randint(0, 4, (1,), generator=gen)),
            bool(torch.rand(1, generator=gen) < 0.5),
        )
        x = _dihedral(data["inputs"][idx], k, flip)
        e = _dihedral(torch.nan_to_num(err_rel[idx]), k, flip)
        m = _dihedral(data["mask"][idx], k, flip)
        loss = gaussian_nll(head(x), e, m)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(head.parameters(), 5.0)
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % log_every == 0:
            log(f"step {step}/{steps} nll {np.mean(running):.4f}")
            running = []
    return head.eval()


def export_head(head: SigmaHead, metadata: dict[str, Any], path: str | Path) -> Path:
    """Write the scripted head with ``metadata.json`` (format, model sha256, training facts)."""
    path = Path(path)
    from insar_denoise.models.registry import weights_sha256

    meta = {
        "format": FORMAT,
        "channels": list(CHANNELS),
        "sha256": weights_sha256(head),
        **metadata,
    }
    scripted = torch.jit.script(head.eval())
    buf = io.BytesIO()
    torch.jit.save(scripted, buf, _extra_files={"metadata.json": json.dumps(meta)})
    data = buf.getvalue()
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def head_path(model_path: str | Path) -> Path:
    """``<dir>/<stem>.sigma.pt`` next to a model file."""
    p = Path(model_path)
    return p.with_name(f"{p.stem}.sigma.pt")


def load_head(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """The scripted head and its metadata."""
    extra = {"metadata.json": ""}
    head = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return head.eval(), json.loads(extra["metadata.json"])


def sigma_map(
    head: Any,
    estimate: np.ndarray,
    raw: np.ndarray,
    stack: np.ndarray,
    dem: np.ndarray,
    valid: np.ndarray,
    *,
    tile: int = 64,
    overlap: int = 32,
    batch: int = 64,
) -> np.ndarray:
    """1-sigma (mm) of a whole ``(H, W)`` scene from the head, NaN where not ``valid``.

    The head runs on ``tile`` px windows, each normalised on its own as in training (the
    head was trained on 64 px scenes), on the inference engine's global tile grid (the scene
    reflected at its edges); the window variances are blended with the engine's Hann weights.
    Grid, padding and weights are the engine's (``tiling``, ``blending``); only the batch loop
    is its own, since the engine's block runners run a denoiser on dask blocks, not a head on
    in-memory windows.
    """
    from insar_denoise.inference.blending import Mosaic, axis_weights
    from insar_denoise.inference.tiling import grid_starts, pad_block

    h, w = estimate.shape
    pad = overlap
    ys, xs = grid_starts(h, tile, overlap, pad), grid_starts(w, tile, overlap, pad)
    pad_y, pad_x = (pad, ys[-1] + tile - h), (pad, xs[-1] + tile - w)
    maps = np.stack([estimate, raw, stack, dem]).astype(np.float64)
    ok = pad_block(valid & np.isfinite(maps).all(0), pad_y, pad_x)
    maps = pad_block(np.nan_to_num(maps), pad_y, pad_x)
    mosaic = Mosaic(1, (h, w))
    margin = overlap // 4
    wy = [axis_weights(tile, overlap, margin, g > 0, g < len(ys) - 1) for g in range(len(ys))]
    wx = [axis_weights(tile, overlap, margin, g > 0, g < len(xs) - 1) for g in range(len(xs))]
    jobs = [(gy, gx) for gy in range(len(ys)) for gx in range(len(xs))]
    for i in range(0, len(jobs), batch):
        part = jobs[i : i + batch]
        cut = [(ys[gy] + pad, xs[gx] + pad) for gy, gx in part]
        win = torch.from_numpy(np.stack([maps[:, a : a + tile, b : b + tile] for a, b in cut]))
        vok = torch.from_numpy(np.stack([ok[a : a + tile, b : b + tile] for a, b in cut]))
        inputs, scale = head_inputs(win[:, 0], win[:, 1], win[:, 2], win[:, 3], vok)
        var = (predict_sigma(head, inputs, scale) ** 2).numpy()
        for (gy, gx), v in zip(part, var, strict=True):
            weight = np.outer(wy[gy], wx[gx])
            mosaic.add(0, v, weight, ys[gy], xs[gx])
            mosaic.add_weight(weight, ys[gy], xs[gx])
    sigma = np.sqrt(mosaic.result()[0])
    return np.where(valid, sigma, np.nan)
