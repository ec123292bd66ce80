"""Check the import contracts of ``pyproject.toml`` ``[tool.importlinter]`` (import-linter).

``cli/`` and ``models/`` install inside the package (``insar_denoise.cli``,
``insar_denoise.models``) through setuptools' ``package-dir``; in the checkout,
``insar_denoise/cli`` and ``insar_denoise/models`` are symlinks to them, so plain
``lint-imports`` from the repository root sees the installed layout. This script runs the
contracts on a copy of the package as it installs (``.py`` files only): the architecture
tests break a contract in such a copy on purpose. Usage: ``python scripts/check_imports.py``
(exit code 0: all kept).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: where each installed subpackage's sources live in the repository
LAYOUT = {
    "insar_denoise": "insar_denoise",
    "insar_denoise/cli": "cli",
    "insar_denoise/models": "models",
}


def _only_python(folder: str, names: list[str]) -> list[str]:
    """``shutil.copytree`` ignore: everything but ``.py`` files and source folders."""
    return [
        n
        for n in names
        if n == "__pycache__" or (not n.endswith(".py") and not Path(folder, n).is_dir())
    ]


def assemble(dest: Path, repo: Path = REPO) -> Path:
    """Copy the package as installed (``.py`` files) and ``pyproject.toml`` into ``dest``."""
    for target, source in LAYOUT.items():
        shutil.copytree(repo / source, dest / target, ignore=_only_python, dirs_exist_ok=True)
    shutil.copy2(repo / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint(tree: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on an assembled ``tree`` (its own ``pyproject.toml``)."""
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(exe), "--config", str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        result = lint(assemble(Path(tmp)))
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
