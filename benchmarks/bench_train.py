"""Training throughput (examples/s) of the autoencoder for a few sizes and crops.

    python benchmarks/bench_train.py [--threads 1] [--steps 3] [--batch 8]

Prints a table and writes ``experiments/benchmarks/bench_train.json``. Each case times a few
optimiser steps (forward with the built-in normalisation, loss, backward, AdamW) on one
fixed random batch after one warm-up step, so the simulator is not included. Also counts
the forward FLOPs of one 128 x 128 tile (2 x multiply-accumulates of the convolutions).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from insar_denoise.models import DenoisingAutoencoder, count_parameters, receptive_field
from insar_denoise.training.trainer import loss_terms

SIZES = {
    "0.2M": (12, 24, 48, 80),
    "0.35M (default)": (16, 32, 64, 96),
    "0.6M": (24, 48, 80, 128),
    "1.3M": (32, 64, 112, 192),
}
CROPS = (64, 128)
OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "bench_train.json"


def conv_flops(model: DenoisingAutoencoder, size: int = 128, window: int = 9) -> int:
    """Forward FLOPs (2 x MACs) of the convolutions for one ``size`` x ``size`` tile."""
    total = 0

    def hook(mod, inputs, output) -> None:
        nonlocal total
        k = 1
        for s in mod.kernel_size:
            k *= s
        total += 2 * output.numel() * (mod.in_channels // mod.groups) * k

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))
    ]
    with torch.no_grad():
        model(torch.randn(1, window, size, size), torch.randn(1, size, size) * 100)
    for h in handles:
        h.remove()
    return total


def bench(channels, crop: int, batch: int, steps: int, bf16: bool = False) -> float:
    torch.manual_seed(0)
    model = DenoisingAutoencoder(9, channels)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    disp = torch.randn(batch, 9, crop, crop).cumsum(-1)
    dem = torch.randn(batch, crop, crop).cumsum(-1) * 30
    truth = torch.randn(batch, crop, crop)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred, scale = model.forward_with_scale(disp, dem)
        loss = loss_terms(pred.float(), scale, truth, torch.isfinite(pred), 0.5).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--bf16", action="store_true", help="also time bf16 autocast (default size)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name, channels in SIZES.items():
        model = DenoisingAutoencoder(9, channels)
        row = {
            "name": name,
            "channels": list(channels),
            "params": count_parameters(model),
            "receptive_field_px": receptive_field(model),
            "gflops_fwd_128": conv_flops(model) / 1e9,
        }
        for crop in CROPS:
            row[f"ex_per_s_{crop}"] = bench(channels, crop, args.batch, args.steps)
        if args.bf16 and name.endswith("(default)"):
            row["ex_per_s_64_bf16"] = bench(channels, 64, args.batch, args.steps, bf16=True)
        rows.append(row)
    print("| model | params | RF (px) | GFLOP fwd/128² | ex/s 64² | ex/s 128² |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['name']} | {r['params']:,} | {r['receptive_field_px']} | "
            f"{r['gflops_fwd_128']:.2f} | {r['ex_per_s_64']:.1f} | {r['ex_per_s_128']:.1f} |"
        )
    result = {
        "threads": args.threads,
        "batch": args.batch,
        "steps": args.steps,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": torch.get_num_threads(),
        "rows": rows,
        "note": "timings on a shared 2-core machine; other jobs were running",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
