"""Train the variance head of the shipped model (see insar_denoise/trust/sigma_head.py).

  python scripts/train_sigma_head.py data --seeds 1000:1240      # cache benchmark-design scenes
  python scripts/train_sigma_head.py train --steps 6000   # fit; export next to the model

Scenes use the benchmark design (every amplitude level and stratum) with seeds 1000 and up,
disjoint from the calibration fit (0-3), its fresh-seed test (100-103) and ``evaluate``.
Cached scenes live in runs/sigma_head/ (not committed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from insar_denoise.models import load_model
from insar_denoise.trust import sigma_head as sh

CACHE = Path("runs/sigma_head")


def cmd_data(args: argparse.Namespace) -> None:
    model = load_model(args.model)
    lo, hi = (int(v) for v in args.seeds.split(":"))
    CACHE.mkdir(parents=True, exist_ok=True)
    for seed in range(lo, hi):
        out = CACHE / f"data_{seed}.pt"
        if out.exists():
            continue
        t = time.time()
        torch.save(sh.examples(model, args.n, seed), out.with_suffix(".tmp"))
        out.with_suffix(".tmp").replace(out)
        print(f"seed {seed}: {time.time() - t:.1f} s", flush=True)


def load_cache(limit: int | None = None) -> dict[str, torch.Tensor]:
    files = sorted(CACHE.glob("data_*.pt"))[:limit]
    parts = [torch.load(f) for f in files]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def cmd_train(args: argparse.Namespace) -> None:
    model = load_model(args.model)
    data = load_cache()
    print(f"{data['inputs'].shape[0]} scenes", flush=True)
    torch.manual_seed(args.seed)
    head = sh.train_head(
        data,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        seed=args.seed,
        log=lambda s: print(s, flush=True),
    )
    seeds = sorted(int(p.stem.removeprefix("data_")) for p in CACHE.glob("data_*.pt"))
    meta = {
        "model_sha256": model.metadata["sha256"],
        "model_id": model.metadata.get("model_id"),
        "n_scenes": int(data["inputs"].shape[0]),
        "steps": args.steps,
        "batch": args.batch,
        "loss": "gaussian nll",
        "data": f"benchmark design, seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} x 84 scenes)",
    }
    out = Path(args.out) if args.out else sh.head_path(model.path)
    sh.export_head(head, meta, out)
    print("wrote", out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--seeds", default="1000:1240")
    d.add_argument("--n", type=int, default=12)
    d.add_argument("--model", default="default")
    t = sub.add_parser("train")
    t.add_argument("--steps", type=int, default=6000)
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--model", default="default")
    t.add_argument("--out", default=None)
    args = p.parse_args()
    {"data": cmd_data, "train": cmd_train}[args.cmd](args)


if __name__ == "__main__":
    main()
