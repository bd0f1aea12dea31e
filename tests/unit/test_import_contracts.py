"""The package's layers hold: import-linter's contracts from pyproject.toml, run as `make lint` runs them.

Why a test as well as the lint target: CI runs the suite, and an import that runs from a lower layer
up (or closes a circle) must fail it, not wait for someone to run the linter. The second test plants
such an import in a copy of the package, so that a contract that checks nothing cannot pass here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from crm_kpis.paths import INCLUDE_DIR, PROJECT_DIR

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS = (
    "Layers: each package imports only the packages below it; the runtime never imports the tools",
    "Sources: the declarations (contract, adapters, extracts' registry) below the mechanisms that read them",
    "No import circle anywhere: the siblings of every package import each other one way",
)


def _lint(pythonpath: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(cwd / "pyproject.toml")],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _one_line(output: str) -> str:
    """import-linter wraps long contract names; the verdicts are read from the text unwrapped."""
    return " ".join(output.split())


def test_every_contract_is_kept_over_the_whole_package():
    result = _lint(INCLUDE_DIR, PROJECT_DIR)
    text = _one_line(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in text
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in text
    # every module of the package, not a part of it (the Alembic revisions are files Alembic loads, not modules)
    modules = [p for p in (INCLUDE_DIR / "crm_kpis").rglob("*.py") if "migrations" not in p.parts]
    assert f"Analyzed {len(modules)} files" in text


def test_an_upward_import_and_a_circle_break_the_contracts(tmp_path):
    """`periods` (the bottom layer) importing the benchmark tool breaks the layers, and `sources.contract`
    importing `sources.loading` (which reads the contract) closes a circle in the source layer."""
    shutil.copytree(INCLUDE_DIR / "crm_kpis", tmp_path / "crm_kpis",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_DIR / "pyproject.toml", tmp_path / "pyproject.toml")
    periods = tmp_path / "crm_kpis" / "periods.py"
    periods.write_text(periods.read_text() + "\n\ndef _bench():\n    from crm_kpis.tools import bench\n\n    return bench\n")
    contract = tmp_path / "crm_kpis" / "sources" / "contract.py"
    contract.write_text(contract.read_text() + "\n\ndef _loading():\n    from crm_kpis.sources import loading\n\n"
                        "    return loading\n")
    result = _lint(tmp_path, tmp_path)
    text = _one_line(result.stdout)
    assert result.returncode == 1
    assert f"{CONTRACTS[0]} BROKEN" in text and "crm_kpis.periods -> crm_kpis.tools.bench" in text
    assert f"{CONTRACTS[1]} BROKEN" in text and f"{CONTRACTS[2]} BROKEN" in text
    assert "Contracts: 0 kept, 3 broken." in text
