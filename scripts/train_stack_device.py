"""Continue the whole-stack model's training on a lent GPU machine (torch + numpy only).

The device tool copies the working tree; this script imports the package from it (no
install), resumes ``experiments/training/stack_resume.pt`` (or ``--resume``), and trains for
``--seconds`` of wall time with a warm-restart cosine schedule over that time (``--lr`` to
``--min-lr``). Batches come from the simulator in ``--workers`` processes (one date count
per batch, as on the CPU); the network steps on the GPU. Every ``--save-every`` seconds the
resume state (the CPU trainer's format: ``scripts/train_stack.py release`` reads it), the best
validation weights and the log are copied atomically to ``--out``.

    python scripts/train_stack_device.py --out "$OUT" --seconds 420 --batch 48 --workers 14
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from train_device import use_source_tree  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Train for the time box; the files land in ``--out``."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--resume", default=str(ROOT / "experiments/training/stack_resume.pt"))
    p.add_argument("--seconds", type=float, default=420.0)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--lr", type=float, default=7e-4)
    p.add_argument("--min-lr", type=float, default=5e-5)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    p.add_argument("--val-every", type=float, default=60.0)
    p.add_argument("--save-every", type=float, default=60.0)
    p.add_argument("--device", default="cuda")
    args = p.parse_args(argv)
    use_source_tree()
    import torch

    from insar_denoise.atomic import write_atomic
    from insar_denoise.models.stack_denoiser import StackDenoiser
    from insar_denoise.training.stack import (
        StackTrainConfig,
        draw,
        losses,
        save_state,
        validate,
        validation_set,
    )

    start = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state = torch.load(args.resume, map_location="cpu", weights_only=False)
    fields = {f.name for f in dataclasses.fields(StackTrainConfig)}
    cfg = StackTrainConfig(**{k: v for k, v in state["config"].items() if k in fields})
    cfg.batch_size = args.batch
    dev = torch.device(args.device if torch.cuda.is_available() or args.device == "cpu" else "cpu")
    model = StackDenoiser(cfg.segments, cfg.widths, cfg.detect_mm)
    model.load_state_dict(state["model"])
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-5)
    opt.load_state_dict(state["opt"])
    step0 = int(state["step"])
    examples0 = int(state.get("examples", step0 * int(state["config"]["batch_size"])))
    val = [{k: v.to(dev) for k, v in b.items()} for b in validation_set(cfg)]

    class Batches(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            wid = info.id if info is not None else 0
            torch.set_num_threads(1)
            gen = torch.Generator().manual_seed(1_000_003 * (step0 + 1) + 7919 * wid + cfg.seed)
            while True:
                yield draw(cfg, gen, args.batch)

    extra = dict(prefetch_factor=4, persistent_workers=True) if args.workers > 0 else {}
    loader = torch.utils.data.DataLoader(
        Batches(), batch_size=None, num_workers=args.workers, **extra
    )

    keys = ("total", "series", "cum", "det", "sig", "rmse_mm")
    log_path = out / "device_log.csv"
    fh = open(log_path, "w", newline="")
    writer = csv.writer(fh)
    writer.writerow(["step", "examples", "lr", "split", *keys, "wall_s"])
    v = validate(model, val, cfg)
    best = v["total"]
    writer.writerow([step0, examples0, 0, "val", *(f"{v[k]:.5f}" for k in keys), 0])
    print(f"resumed step {step0}: val rmse {v['rmse_mm']:.3f} mm, total {v['total']:.4f}")

    def save_best() -> None:
        weights = {k: t.cpu() for k, t in model.state_dict().items()}
        write_atomic(out / "best.pt", lambda tmp: torch.save(weights, tmp))

    save_best()
    examples = examples0
    step = step0
    t_train = time.monotonic()
    last_val = last_save = t_train
    model.train()

    gen = torch.Generator()
    gen.set_state(state["gen"])  # kept for the CPU trainer (the workers draw their own)

    def save() -> None:
        save_state(out / "resume.pt", model, opt, gen, step, best, cfg, examples)
        fh.flush()

    for batch in loader:
        frac = min(1.0, (time.monotonic() - t_train) / args.seconds)
        warm = min(1.0, (step - step0 + 1) / 100.0)
        lr = warm * (args.min_lr + 0.5 * (args.lr - args.min_lr) * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        batch = {k: t.to(dev, non_blocking=True) for k, t in batch.items()}
        loss = losses(model, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        examples += args.batch
        now = time.monotonic()
        wall = now - start
        if step % 20 == 0:
            row = [f"{float(loss[k].detach()):.5f}" for k in keys]
            writer.writerow([step, examples, f"{lr:.2e}", "train", *row, f"{wall:.0f}"])
        done = frac >= 1.0
        if now - last_val > args.val_every or done:
            v = validate(model, val, cfg)
            writer.writerow(
                [step, examples, f"{lr:.2e}", "val", *(f"{v[k]:.5f}" for k in keys), f"{wall:.0f}"]
            )
            print(
                f"step {step} examples {examples} lr {lr:.1e} val rmse {v['rmse_mm']:.3f} "
                f"total {v['total']:.4f} ({wall:.0f} s)",
                flush=True,
            )
            if v["total"] < best:
                best = v["total"]
                save_best()
            last_val = now
        if now - last_save > args.save_every or done:
            save()
            last_save = now
        if done:
            break
    save()
    fh.close()
    shutil.copy(log_path, out / "device_log_final.csv")
    print(f"done: {step - step0} steps, {examples - examples0} examples, best total {best:.4f}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    os._exit(code)  # the loader's worker processes need not be joined
