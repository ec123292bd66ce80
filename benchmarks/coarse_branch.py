"""Design experiment: a coarse branch that denoises the broad scales from the whole scene.

The shipped network sees its inputs minus their 33 px local mean (receptive field 44 px), so
at broad scales its cumulative map *is* the noisy least-squares projection (model card,
"What limits detection"). This experiment asks whether a small CNN that sees the whole
scene at a quarter of the resolution (block means of 4 x 4 px) can clean those scales:

    python benchmarks/coarse_branch.py data --benchmark -o /tmp/coarse   # 1.5 min
    python benchmarks/coarse_branch.py data --n 3000 -o /tmp/coarse       # 25 min, 2 workers
    python benchmarks/coarse_branch.py train -o /tmp/coarse --n 3000 --steps 2500  # 40 min
    python benchmarks/coarse_branch.py score -o /tmp/coarse --json coarse_branch.json
    python benchmarks/coarse_branch.py gated -o /tmp/coarse --store /tmp/gatecap  # 4 min/split
    python benchmarks/coarse_branch.py zscan -o /tmp/coarse --store /tmp/gatecap

``data`` simulates scenes of the Benchmark v2 design (192 px, T = 9-72, the seven source
types) with a seed other than the benchmark's (training: ``--seed 1001``), runs the shipped
model and the bare projection on each (one 192 px tile) and stores their cumulative maps
as 48 x 48 block means (``--benchmark``: the benchmark's own scenes, split ``in`` and
``shifted`` with seed 0, also at full resolution). ``train`` fits the coarse CNN: input the
two coarse maps in noise units (asinh), the DEM and the valid share; output a correction of
the network's coarse map; loss the squared error against the true coarse cumulative, offset
removed (``--gain-weight``: plus a penalty on the gain of strong scenes). ``score`` replaces
the broad part of the network's map (its 4 x 4 block means, bilinearly upsampled) by the
coarse CNN's and reports r, gain and RMSE per scene with ideal-observer SNR >= 10 and the
false-positive p99 of the no-deformation scenes, before any gate. ``gated`` does the same to
the series of a ``gate_replay.py capture`` and finishes them with the engine's gate
(``evaluate``'s bins); ``--threshold`` instead adds the coarse map as one more test of the
gate. ``zscan`` prints that test's largest ``z`` per scene (null scenes against the rest).
Session 15's numbers: ``experiments/benchmarks/coarse_branch_s15.json`` (model card, design
table: not adopted). Run from the repository root.
Torch and numpy only.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from insar_denoise.evaluation.referee_scoring import centered, offset_free_scores
from insar_denoise.models.stack_denoiser import _block
from insar_denoise.scoring.metrics import detected_fraction, false_positive_level
from insar_denoise.training.stack import _demeaned

FACTOR = 4
SNR_REPORT = Path("experiments/benchmarks/evaluate_v2_s13/metrics.json")


def block_mean(x: np.ndarray, m: np.ndarray, f: int = FACTOR) -> tuple[np.ndarray, np.ndarray]:
    """``f`` x ``f`` block means of ``x`` over the pixels where ``m``, and the valid share."""
    h, w = x.shape
    xs = np.where(m, x, 0.0).reshape(h // f, f, w // f, f).sum((1, 3))
    ns = m.reshape(h // f, f, w // f, f).sum((1, 3))
    return (xs / np.maximum(ns, 1)).astype(np.float32), (ns / f**2).astype(np.float32)


def scene_maps(spec, split: str, size: int, net, proj) -> dict:
    """Full-resolution cumulative maps of one scene: projection, network, truth, DEM, mask."""
    from insar_denoise.evaluation.referee_scenes import simulate

    batch, _ = simulate(spec, split, size)
    disp = batch.displacement.float()
    disp = disp - disp[:, :1]
    times = torch.tensor(spec.config(split, size).times_days(), dtype=torch.float32)[None]
    dem = batch.dem.float()
    with torch.no_grad():
        series, _, _ = net(disp, dem, times)
        ls_series, _, _ = proj(disp, dem, times)
        _, _, scale, _, _ = proj.features(disp, dem, times, None)
    net_cum = (series[0, -1] - series[0, 0]).numpy()
    ls_cum = (ls_series[0, -1] - ls_series[0, 0]).numpy()
    valid = batch.valid[0].numpy() & np.isfinite(net_cum) & np.isfinite(ls_cum)
    truth = batch.cumulative[0].numpy()
    return {
        "net": np.nan_to_num(net_cum),
        "ls": np.nan_to_num(ls_cum),
        "truth": truth.astype(np.float32),
        "dem": dem[0].numpy(),
        "valid": valid,
        "scale": float(scale[0]),
        "n_dates": int(disp.shape[1]),
    }


def coarse(maps: dict) -> dict:
    """48 x 48 block means of a scene's maps."""
    m = maps["valid"]
    out = {}
    for key in ("net", "ls", "truth"):
        out[key], share = block_mean(maps[key], m)
    out["dem"], _ = block_mean(maps["dem"], np.ones_like(m))
    out["share"] = share
    out["scale"] = maps["scale"]
    out["n_dates"] = maps["n_dates"]
    return out


