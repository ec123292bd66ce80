"""The same outputs bit for bit: `run` on the demo and the Envisat stack against recorded digests.

The digests were recorded by ``scripts/golden_outputs.py --write`` (single-threaded CPU). They
are defined for one environment (CPU instruction set and flags, numpy / scipy / torch
versions: float sums are reordered otherwise) and one BLAS thread count, so the test is
skipped elsewhere rather than compared loosely.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _script():
    spec = importlib.util.spec_from_file_location("golden", ROOT / "scripts" / "golden_outputs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_outputs_are_bit_identical_to_the_recorded_ones():
    golden = _script()
    record = json.loads(golden.GOLDEN.read_text())
    recorded = record.get("environment", {"cpu_capability": record["cpu_capability"]})
    other = sorted(k for k, v in golden.environment().items() if recorded.get(k) != v)
    if other:
        pytest.skip(f"digests recorded for another environment ({', '.join(other)})")
    if os.environ.get("OMP_NUM_THREADS") != "1":
        pytest.skip("digests recorded with OMP_NUM_THREADS=1")
    if not (DATA / "real_envisat_nsw").is_dir():
        pytest.skip("../shared/data/real_envisat_nsw not present")
    got = golden.compute(DATA)
    for stack, outputs in record["digests"].items():
        for name, digest in outputs.items():
            assert got[stack][name] == digest, f"{stack}/{name} changed"
