"""Training of the whole-stack model (:class:`insar_denoise.models.stack_denoiser.StackDenoiser`).

Every batch draws its own number of dates (log-uniform in ``dates``), regular or irregular
sampling, and gaps in time (blobs of pixels missing on some dates), so one network serves
any stack. The loss is in units of the projection's own noise (the model's ``scale``): the
squared error of the denoised series against the true series (each date's residual mean
removed: outputs are defined up to a constant), the same for the cumulative map, and a
binary cross-entropy of the detection map against ``|true cumulative| > detect_mm``.

Torch and numpy only (runs on the GPU machine too). Resume state: one file, overwritten.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from insar_denoise.atomic import write_atomic
from insar_denoise.models.stack_denoiser import StackDenoiser
from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.synth.turbulence import spectral_field


def _default_sim() -> dict[str, Any]:
    return {
        "source_probs": {
            "none": 0.12,
            "okada_strike_slip": 0.18,
            "okada_dip_slip": 0.17,
            "okada_tensile": 0.08,
            "mogi": 0.3,
            "bowl": 0.15,
        },
        "amplitude_mm": (0.5, 80.0),
        "fault_top_depth_km": (0.02, 4.0),
        "mogi_depth_km": (0.5, 8.0),
        "fault_length_km": (0.5, 20.0),
    }


def _creep_sim() -> dict[str, Any]:
    # shallow creep as on the North Anatolian Fault (Rouet-Leduc et al. 2021, Nat. Commun. 12, 6480)
    return {
        "source_probs": {"none": 0.1, "okada_strike_slip": 0.9},
        "fault_top_depth_km": (0.0, 0.3),
        "fault_length_km": (15.0, 40.0),
        "fault_dip_deg": (75.0, 90.0),
        "history_probs": {"linear": 1.0},
        "amplitude_mm": (0.5, 40.0),
    }


@dataclass
class StackTrainConfig:
    """Options of a whole-stack training run (units in names)."""

    seed: int = 0
    crop: int = 64
    dates: tuple[int, int] = (9, 72)
    irregular_prob: float = 0.3
    gap_prob: float = 0.3
    batch_size: int = 12
    lr: float = 1e-3
    min_lr: float = 1e-4
    total_steps: int = 20000
    segments: int = 4
    widths: tuple[int, int, int] = (32, 48, 64)
    detect_mm: float = 1.0
    w_cum: float = 2.0
    w_det: float = 0.0  # detection comes from the sigma head (see StackDenoiser.forward)
    w_sig: float = 0.1
    #: weight of the squared error of the cumulative's neighbour differences (noise units):
    #: sharp structure (a creeping fault's step) counts beside the broad error
    w_grad: float = 0.0
    #: weight of the gain term: ``(1 - gain)^2`` of each example whose true cumulative stands
    #: out of the projection's noise (its RMS over the crop above ``gain_min_snr`` noise
    #: stds), the gain being the slope of the output on the truth; the squared errors alone
    #: reward shrinking what the prior makes rare (session 19's GPU continuation)
    w_gain: float = 0.0
    gain_min_snr: float = 0.5
    checkpoint_every_s: float = 300.0
    val_every_steps: int = 500
    val_examples: int = 48
    val_seed: int = 20261202
    sim: dict[str, Any] = field(default_factory=_default_sim)
    #: share of batches drawn from ``creep_sim`` (long surface-reaching strike-slip faults
    #: creeping steadily: sharp steps along a line, rare in ``sim``)
    creep_prob: float = 0.0
    creep_sim: dict[str, Any] = field(default_factory=_creep_sim)

    def sim_config(self, n_dates: int, irregular: bool, creep: bool = False) -> SimConfig:
        base = dataclasses.asdict(SimConfig())
        prior = {**self.sim, **self.creep_sim} if creep else self.sim
        over = {**prior, "size": self.crop, "n_dates": n_dates, "irregular_sampling": irregular}
        return SimConfig.from_dict({k: v for k, v in {**base, **over}.items()})


def temporal_gaps(gen: torch.Generator, disp: Tensor, prob: float) -> Tensor:
    """In a share ``prob`` of examples, blobs of pixels go missing (NaN) on ~15 % of dates."""
    b, t, h, w = disp.shape
    has = torch.rand(b, generator=gen) < prob
    idx = torch.nonzero(has).flatten()
    if idx.numel() == 0 or t < 3:
        return disp
    blob = spectral_field(gen, (idx.numel(), t), h, torch.tensor(3.5), pixel_spacing_m=90.0)
    on = torch.rand((idx.numel(), t, 1, 1), generator=gen) < 0.15
    on[:, 0] = False
    gone = (blob > 0.8) & on
    out = disp.clone()
    sub = out[idx]
    sub[gone] = float("nan")
    out[idx] = sub
    return out


def draw(cfg: StackTrainConfig, gen: torch.Generator, batch: int) -> dict[str, Tensor]:
    """One training batch: displacement with gaps, DEM, times, true series and validity."""
    lo, hi = math.log(cfg.dates[0]), math.log(cfg.dates[1])
    n_dates = int(round(math.exp(lo + (hi - lo) * float(torch.rand(1, generator=gen)))))
    irregular = bool(torch.rand(1, generator=gen) < cfg.irregular_prob)
    creep = cfg.creep_prob > 0 and bool(torch.rand(1, generator=gen) < cfg.creep_prob)
    sim = cfg.sim_config(n_dates, irregular, creep)
    sb = simulate_batch(sim, batch, generator=gen)
    disp = temporal_gaps(gen, sb.displacement, cfg.gap_prob)
    times = torch.tensor(sim.times_days(), dtype=torch.float32)[None].expand(batch, -1)
    return {
        "displacement": disp,
        "dem": sb.dem,
        "times": times.contiguous(),
        "truth": sb.deformation,
        "valid": sb.valid,
    }


def _demeaned(r: Tensor, m: Tensor) -> Tensor:
    """Residual with its masked mean over the last two dims removed, zero outside ``m``."""
    mean = (r * m).sum((-2, -1), keepdim=True) / m.sum((-2, -1), keepdim=True).clamp_min(1.0)
    return (r - mean) * m


def _difference_loss(r: Tensor, m: Tensor) -> Tensor:
    """Mean squared neighbour difference (x and y) of a residual map ``(B, H, W)`` over pairs
    of pixels both inside ``m``."""
    mx = m[..., 1:] * m[..., :-1]
    my = m[..., 1:, :] * m[..., :-1, :]
    sx = ((r[..., 1:] - r[..., :-1]) ** 2 * mx).sum()
    sy = ((r[..., 1:, :] - r[..., :-1, :]) ** 2 * my).sum()
    return (sx + sy) / (mx.sum() + my.sum()).clamp_min(1.0)


def _gain_loss(cum: Tensor, true_cum: Tensor, m2: Tensor, scale: Tensor, min_snr: float) -> Tensor:
    """Mean ``(1 - gain)^2`` over the examples whose true cumulative's RMS (masked mean
    removed) exceeds ``min_snr`` times ``scale``; gain: the slope of ``cum`` on it."""
    o, t = _demeaned(cum, m2), _demeaned(true_cum, m2)
    tt = (t * t).sum((-2, -1))
    gain = (o * t).sum((-2, -1)) / tt.clamp_min(1e-6)
    rms = (tt / m2.sum((-2, -1)).clamp_min(1.0)).sqrt()
    strong = (rms > min_snr * scale).float()
    return ((1.0 - gain) ** 2 * strong).sum() / strong.sum().clamp_min(1.0)


def losses(model: StackDenoiser, batch: dict[str, Tensor], cfg: StackTrainConfig) -> dict:
    """Series, cumulative and detection losses (noise units) and the cumulative RMSE (mm)."""
    cleaned, logit, log_sigma, ramps, scale, mask = model.coefficients(
        batch["displacement"], batch["dem"], batch["times"]
    )
    truth = batch["truth"]
    m2 = mask * batch["valid"].float()
    m3 = m2[:, None] * torch.isfinite(batch["displacement"]).float()
    s2 = scale[:, None, None]
    series = torch.einsum("btk,bkhw->bthw", ramps, cleaned)
    r_series = _demeaned((series - truth) / s2[:, None], m3)
    l_series = (r_series**2).sum() / m3.sum().clamp_min(1.0)
    cum = cleaned.sum(dim=1)
    true_cum = truth[:, -1] - truth[:, 0]
    r_cum = _demeaned((cum - true_cum) / s2, m2)
    l_cum = (r_cum**2).sum() / m2.sum().clamp_min(1.0)
    target = (true_cum.abs() > cfg.detect_mm).float()
    bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    l_det = (bce * m2).sum() / m2.sum().clamp_min(1.0)
    # Gaussian likelihood of the (detached) cumulative error: the uncertainty head
    nll = 0.5 * r_cum.detach() ** 2 * torch.exp(-2.0 * log_sigma) + log_sigma
    l_sig = (nll * m2).sum() / m2.sum().clamp_min(1.0)
    total = l_series + cfg.w_cum * l_cum + cfg.w_det * l_det + cfg.w_sig * l_sig
    l_grad = _difference_loss(r_cum, m2) if cfg.w_grad > 0 else torch.zeros(())
    total = total + cfg.w_grad * l_grad
    if cfg.w_gain > 0:
        total = total + cfg.w_gain * _gain_loss(cum, true_cum, m2, scale, cfg.gain_min_snr)
    with torch.no_grad():
        rmse = ((_demeaned(cum - true_cum, m2) ** 2).sum() / m2.sum().clamp_min(1)).sqrt()
    return {
        "total": total,
        "series": l_series,
        "cum": l_cum,
        "det": l_det,
        "sig": l_sig,
        "rmse_mm": rmse,
    }


def validation_set(cfg: StackTrainConfig) -> list[dict[str, Tensor]]:
    """Fixed validation batches (same for every run with the same ``val_seed``)."""
    gen = torch.Generator().manual_seed(cfg.val_seed)
    return [draw(cfg, gen, 8) for _ in range(max(1, cfg.val_examples // 8))]


@torch.no_grad()
def validate(model: StackDenoiser, val: list[dict[str, Tensor]], cfg: StackTrainConfig) -> dict:
    """Mean losses over the validation set, and the same for the untrained projection."""
    model.eval()
    out: dict[str, float] = {}
    for batch in val:
        for key, value in losses(model, batch, cfg).items():
            out[key] = out.get(key, 0.0) + float(value) / len(val)
    model.train()
    return out


def learning_rate(cfg: StackTrainConfig, step: int) -> float:
    """Cosine from ``lr`` to ``min_lr`` over ``total_steps`` (100-step warm-up)."""
    warm = min(1.0, (step + 1) / 100.0)
    frac = min(1.0, step / max(1, cfg.total_steps))
    return warm * (cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * frac)))


def train(cfg: StackTrainConfig, out_dir: str | Path, max_seconds: float | None = None) -> Path:
    """Train (or resume from ``out_dir/resume.pt``) and return the resume file's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    resume = out / "resume.pt"
    torch.manual_seed(cfg.seed)  # the initial weights
    model = StackDenoiser(cfg.segments, cfg.widths, cfg.detect_mm)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, best = 0, math.inf
    if resume.exists():
        state = torch.load(resume, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        step, best = int(state["step"]), float(state["best"])
    val = validation_set(cfg)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))  # save, then exit
    start = last_ckpt = time.time()
    log_path = out / "log.csv"
    new_log = not log_path.exists()
    with open(log_path, "a", newline="") as fh:
        writer = csv.writer(fh)
        if new_log:
            writer.writerow(
                [
                    "step",
                    "examples",
                    "lr",
                    "split",
                    "total",
                    "series",
                    "cum",
                    "det",
                    "sig",
                    "rmse_mm",
                    "wall_s",
                ]
            )
        if step == 0:
            v = validate(model, val, cfg)
            writer.writerow(
                [
                    0,
                    0,
                    0,
                    "val",
                    *(f"{v[k]:.5f}" for k in ("total", "series", "cum", "det", "sig", "rmse_mm")),
                    0,
                ]
            )
        model.train()
        while step < cfg.total_steps:
            lr = learning_rate(cfg, step)
            for g in opt.param_groups:
                g["lr"] = lr
            batch = draw(cfg, gen, cfg.batch_size)
            loss = losses(model, batch, cfg)
            opt.zero_grad()
            loss["total"].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            if step % 20 == 0:
                writer.writerow(
                    [
                        step,
                        step * cfg.batch_size,
                        f"{lr:.2e}",
                        "train",
                        *(
                            f"{float(loss[k].detach()):.5f}"
                            for k in ("total", "series", "cum", "det", "sig", "rmse_mm")
                        ),
                        f"{time.time() - start:.0f}",
                    ]
                )
                fh.flush()
            done = stop["now"] or (max_seconds is not None and time.time() - start > max_seconds)
            if step % cfg.val_every_steps == 0 or done or step == cfg.total_steps:
                v = validate(model, val, cfg)
                writer.writerow(
                    [
                        step,
                        step * cfg.batch_size,
                        f"{lr:.2e}",
                        "val",
                        *(
                            f"{v[k]:.5f}"
                            for k in ("total", "series", "cum", "det", "sig", "rmse_mm")
                        ),
                        f"{time.time() - start:.0f}",
                    ]
                )
                fh.flush()
                if v["total"] < best:
                    best = v["total"]
                    torch.save(model.state_dict(), out / "best.pt")
            if time.time() - last_ckpt > cfg.checkpoint_every_s or done or step == cfg.total_steps:
                save_state(resume, model, opt, gen, step, best, cfg)
                last_ckpt = time.time()
            if done:
                break
    return resume


def save_state(
    path: Path,
    model,
    opt,
    gen,
    step: int,
    best: float,
    cfg: StackTrainConfig,
    examples: int | None = None,
) -> None:
    """Write the resume state (weights on the CPU, optimiser, generator, step, best
    validation loss, config) atomically; ``examples``: the count when batches differed (a
    GPU continuation, ``scripts/train_stack_device.py``)."""
    state = {
        "model": {k: t.cpu() for k, t in model.state_dict().items()},
        "opt": opt.state_dict(),
        "gen": gen.get_state(),
        "step": step,
        "best": best,
        "config": dataclasses.asdict(cfg),
    }
    if examples is not None:
        state["examples"] = examples
    write_atomic(path, lambda tmp: torch.save(state, tmp))