def _worker(args: tuple) -> list[dict]:
    """Simulate and reduce the scenes ``indices`` of a design (one thread)."""
    from insar_denoise.evaluation.referee_scenes import design
    from insar_denoise.models.registry import load_model
    from insar_denoise.models.stack_denoiser import StackDenoiser

    n, seed, split, size, indices, full = args
    torch.set_num_threads(1)
    net = load_model("default").module.eval()
    proj = StackDenoiser().eval()  # head at zero: the bare weighted least-squares projection
    specs = design(n, seed, split)
    rows = []
    for i in indices:
        maps = scene_maps(specs[i], split, size, net, proj)
        row = coarse(maps)
        row.update(index=i, source=specs[i].source_type)
        if full:
            row["full"] = maps
        rows.append(row)
    return rows


def make_data(out: Path, n: int, seed: int, split: str, workers: int, full: bool) -> Path:
    """Scenes ``0..n-1`` of the design, reduced (and full when ``full``), in one file."""
    parts = [list(range(w, n, workers)) for w in range(workers)]
    jobs = [(n, seed, split, 192, p, full) for p in parts]
    t0 = time.time()
    with ProcessPoolExecutor(workers) as pool:
        rows = [r for part in pool.map(_worker, jobs) for r in part]
    rows.sort(key=lambda r: r["index"])
    path = out / f"{split}_{seed}_{n}.pt"
    torch.save(rows, path)
    print(f"{len(rows)} scenes of {split} seed {seed} in {time.time() - t0:.0f} s -> {path}")
    return path


class CoarseNet(nn.Module):
    """U-Net on the 48 x 48 coarse maps (strides 1, 2, 4, 8: it sees the whole scene)."""

    def __init__(self, c_in: int = 4, widths: tuple[int, ...] = (32, 48, 64, 64)) -> None:
        super().__init__()
        self.enc = nn.ModuleList()
        c = c_in
        for w in widths:
            self.enc.append(_block(c, w))
            c = w
        self.dec = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.avg_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in self.dec:
            s = skips.pop()
            x = F.interpolate(x, size=s.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, s], dim=1))
        return self.head(x)[:, 0]


def tensors(rows: list[dict]) -> dict[str, Tensor]:
    """Stacked coarse inputs (noise units) and targets of scene rows."""
    scale = torch.tensor([r["scale"] for r in rows])[:, None, None]

    def st(key: str) -> Tensor:
        return torch.from_numpy(np.stack([r[key] for r in rows]))

    share = st("share")
    m = (share > 0.5).float()
    dem = st("dem")
    dem = dem - (dem * m).sum((1, 2), keepdim=True) / m.sum((1, 2), keepdim=True).clamp_min(1)
    net, ls, truth = st("net") / scale, st("ls") / scale, st("truth") / scale
    x = torch.stack([torch.asinh(net), torch.asinh(ls), dem / 1000.0, share], dim=1)
    return {"x": x, "net": net, "truth": truth, "mask": m, "scale": scale[:, 0, 0]}


def demeaned_mse(r: Tensor, m: Tensor) -> Tensor:
    """Mean squared residual with its masked mean per scene removed."""
    return (_demeaned(r, m) ** 2).sum() / m.sum().clamp_min(1.0)


def gain_penalty(pred: Tensor, truth: Tensor, m: Tensor) -> Tensor:
    """Mean ``(gain - 1)^2`` over the scenes whose true coarse map holds more than one squared
    noise unit per pixel (gain: slope of the prediction on the truth, offsets removed)."""
    n = m.sum((1, 2)).clamp_min(1.0)
    pc = (pred - (pred * m).sum((1, 2), keepdim=True) / n[:, None, None]) * m
    tc = (truth - (truth * m).sum((1, 2), keepdim=True) / n[:, None, None]) * m
    energy = (tc**2).sum((1, 2))
    strong = (energy / n > 1.0).float()
    gain = (pc * tc).sum((1, 2)) / energy.clamp_min(1e-6)
    return (strong * (gain - 1.0) ** 2).sum() / strong.sum().clamp_min(1.0)


