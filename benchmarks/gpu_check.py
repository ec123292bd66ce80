"""The CUDA paths against the CPU on a lent GPU (torch and numpy only, no install).

Checks what the test suite skips without a GPU: the simulator on CUDA draws the CPU's
scenes (``tests/test_synth_generator.py::test_cuda_matches_cpu``), and the shipped
TorchScript model gives the CPU's outputs on CUDA (largest differences, mm), with the
throughput of both; where that torch cannot read the TorchScript file, the same network
from the committed resume state's weights (the error is recorded). Prints numbers, writes JSON.

    python benchmarks/gpu_check.py -o "$OUT/gpu_check.json"
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESUME = ROOT / "experiments" / "training" / "stack_resume.pt"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", type=Path, default=Path("gpu_check.json"))
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--dates", type=int, default=36)
    p.add_argument("--device", default="cuda", help="the device compared with the CPU")
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    from train_device import use_source_tree

    use_source_tree()  # the source tree: models/ is insar_denoise.models once installed
    import torch

    from insar_denoise.errors import ModelError
    from insar_denoise.models import load_model
    from insar_denoise.models.stack_denoiser import StackDenoiser
    from insar_denoise.synth import SimConfig, simulate_batch

    out: dict = {"cuda": torch.cuda.is_available(), "torch": torch.__version__}
    dev = args.device
    if dev == "cuda" and not torch.cuda.is_available():
        print(json.dumps(out))
        args.output.write_text(json.dumps(out, indent=1))
        return
    out["device"] = torch.cuda.get_device_name(0) if dev == "cuda" else dev
    cfg = SimConfig(size=args.size, n_dates=args.dates)
    cpu = simulate_batch(cfg, 4, generator=torch.Generator().manual_seed(5))
    gpu = simulate_batch(cfg, 4, generator=torch.Generator().manual_seed(5), device=dev)
    out["simulator_max_abs_diff_mm"] = {
        "deformation": float((gpu.deformation.cpu() - cpu.deformation).abs().max()),
        "displacement": float((gpu.displacement.cpu() - cpu.displacement).nan_to_num().abs().max()),
        "valid_equal": bool(torch.equal(gpu.valid.cpu(), cpu.valid)),
    }
    times = torch.tensor(cfg.times_days(), dtype=torch.float32)[None].expand(4, -1).contiguous()
    x, dem = cpu.displacement, cpu.dem
    results = {}
    try:
        scripted = load_model("default").module
        out["network"] = "models/default.pt (TorchScript)"
    except ModelError as exc:  # an older torch there (session 19: 2.11 on the H200)
        out["torchscript_error"] = str(exc)
        scripted = None
        out["network"] = "StackDenoiser with the committed resume state's weights (eager)"
    for device in ("cpu", dev):
        if scripted is not None:
            net = load_model("default", device=device).module
        else:
            net = StackDenoiser()
            state = torch.load(RESUME, map_location="cpu", weights_only=False)["model"]
            net.load_state_dict(state)
            net = net.eval().to(device)
        args_dev = (x.to(device), dem.to(device), times.to(device))
        with torch.no_grad():
            outputs = net(*args_dev)
            if device != "cpu":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(3):
                net(*args_dev)
            if device != "cpu":
                torch.cuda.synchronize()
        results[device] = ([o.cpu() for o in outputs], (time.perf_counter() - start) / 3)
    names = ("series", "detection", "sigma")
    (c_out, c_t), (g_out, g_t) = results["cpu"], results[dev]
    out["model_max_abs_diff"] = {
        n: float((a - b).nan_to_num().abs().max())
        for n, a, b in zip(names, c_out, g_out, strict=True)
    }
    out["model_seconds_per_batch"] = {"cpu": c_t, dev: g_t, "batch": [4, args.dates, args.size]}
    print(json.dumps(out, indent=1))
    args.output.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
