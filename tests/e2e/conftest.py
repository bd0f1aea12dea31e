"""Fixtures of the end-to-end tests: the demo as `make demo` runs it, once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_kpis.paths import PROJECT_DIR


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> tuple[Path, str]:
    """`make demo`'s two steps in a fresh project home: (that home, what the demo printed)."""
    home = tmp_path_factory.mktemp("readme-demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CRM_KPIS"))}
    env["CRM_KPIS_HOME"] = str(home)
    out = []
    for args in (["crm_kpis.tools.demo", "--end-month", "2026-10", "--months", "14", "--scale", "0.2"],
                 ["crm_kpis.tools.demo.run", "--end-month", "2026-10", "--months", "2", "--days", "1"]):
        done = subprocess.run([sys.executable, "-m", *args], env=env, cwd=PROJECT_DIR, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        out.append(done.stdout + done.stderr)
    return home, "".join(out)