def augment(t: dict[str, Tensor], gen: torch.Generator) -> dict[str, Tensor]:
    """One of the 8 flips and rotations of the whole batch."""
    k = int(torch.randint(4, (1,), generator=gen))
    flip = bool(torch.randint(2, (1,), generator=gen))
    out = {}
    for key, v in t.items():
        if v.dim() < 3:
            out[key] = v
            continue
        v = torch.rot90(v, k, dims=(-2, -1))
        out[key] = torch.flip(v, dims=(-1,)) if flip else v
    return out


def train(
    out: Path,
    data: Path,
    steps: int,
    batch: int,
    lr: float,
    threads: int = 1,
    gain_weight: float = 0.0,
) -> None:
    """Fit the coarse CNN (weights saved at every validation); the last 10 % of scenes
    validate; ``gain_weight``: weight of :func:`gain_penalty` beside the squared error."""
    torch.set_num_threads(threads)
    rows = torch.load(data, weights_only=False)
    n_val = max(8, len(rows) // 10)
    tr, va = tensors(rows[:-n_val]), tensors(rows[-n_val:])
    model = CoarseNet()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-5)
    gen = torch.Generator().manual_seed(0)
    n = tr["x"].shape[0]
    log = []
    base = float(demeaned_mse(va["net"] - va["truth"], va["mask"]))
    t0 = time.time()
    for step in range(1, steps + 1):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(n, (batch,), generator=gen)
        b = augment({k: v[idx] for k, v in tr.items()}, gen)
        pred = b["net"] + model(b["x"])
        loss = demeaned_mse(pred - b["truth"], b["mask"])
        if gain_weight > 0:
            loss = loss + gain_weight * gain_penalty(pred, b["truth"], b["mask"])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0 or step == steps:
            with torch.no_grad():
                vp = va["net"] + model(va["x"])
                v = float(demeaned_mse(vp - va["truth"], va["mask"]))
                vg = float(gain_penalty(vp, va["truth"], va["mask"]))
            log.append(
                {"step": step, "train": loss.item(), "val": v, "val_network": base, "val_gain": vg}
            )
            print(
                f"step {step} train {loss.item():.3f} val {v:.3f} (network {base:.3f}) "
                f"gain penalty {vg:.3f} "
                f"{time.time() - t0:.0f} s",
                flush=True,
            )
            torch.save({"model": model.state_dict(), "log": log}, out / "coarse_net.pt")


