"""The device scripts import the package from the source tree, with no install (the lent GPU
machine has torch and numpy but nothing installed): checked in a Python without site."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def test_train_device_imports_models_and_training_without_an_install():
    site = Path(torch.__file__).resolve().parents[1]  # torch's site-packages, no .pth files
    code = (
        "import sys, runpy;"
        f"sys.path.append({str(site)!r});"
        f"ns = runpy.run_path({str(ROOT / 'scripts' / 'train_device.py')!r}, run_name='x');"
        "ns['use_source_tree']();"
        "import insar_denoise.models.stack_denoiser as m, insar_denoise.training.stack as t;"
        "from pathlib import Path;"
        f"assert Path(m.__file__).resolve().parent == Path({str(ROOT / 'models')!r}), m.__file__;"
        "print('ok')"
    )
    res = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
