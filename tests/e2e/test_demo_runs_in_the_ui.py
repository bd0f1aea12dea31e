"""The demo's runs as ops see them in Airflow's UI after `make demo`: each run named after its
period in the runs list, typed and triggered as Airflow records an `airflow dags test` run, and
every task's log readable (not "Could not read served logs … port 8793"). Read through Airflow's
REST API, the calls the UI itself makes, in the demo's own project home."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from crm_kpis.paths import PROJECT_DIR

# Run in the demo's home (its own AIRFLOW_HOME): the runs list and every task try's log, as the UI
# asks for them, with a viewer's token.
READ_RUNS_AND_LOGS = """
import json
from urllib.parse import quote
from crm_kpis.tools import local_airflow
local_airflow.configure()
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
api = TestClient(create_app())
token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))
headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
out = []
for dag_id in ("crm_kpis_monthly", "crm_kpis_daily"):
    for run in api.get(f"/api/v2/dags/{dag_id}/dagRuns", headers=headers).json()["dag_runs"]:
        run_path = f"/api/v2/dags/{dag_id}/dagRuns/{quote(run['dag_run_id'], safe='')}"
        logs = {}
        for ti in api.get(f"{run_path}/taskInstances", headers=headers).json()["task_instances"]:
            if ti["try_number"]:
                mapped = ti["map_index"] >= 0  # an edition's task: its map index names it
                got = api.get(f"{run_path}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}",
                              params={"map_index": ti["map_index"]} if mapped else None, headers=headers)
                key = f"{ti['task_id']}[{ti['map_index']}]" if mapped else ti["task_id"]
                logs[key] = [line.get("event", "") for line in got.json()["content"]]
        out.append({**{k: run[k] for k in ("dag_id", "dag_run_id", "run_type", "run_after", "logical_date",
                                           "data_interval_start", "triggered_by", "state")}, "logs": logs})
print("RESULT " + json.dumps(out))
"""


def _runs_and_logs(home) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CRM_KPIS"))}
    env["CRM_KPIS_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", READ_RUNS_AND_LOGS], env=env, cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


def test_the_demos_runs_name_their_period_and_every_task_log_reads(demo):
    home, _ = demo
    runs = _runs_and_logs(home)
    # the demo ran September and October 2026 monthly and 31 October daily (conftest's demo)
    assert sorted((r["dag_id"], r["dag_run_id"]) for r in runs) == [
        ("crm_kpis_daily", "manual__2026-10-31T00:00:00+00:00"),
        ("crm_kpis_monthly", "manual__2026-09-01T00:00:00+00:00"),
        ("crm_kpis_monthly", "manual__2026-10-01T00:00:00+00:00"),
    ]
    for run in runs:
        # Airflow's own record of an `airflow dags test` run: manual, triggered by a test; the runs
        # list's Run After column and the logical date both show the period's start
        assert (run["run_type"], run["triggered_by"], run["state"]) == ("manual", "test", "success"), run
        assert run["run_after"] == run["logical_date"] == run["data_interval_start"], run
        assert run["dag_run_id"].removeprefix("manual__")[:10] == run["logical_date"][:10]
        for task_id, lines in run["logs"].items():
            text = "\n".join(lines)
            assert "Could not read served logs" not in text, (run["dag_run_id"], task_id, text)
            where = task_id.split("[")[0] + ("/map_index=" + task_id.split("[")[1].rstrip("]") if "[" in task_id else "")
            assert any(f"task_id={where}/attempt=1.log" in line for line in lines), (task_id, text)
        logs = run["logs"]
        assert {"compute_marketing", "compute_sales", "compute_operations", "check_quality",
                "publish_history"} <= set(logs), sorted(logs)
        # the product's own lines, at INFO, although the demo's console prints warnings only
        assert any(line.startswith("extract customers: ") and "rows read" in line for line in logs["compute_sales"])
        last = run["dag_run_id"] in ("manual__2026-10-01T00:00:00+00:00", "manual__2026-10-31T00:00:00+00:00")
        # one mapped task per edition: the company-wide report (0), then reports.yaml's variants
        editions = 3 if run["dag_id"] == "crm_kpis_monthly" else 1
        assert {k for k in logs if k.startswith("edition.render_report[")} == {
            f"edition.render_report[{i}]" for i in range(editions)}
        for i in range(editions):
            rendered = logs[f"edition.render_report[{i}]"]
            if last:  # the last period renders its report: the log says what was rendered
                assert any(line.startswith("rendered ") and " pages " in line for line in rendered), rendered
            else:  # the earlier ones only store history: the log says why nothing was rendered
                assert any("did not run: marked success by the demo" in line for line in rendered), rendered
