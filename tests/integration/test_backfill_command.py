"""`make backfill` (python -m crm_kpis.tools.backfill) against a real Airflow metadata database:
a paused DAG's backfill is refused with the command that unpauses it (its runs would wait queued
for ever), `--unpause` unpauses and creates it, and a DAG Airflow has never parsed is said plainly.
Each case runs the command as a user does, in a process of its own, on its own Airflow home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

DAG_ID = "crm_kpis_monthly"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    return {**env, "AIRFLOW_HOME": str(home / "airflow"), "CRM_KPIS_HOME": str(home)}


def _python(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=_env(home), timeout=300)


def _airflow(home: Path, *args: str) -> subprocess.CompletedProcess:
    """Airflow's CLI configured as `make airflow` configures it for this home."""
    code = ("import subprocess, sys; from crm_kpis.tools import local_airflow; local_airflow.configure(); "
            f"sys.exit(subprocess.run([sys.executable, '-m', 'airflow', *{list(args)!r}]).returncode)")
    return _python(home, "-c", code)


def _backfill(home: Path, *args: str) -> subprocess.CompletedProcess:
    return _python(home, "-m", "crm_kpis.tools.backfill", "--months", "2026-09..2026-10", *args)


def _runs(home: Path) -> list[dict]:
    out = _airflow(home, "dags", "list-runs", DAG_ID, "--output", "json").stdout
    # the JSON is the last line (Airflow's warnings, in brackets too, may come before it)
    return json.loads([line for line in out.splitlines() if line.startswith("[") and line.endswith("]")][-1])


@pytest.fixture(scope="module")
def parsed_home(tmp_path_factory) -> Path:
    """An Airflow home whose metadata database knows the DAGs, paused as `make airflow` creates them."""
    home = tmp_path_factory.mktemp("backfill_home")
    done = _python(home, "-c", "from crm_kpis.tools import local_airflow; local_airflow.configure(); "
                               "local_airflow.migrate()")
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = _airflow(home, "dags", "reserialize")
    assert parsed.returncode == 0, parsed.stderr[-2000:]
    return home


def test_a_dag_airflow_never_parsed_is_said_not_traced(tmp_path):
    done = _python(tmp_path, "-c", "from crm_kpis.tools import local_airflow; local_airflow.configure(); "
                                   "local_airflow.migrate()")
    assert done.returncode == 0, done.stderr[-2000:]
    result = _backfill(tmp_path)
    assert result.returncode == 2
    assert f"not created: Airflow does not know the DAG {DAG_ID} yet: start `make airflow` once" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_paused_dag_is_refused_with_the_fix_then_unpaused_on_request(parsed_home):
    refused = _backfill(parsed_home)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"the DAG {DAG_ID} is paused: a backfill's runs would wait queued and never run" in refused.stderr
    assert f"airflow dags unpause {DAG_ID}" in refused.stderr and "--unpause" in refused.stderr
    assert _runs(parsed_home) == []  # nothing was created

    created = _backfill(parsed_home, "--unpause")
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
    assert f"unpaused {DAG_ID}" in created.stdout
    assert "Follow it: the runs of type backfill in the UI" in created.stdout
    assert f"/dags/{DAG_ID}/runs" in created.stdout
    details = _airflow(parsed_home, "dags", "details", DAG_ID, "--output", "json").stdout
    assert json.loads(details[details.find("[{"):])[0]["is_paused"] in ("False", False)
    # September and October, as backfill runs (no scheduler here: they wait for one, unpaused)
    runs = _runs(parsed_home)
    assert sorted(r["run_id"].split("__")[0] for r in runs) == ["backfill", "backfill"], runs