def upsample(c: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a coarse map to ``size`` px."""
    t = torch.from_numpy(c)[None, None]
    return F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)[0, 0].numpy()


def score(out: Path, json_path: Path) -> None:
    """The coarse branch on the benchmark's scenes, beside the network and the projection."""
    model = load_coarse(out)
    report = json.loads(SNR_REPORT.read_text())
    log = torch.load(out / "coarse_net.pt", weights_only=False)["log"]
    result = {"training_log": log, "splits": {}}
    for split in ("in", "shifted"):
        rows = torch.load(out / f"{split}_0_84.pt", weights_only=False)
        snr = {s["index"]: s["snr"] for s in report["splits"][split]["scenes"]}
        t = tensors(rows)
        with torch.no_grad():
            pred = (t["net"] + model(t["x"])) * t["scale"][:, None, None]
        scenes = []
        for row, p in zip(rows, pred.numpy(), strict=True):
            full = row["full"]
            m = full["valid"]
            size = m.shape[0]
            net_broad, _ = block_mean(full["net"], m)
            combined = full["net"] + upsample(p - net_broad, size)
            rec = {"index": row["index"], "source": row["source"], "snr": snr[row["index"]]}
            rec["n_dates"] = row["n_dates"]
            for name, mp in (("ls", full["ls"]), ("net", full["net"]), ("coarse", combined)):
                rec[name] = offset_free_scores(mp, full["truth"], m)
                if row["source"] == "none":
                    rec[name]["p99"] = false_positive_level(centered(mp, m))
            scenes.append(rec)
        hi = [s for s in scenes if s["source"] != "none" and s["snr"] >= 10]
        null = [s for s in scenes if s["source"] == "none"]
        summary = {}
        for name in ("ls", "net", "coarse"):
            rs = np.array([s[name]["r"] for s in hi])
            summary[name] = {
                "share_r_ge_0.7_snr_ge_10": detected_fraction(rs),
                "median_r_snr_ge_10": float(np.nanmedian(rs)),
                "median_gain_snr_ge_20": float(
                    np.nanmedian([s[name]["gain"] for s in hi if s["snr"] >= 20])
                ),
                "null_p99_max_mm": float(max(s[name]["p99"] for s in null)),
                "null_p99_median_mm": float(np.median([s[name]["p99"] for s in null])),
            }
        result["splits"][split] = {"summary": summary, "scenes": scenes}
        print(split, json.dumps(summary, indent=1))
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {json_path}")


def captured_projection(c: dict) -> tuple[np.ndarray, float]:
    """The bare projection's cumulative ``(H, W)`` mm of a captured scene (``gate_replay``)
    and its noise scale (mm): the whole-stack model with its head at zero."""
    from insar_denoise.models.stack_denoiser import StackDenoiser

    referenced = torch.from_numpy(c["referenced"]).float()[None]
    dem = torch.from_numpy(np.nan_to_num(c["dem"])).float()[None]
    days = torch.tensor(np.asarray(c["days"], dtype=np.float32))[None]
    var = torch.tensor(np.asarray(c["var"], dtype=np.float32))[None]
    proj = StackDenoiser().eval()
    with torch.no_grad():
        ls_series, _, _ = proj(referenced, dem, days, var)
        scale = proj.features(referenced, dem, days, var)[2]
    return (ls_series[0, -1] - ls_series[0, 0]).numpy(), float(scale[0])


def coarse_prediction(
    model: CoarseNet, net: np.ndarray, ls: np.ndarray, dem: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """The coarse CNN's cumulative ``(H/4, W/4)`` mm of a map pair, median removed, and the
    coarse valid mask."""
    valid = np.isfinite(net) & np.isfinite(ls)
    maps = {"net": np.nan_to_num(net), "ls": np.nan_to_num(ls), "truth": np.zeros_like(net)}
    maps.update(dem=np.nan_to_num(dem), valid=valid, scale=scale, n_dates=0)
    t = tensors([coarse(maps)])
    with torch.no_grad():
        pred = ((t["net"] + model(t["x"])) * scale)[0].numpy()
    m = t["mask"][0].numpy() > 0
    return np.where(m, pred - np.median(pred[m]), 0.0), m


def coarse_correction(model: CoarseNet, c: dict) -> np.ndarray:
    """A captured scene's series with its cumulative's broad part (4 x 4 block means,
    bilinearly upsampled) replaced by the coarse CNN's, the change spread over the dates in
    proportion to the normalised time (levels are free: the gate and the scores remove them)."""
    series = c["series"]
    ls, scale = captured_projection(c)
    net = series[-1] - series[0]
    pred, _ = coarse_prediction(model, net, ls, c["dem"], scale)
    broad, _ = block_mean(np.nan_to_num(net), np.isfinite(net) & np.isfinite(ls))
    corr = upsample(pred - broad, net.shape[0])
    d = np.asarray(c["days"], dtype=np.float64)
    u = (d - d[0]) / max(d[-1] - d[0], 1e-6)
    return series + u[:, None, None].astype(np.float32) * corr[None]


def learned_z(model: CoarseNet, c: dict, cumulative, noise, projection) -> np.ndarray:
    """``|coarse CNN map| / its noise std`` (coarse grid): the CNN applied to the scene's map
    and to each of the gate's random-sign noise maps (as network and projection input)."""
    dem = np.nan_to_num(np.asarray(c["dem"], dtype=np.float32))
    scale = captured_projection(c)[1]
    stat, m = coarse_prediction(model, np.asarray(cumulative), np.asarray(projection), dem, scale)
    nulls = []
    for j in range(len(noise)):
        nj = np.asarray(noise[j, slice(None)], dtype=np.float32)
        nulls.append(coarse_prediction(model, nj, nj, dem, scale)[0][m])
    sd = float(np.sqrt(np.mean(np.square(nulls))))
    return np.where(m, np.abs(stat) / max(sd, 1e-9), 0.0)


def learned_gate(gate, model: CoarseNet, c: dict, threshold: float):
    """``gate`` plus the coarse blocks where the learned statistic exceeds ``threshold``."""

    def run(cumulative, noise, projection=None, linear=None, **kw):
        g, zmax, noise_sd = gate(cumulative, noise, projection=projection, linear=linear, **kw)
        z = learned_z(model, c, cumulative, noise, projection)
        hit = np.kron((z > threshold).astype(np.float32), np.ones((FACTOR, FACTOR), np.float32))
        return np.maximum(np.asarray(g), hit[: g.shape[0], : g.shape[1]]), zmax, noise_sd

    return run


def load_coarse(out: Path) -> CoarseNet:
    """The trained coarse CNN of ``out``."""
    state = torch.load(out / "coarse_net.pt", weights_only=False)
    model = CoarseNet()
    model.load_state_dict(state["model"])
    return model.eval()


def zscan(out: Path, store: Path, json_path: Path) -> None:
    """The largest learned statistic per captured scene (no gate re-run): its null spread on
    the no-deformation scenes against the signal scenes."""
    import pickle

    model = load_coarse(out)
    report = json.loads(SNR_REPORT.read_text())
    result = {}
    for split in ("in", "shifted"):
        snr = {s["index"]: s["snr"] for s in report["splits"][split]["scenes"]}
        rows = []
        for path in sorted(store.glob(f"{split}_*.pkl")):
            with open(path, "rb") as f:
                c = pickle.load(f)
            noise, projection = c["maps"][0], c["maps"][1]
            cum = c["series"][-1] - c["series"][0]
            z = learned_z(model, c, cum, noise, projection)
            rows.append(
                {
                    "index": c["index"],
                    "source": c["source"],
                    "snr": snr[c["index"]],
                    "zmax": float(z.max()),
                }
            )
        result[split] = rows
        null = [r["zmax"] for r in rows if r["source"] == "none"]
        print(split, "null zmax", np.round(sorted(null), 1))
        for r in rows:
            if r["source"] != "none" and r["snr"] >= 10:
                print(split, r["index"], r["source"], round(r["snr"], 1), round(r["zmax"], 1))
    json_path.write_text(json.dumps(result, indent=1) + "\n")


def gated(
    out: Path, store: Path, json_path: Path, threshold: float | None, splits: list[str]
) -> None:
    """The coarse branch in the engine's finish, on a ``gate_replay`` capture, scored as
    ``gate_replay score`` scores (``evaluate``'s bins): as the estimator of the broad scales
    before the gate (``threshold`` None) or as one more test of the gate (blocks whose
    learned statistic exceeds ``threshold`` pass, the network's map at full gain)."""
    import gate_replay as gr

    import insar_denoise.inference.significance as sig

    model = load_coarse(out)
    base_finish = gr.finish

    def finish(c: dict) -> np.ndarray:
        if "maps" not in c:
            return base_finish(c)
        if threshold is None:
            return base_finish({**c, "series": coarse_correction(model, c)})
        base_gate = sig.gate
        sig.gate = learned_gate(base_gate, model, c, threshold)
        try:
            return base_finish(c)
        finally:
            sig.gate = base_gate

    gr.finish = finish
    result = {"threshold": threshold}
    for split in splits:
        res = gr.score(split, store, gr.DEFAULT_REPORT)
        result[split] = res
        print(split, json.dumps({k: v for k, v in res.items() if k != "scenes"}, indent=1))
    json_path.write_text(json.dumps(result, indent=1) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("action", choices=("data", "train", "score", "gated", "zscan"))
    ap.add_argument("-o", "--out", type=Path, default=Path("/tmp/coarse"))
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=1001)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--benchmark", action="store_true", help="data: the benchmark's scenes")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gain-weight", type=float, default=0.0, help="train: gain penalty")
    ap.add_argument("--data", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=Path("coarse_branch.json"))
    ap.add_argument("--store", type=Path, default=Path("/tmp/gatecap"), help="gated: capture")
    ap.add_argument("--threshold", type=float, help="gated: the learned statistic as a test")
    ap.add_argument("--splits", nargs="*", default=["in", "shifted"])
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.action == "data":
        if args.benchmark:
            for split in ("in", "shifted"):
                make_data(args.out, 84, 0, split, args.workers, True)
        else:
            make_data(args.out, args.n, args.seed, "in", args.workers, False)
    elif args.action == "train":
        data = args.data or args.out / f"in_{args.seed}_{args.n}.pt"
        train(args.out, data, args.steps, args.batch, args.lr, args.threads, args.gain_weight)
    elif args.action == "score":
        score(args.out, args.json)
    elif args.action == "zscan":
        zscan(args.out, args.store, args.json)
    else:
        gated(args.out, args.store, args.json, args.threshold, args.splits)


if __name__ == "__main__":
    main()
