"""The import contracts (pyproject.toml ``[tool.importlinter]``) hold, and the check can fail."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_imports", REPO / "scripts/check_imports.py")
check_imports = importlib.util.module_from_spec(spec)
sys.modules["check_imports"] = check_imports
spec.loader.exec_module(check_imports)

pytestmark = pytest.mark.skipif(
    not Path(sys.executable).with_name("lint-imports").exists(),
    reason="import-linter is not installed (the test extra)",
)


def test_import_contracts_are_kept(tmp_path: Path):
    result = check_imports.lint(check_imports.assemble(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # a sibling import: the evaluation may not use the trust checks
        ("evaluation/metrics_extra.py", "from insar_denoise.trust import qc", "Layers"),
        # a lazy import upwards still counts
        ("io/extra.py", "def f():\n    from insar_denoise.inference import engine\n", "Layers"),
        # the simulator must run where only torch + numpy exist
        ("synth/extra.py", "import xarray", "torch + numpy only"),
        # a cycle inside a package
        ("trust/qc_extra.py", "from insar_denoise.trust import inject", "No import cycles"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(tmp_path: Path, module, line, contract):
    tree = check_imports.assemble(tmp_path)
    (tree / "insar_denoise" / module).write_text(f"{line}\n")
    if "cycles" in contract:  # close the loop: inject -> qc_extra -> inject
        inject = tree / "insar_denoise/trust/inject.py"
        inject.write_text(inject.read_text() + "\nfrom insar_denoise.trust import qc_extra\n")
    result = check_imports.lint(tree)
    assert result.returncode == 1
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert Path(module).stem in broken


def test_plain_lint_imports_from_the_repository_root_keeps_every_contract():
    """`lint-imports` in the checkout (symlinks give it the installed layout)."""
    import subprocess

    exe = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run([str(exe), "--no-cache"], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "3 kept, 0 broken" in res.stdout
