"""Test set-up: a throw-away project home and Airflow home, configured before Airflow is imported.

Airflow reads its configuration at import time, so the environment is set here, at collection,
before any test module imports `airflow`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_HOME = Path(os.environ.get("CRM_KPIS_TEST_HOME") or tempfile.mkdtemp(prefix="crm-kpis-test-"))
os.environ["CRM_KPIS_HOME"] = str(_HOME)
os.environ["AIRFLOW_HOME"] = str(_HOME / "airflow")
os.environ.pop("CRM_KPIS_TIMEZONE", None)
for _conn in ("CRM_DB", "HELPDESK_DB", "KPI_WAREHOUSE", "SMTP_DEFAULT"):
    os.environ.pop(f"AIRFLOW_CONN_{_conn}", None)

from crm_kpis.tools import local_airflow  # noqa: E402  (after the environment is set)

local_airflow.configure()


@pytest.fixture(scope="session")
def test_home() -> Path:
    return _HOME


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated Airflow metadata database (SQLite) for DagBag and dag.test()."""
    local_airflow.migrate()


DEMO_END_MONTH = "2026-10"


@pytest.fixture(scope="session")
def demo_sources(test_home: Path) -> Path:
    """Demo CRM and helpdesk data (14 months to October 2026, half scale) in the default SQLite files."""
    from crm_kpis.tools.demo.__main__ import main as generate

    assert generate(["--end-month", DEMO_END_MONTH, "--months", "14", "--scale", "0.5", "--seed", "7"]) == 0
    return test_home / "data"
