"""Train (or resume) the whole-stack model on this machine's CPU or GPU, then release it.

    python scripts/train_stack.py train -o runs/stack --steps 3500   # resumes its resume.pt
    python scripts/train_stack.py release -o runs/stack --model models/default.pt
    python scripts/train_stack.py train -o runs/gain --steps 7500 --lr 3e-4 --min-lr 3e-5 --w-gain 2
    python scripts/train_stack.py release -o runs/gain --model runs/gain/candidate.pt --keep-state

``train`` seeds ``runs/stack/resume.pt`` from ``experiments/training/stack_resume.pt`` (the
committed
state) when the run folder has none, so a new session continues where the last one stopped;
stop it with ``kill -TERM`` (it saves first). ``release`` exports the best validation
weights with their conformal uncertainty calibration
(:mod:`insar_denoise.trust.stack_release`) and copies the resume state back to
``experiments/training/stack_resume.pt`` (commit that file at most once per work
session); ``--keep-state`` leaves it alone (a candidate to measure first:
``benchmarks/gate_replay.py capture --model``, ``benchmarks/real_injection.py --model``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from insar_denoise.training.stack import StackTrainConfig, train
from insar_denoise.trust.stack_release import release

COMMITTED_STATE = Path("experiments/training/stack_resume.pt")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("train", "release"))
    p.add_argument("-o", "--run-dir", default="runs/stack")
    p.add_argument("--steps", type=int, default=3500, help="total steps of the cosine schedule")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lr", type=float, default=StackTrainConfig.lr, help="peak learning rate")
    p.add_argument("--min-lr", type=float, default=StackTrainConfig.min_lr)
    p.add_argument("--w-gain", type=float, default=0.0, help="weight of the gain term")
    p.add_argument("--keep-state", action="store_true", help="release: leave the committed state")
    p.add_argument("--model", default="models/default.pt", help="release target")
    p.add_argument("--calibration-scenes", type=int, default=24)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    if args.action == "train":
        if not (run / "resume.pt").exists() and COMMITTED_STATE.exists():
            shutil.copy(COMMITTED_STATE, run / "resume.pt")
        cfg = StackTrainConfig(
            total_steps=args.steps,
            val_every_steps=250,
            lr=args.lr,
            min_lr=args.min_lr,
            w_gain=args.w_gain,
        )
        train(cfg, run)
        return
    weights = run / "best.pt" if (run / "best.pt").exists() else None
    meta = release(run / "resume.pt", args.model, weights, args.calibration_scenes)
    if not args.keep_state:
        shutil.copy(run / "resume.pt", COMMITTED_STATE)
    print(f"released {args.model}: {meta['model_id']}, calibration {meta['sigma_calibration']}")


if __name__ == "__main__":
    main()
