"""Train on a lent machine that has only torch and numpy (no install, no network).

The device tool copies the working tree; this script imports the package from it (no
install: ``models/`` is found as ``insar_denoise.models``), runs one time-boxed training
with a cosine schedule sized from a throughput probe, and leaves everything under
``--out``: the resume state (``run/resume.pt``), the best exported model (``best.pt``),
logs and ``summary.json``.

    python scripts/train_device.py --out "$OUT/small" --seconds 420 --channels 16,32,64,96
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def use_source_tree() -> None:
    """Import the package from this source tree without installing it: ``models/`` and
    ``cli/`` sit beside ``insar_denoise/`` (installed as its subpackages), so the source root
    is added to the package's search path, as ``package-dir`` does for an install."""
    sys.path.insert(0, str(ROOT))
    import insar_denoise

    if str(ROOT) not in insar_denoise.__path__:
        insar_denoise.__path__.append(str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=420.0, help="training wall budget")
    parser.add_argument("--channels", default="16,32,64,96")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--val-every", type=float, default=60.0)
    parser.add_argument("--resume-from", help="continue this resume state (a warm restart)")
    args = parser.parse_args()
    start = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        handlers=[logging.StreamHandler(), logging.FileHandler(out / "train.log")],
    )
    log = logging.getLogger("train_device")
    use_source_tree()
    import torch

    from insar_denoise.training import TrainConfig, Trainer
    from insar_denoise.training.checkpoint import export_from_state, load_state

    torch.set_num_threads(args.threads)
    config = TrainConfig.from_dict(
        {
            "seed": args.seed,
            "window": 9,
            "channels": [int(c) for c in args.channels.split(",")],
            "crop": args.crop,
            "batch_size": args.batch,
            "lr": args.lr,
            "warmup_examples": 100_000,
            "total_examples": 10_000_000,  # resized after the throughput probe
            "val_every_s": args.val_every,
            "checkpoint_every_s": 60.0,
            "log_every_steps": 20,
            "export_best": str(out / "best.pt"),
            "num_threads": args.threads,
        }
    )
    trainer = Trainer(config, out / "run", device=args.device)
    if args.resume_from:  # keeps weights, EMA, optimiser, history; the schedule restarts
        trainer.load_state_dict(load_state(args.resume_from), args.resume_from)
        log.info("resumed %s at %d examples", args.resume_from, trainer.examples_seen)
    stopping = {"signal": None}

    def on_signal(signum, _frame):
        stopping["signal"] = signum
        trainer.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("device %s, torch %s", trainer.device, torch.__version__)
    if trainer.device.type == "cuda":
        log.info("gpu %s", torch.cuda.get_device_name(0))

    # one step per data path, most to least efficient, until one works
    def cpu_generator() -> None:
        trainer.generator = torch.Generator().manual_seed(config.seed + 1)

    def cpu_simulator() -> None:
        from insar_denoise.training.trainer import simulator_batches

        cpu_generator()
        trainer.batch_fn = simulator_batches(config, torch.device("cpu"))[0]

    fallbacks = [
        ("simulator on the device", None),
        ("random draws on the CPU", cpu_generator),
        ("simulator on the CPU", cpu_simulator),
    ]
    for name, switch in fallbacks:
        try:
            if switch is not None:
                switch()
            trainer.train_step()
            log.info("data path: %s", name)
            break
        except Exception:  # noqa: BLE001 - report and try the next path
            log.error("data path %r failed:\n%s", name, traceback.format_exc())
    else:
        return 1
    for _ in range(4):
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    t0, n0 = time.monotonic(), trainer.examples_seen
    for _ in range(20):
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    rate = (trainer.examples_seen - n0) / (time.monotonic() - t0)
    left = args.seconds - (time.monotonic() - start)
    n_val = max(1, int(left / args.val_every))
    train_s = max(10.0, left - 4.0 * n_val - 10.0)
    total = trainer.examples_seen + int(rate * train_s * 0.95)
    config.total_examples = total
    if not args.resume_from:
        config.warmup_examples = min(config.warmup_examples, total // 20)
    log.info("probe: %.0f examples/s -> schedule of %d examples over %.0f s", rate, total, train_s)
    trainer.fit(max_seconds=args.seconds - (time.monotonic() - start) - 5.0)
    state = trainer.state_dict()
    export_from_state(state, out / "final.pt")
    last = trainer.history[-1] if trainer.history else {}
    summary = {
        "device": str(trainer.device),
        "gpu": torch.cuda.get_device_name(0) if trainer.device.type == "cuda" else None,
        "torch": torch.__version__,
        "channels": config.channels,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "probe_examples_per_s": rate,
        "examples_seen": trainer.examples_seen,
        "steps": trainer.step,
        "wall_s": round(time.monotonic() - start, 1),
        "best_val_loss": trainer.best_val,
        "last_validation": last,
        "signal": stopping["signal"],
        "optional_modules_loaded": sorted(
            m
            for m in ("rasterio", "dask", "yaml", "scipy", "xarray", "matplotlib")
            if m in sys.modules
        ),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    log.info("done: %d examples in %.0f s", trainer.examples_seen, summary["wall_s"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
