"""Digests of `insar-denoise run` outputs on the demo stack and the Envisat stack.

The Architecture issue asks for the same outputs bit for bit before and after a refactor:
``python scripts/golden_outputs.py --write`` records the SHA-256 of every output array
(cumulative, series, noise, uncertainty, detection) in ``tests/data/golden_outputs.json``;
``tests/test_golden_outputs.py`` recomputes them. Digests are of float32 arrays (NaN kept),
so any change of a single bit shows. Re-record only on purpose (a new model, a new feature),
or for a new environment: the record keeps the environment it holds for (:func:`environment`:
CPU instruction set and flags, numpy / scipy / torch versions), since float results change
with them (session 8: a fresh install gave other digests for unchanged code).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import rasterio
import torch
from click.testing import CliRunner

from insar_denoise.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "golden_outputs.json"
OUTPUTS = ("deformation", "series", "noise", "uncertainty", "detection")


def environment() -> dict[str, str]:
    """What the digests depend on besides the code: the CPU's instruction set and flags and
    the numerical libraries' versions."""
    import platform

    import scipy

    flags = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = [ln for ln in cpuinfo.read_text().splitlines() if ln.startswith("flags")]
        flags = " ".join(sorted(set(lines[0].split(":", 1)[1].split()))) if lines else ""
    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16],
        "machine": platform.machine(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "torch": torch.__version__,
    }


def demo_stack(folder: Path) -> tuple[list[str], Path]:
    """Write the demo scene (the README's demo, same seed) as GeoTIFFs in ``folder``."""
    from insar_denoise.demo import DEMO_AMPLITUDE_MM, DEMO_SEED, demo_config
    from insar_denoise.io.scene import write_scene
    from insar_denoise.synth import simulate_scene

    scene = simulate_scene(demo_config(), DEMO_SEED, source="okada", amplitude_mm=DEMO_AMPLITUDE_MM)
    write_scene(scene, folder, overwrite=True)
    return sorted(str(p) for p in folder.glob("disp_*.tif")), folder / "dem.tif"


def envisat_stack(data: Path) -> tuple[list[str], Path]:
    """The real Envisat interferogram network in ``data/real_envisat_nsw``."""
    ifgs = sorted(str(p) for p in (data / "real_envisat_nsw" / "interferograms").glob("*.tif"))
    return ifgs, data / "real_envisat_nsw" / "dem.tif"


def digest(path: Path) -> str:
    """SHA-256 of a GeoTIFF's bands as little-endian float32 (NaN patterns included)."""
    with rasterio.open(path) as src:
        arr = src.read().astype("<f4")
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def run_digests(stack: list[str], dem: Path, work: Path) -> dict[str, str]:
    """Run the CLI with every output on and return the digest of each output."""
    paths = {name: work / f"{name}.tif" for name in OUTPUTS}
    args = ["run", *stack, "--dem", str(dem), "-o", str(paths["deformation"]), "-q"]
    for name in OUTPUTS[1:]:
        args += [f"--{name}", str(paths[name])]
    res = CliRunner().invoke(main, args)
    if res.exit_code != 0:
        raise RuntimeError(f"run failed ({res.exit_code}): {res.output}")
    return {name: digest(p) for name, p in paths.items()}


def compute(data: Path) -> dict[str, dict[str, str]]:
    """Digests of both stacks (single-threaded torch, CPU)."""
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "demo").mkdir()
        (t / "envisat").mkdir()
        out["demo"] = run_digests(*demo_stack(t / "demo_stack"), t / "demo")
        out["envisat"] = run_digests(*envisat_stack(data), t / "envisat")
    return out


def main_cli() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--write", action="store_true", help="record the digests as the reference")
    args = ap.parse_args()
    got = compute(args.data)
    env = environment()
    record = {"cpu_capability": env["cpu_capability"], "environment": env, "digests": got}
    print(json.dumps(record, indent=2))
    if args.write:
        GOLDEN.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {GOLDEN}")
        return 0
    stored = json.loads(GOLDEN.read_text())
    want = stored["digests"]
    other = {k: v for k, v in env.items() if stored.get("environment", {}).get(k) != v}
    if other:
        print(f"recorded for another environment ({', '.join(sorted(other))}): not comparable")
    bad = [f"{s}/{k}" for s in want for k in want[s] if want[s][k] != got[s].get(k)]
    print("unchanged" if not bad else f"CHANGED: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_cli())
