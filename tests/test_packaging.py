"""The wheel installs cli/ and models/ inside the package and ships the weights."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    (whl,) = out.glob("insar_denoise-*.whl")
    return whl


def test_wheel_layout_has_no_top_level_cli_or_models(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert "cli" not in tops and "models" not in tops
    assert "insar_denoise/cli/main.py" in names
    assert "insar_denoise/models/__init__.py" in names
    assert "insar_denoise/models/default.pt" in names
    assert "insar_denoise/models/README.md" in names
    assert any(n.startswith("insar_denoise/synth/data/") and n.endswith(".npz") for n in names)
    # training resume state stays out of the wheel
    assert not any("resume" in n for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "insar-denoise = insar_denoise.cli.main:main" in text


def test_installed_wheel_cli_runs_outside_the_source_tree(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    code = (
        "import sys; from insar_denoise.cli.main import main; "
        "import insar_denoise.models as m; assert str(m.__file__).startswith(sys.argv[1]); "
        "main(['--help'])"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "info" in res.stdout and "run" in res.stdout
