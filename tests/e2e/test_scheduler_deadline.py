"""The scheduler's own run for a period, and its Deadline Alert, against a real Airflow.

What ops rely on after unpausing a DAG: the scheduler creates the run for the last complete period
(logical date = its start, named after it), and when that period's report is not delivered by its
deadline, they get an alert linking to the run, whatever went wrong. Here the run cannot succeed
(the test data end in October 2026, so the freshness gate keeps failing and retrying), and the
daily report's deadline is set to the period's end itself, so it is already missed when the run
is created: the alert must come within a few scheduler loops. Also checked: Airflow listens on
127.0.0.1 only (no log server on every interface).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from crm_kpis.paths import PROJECT_DIR
from crm_kpis.tools.local_airflow import standalone
from tests.e2e.helpers import free_port, free_port_block, smtp_server

DAG_ID = "crm_kpis_daily"
ALERT_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def scheduling_airflow(demo_sources, airflow_db, tmp_path_factory):
    """Airflow as deployed: `smtp_default` stored in Airflow's metadata database (created through the
    REST API, not an environment variable) and the alert Slack webhook from a secrets backend."""
    from tests.integration.test_chat_channels import posts

    folder = tmp_path_factory.mktemp("deadline")
    config = (PROJECT_DIR / "include/config/reports.yaml").read_text()
    config = config.replace("deliver_by_hours: 6", "deliver_by_hours: 0").replace(
        "to: [data-ops@example.com]", "to: [deadline-watch@example.com]\n  slack: slack_ops")
    assert "deliver_by_hours: 0" in config and "deadline-watch@example.com" in config
    (folder / "reports.yaml").write_text(config)
    hook_port, record = free_port(), folder / "slack-posts.jsonl"
    chat = subprocess.Popen([sys.executable, str(PROJECT_DIR / "tests" / "webhook_server.py"), "--port", str(hook_port),
                             "--record", str(record)], stdout=subprocess.PIPE, text=True)
    assert chat.stdout.readline().strip() == "ready"
    (folder / "connections.json").write_text(json.dumps({"slack_ops": {
        "conn_type": "slackwebhook", "password": f"http://127.0.0.1:{hook_port}/services/T000/B000/slack_ops"}}))
    with smtp_server() as (inbox, smtp_conn):
        extra = {
            "CRM_KPIS_CONFIG": str(folder / "reports.yaml"),
            "AIRFLOW_CONN_KPI_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(folder / "warehouse.db")}),
            "AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
            "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(folder / "connections.json")}),
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",  # re-parses often: what loops shows
        }
        with standalone(free_port_block(), schedule=True, extra_env=extra) as running:
            stored = json.loads(smtp_conn)
            running.api("POST", "/connections", {
                "connection_id": "smtp_default", "conn_type": "smtp", "host": stored["host"], "port": stored["port"],
                "extra": json.dumps(stored["extra"])})
            running.wait_for_dags({DAG_ID})
            _wait_for_this_config(running)
            try:
                yield running, inbox, lambda: posts(record)
            finally:
                for dag_id in (DAG_ID, "crm_kpis_monthly"):
                    running.api("PATCH", f"/dags/{dag_id}", {"is_paused": True})
                for run in running.api("GET", f"/dags/{DAG_ID}/dagRuns?run_type=scheduled&limit=50")["dag_runs"]:
                    if run["state"] not in ("success", "failed"):
                        running.api("PATCH", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", {"state": "failed"})
                running.api("DELETE", "/connections/smtp_default")  # the metadata database is shared
    chat.terminate()
    chat.wait(timeout=10)


def _wait_for_this_config(running, timeout: float = 120) -> None:
    """The metadata database is shared with other tests: wait until the DAG processor has stored the
    DAG as parsed with this test's configuration (its doc names the deadline and the address)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        doc = running.api("GET", f"/dags/{DAG_ID}/details").get("doc_md") or ""
        if "deadline-watch@example.com" in doc and "delivered 0 h after" in doc:
            return
        time.sleep(2)
    raise AssertionError(f"the DAG was not re-parsed with the test configuration; see {running.log_file}")


def test_unpausing_schedules_the_last_period_and_its_missed_deadline_alerts_ops(scheduling_airflow):
    running, inbox, slack_posts = scheduling_airflow
    running.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})

    # the scheduler's run: the last complete day (UTC, the test's report timezone), named after it
    end = time.monotonic() + ALERT_TIMEOUT_S
    runs: list = []
    while time.monotonic() < end and not runs:
        # the scheduler's own runs (in-process runs of other tests count as scheduled too, under other ids)
        runs = [r for r in running.api("GET", f"/dags/{DAG_ID}/dagRuns?run_type=scheduled&limit=100")["dag_runs"]
                if r["dag_run_id"].startswith("scheduled__")]
        time.sleep(2)
    assert runs, f"the scheduler created no run; see {running.log_file}"
    (run,) = runs
    day = datetime.fromisoformat(run["data_interval_start"]).date()
    assert run["dag_run_id"] == f"scheduled__{day.isoformat()}"
    assert run["logical_date"] == run["data_interval_start"]
    assert datetime.fromisoformat(run["data_interval_end"]) - datetime.fromisoformat(run["data_interval_start"]) \
        == timedelta(days=1)
    assert datetime.fromisoformat(run["data_interval_end"]) <= datetime.now(UTC)  # a period that has ended

    # the deadline (the period's end + 0 h) has passed: the alert arrives while the run still retries
    while time.monotonic() < end and not [m for m in inbox.messages if "deadline" in m["message"]["Subject"]]:
        time.sleep(2)
    alerts = [m for m in inbox.messages if "deadline" in m["message"]["Subject"]]
    assert len(alerts) == 1, f"{len(inbox.messages)} messages, no deadline alert; see {running.log_file}"
    alert = alerts[0]
    assert alert["rcpt"] == ["deadline-watch@example.com"]
    assert alert["message"]["Subject"] == (f"[CRM KPIs] daily_operations for {day.isoformat()} not delivered "
                                           "by its deadline (0 h after the period)")
    body = alert["message"].get_body(("html",)).get_content()
    assert re.search(r"What happened: <b>the run (is still running|failed|was queued)", body), body
    link = re.search(r'href="([^"]+)"', body).group(1)
    assert link == f"{running.base_url}/dags/{DAG_ID}/runs/{run['dag_run_id']}"  # this UI, this run
    with urllib.request.urlopen(link, timeout=10) as page:  # the UI answers there (its app page)
        assert page.status == 200
    assert running.api("GET", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}")["state"] != "success"
    # nobody but ops was written to: the report itself was not sent
    assert all(m["rcpt"] == ["deadline-watch@example.com"] for m in inbox.messages)
    # the same alert in the alert channel, whose webhook only the secrets backend knows
    posted = [p["body"] for p in slack_posts() if "deadline" in p["body"]["text"]]
    assert [p["text"] for p in posted] == [alert["message"]["Subject"]], slack_posts()
    assert posted[0]["blocks"][1]["elements"][0]["url"] == link


def test_airflow_listens_on_loopback_only(scheduling_airflow):
    running, *_ = scheduling_airflow
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    pids = {str(running.process.pid)} | set(subprocess.run(
        ["pgrep", "-g", str(running.process.pid)], capture_output=True, text=True).stdout.split())
    ours = [line for line in listening.splitlines() if any(f"pid={pid}," in line for pid in pids)]
    assert ours, listening
    for line in ours:
        local = line.split()[3]
        assert local.startswith(("127.0.0.1:", "[::1]:")), f"listening beyond loopback: {line}"


def test_an_in_process_run_of_the_last_period_is_airflows_own_and_never_computed_twice(scheduling_airflow):
    """`make demo` runs the last complete month in-process (`dag.test()`); unpausing the DAG must not
    compute that month again, and the run stays as Airflow recorded it (nothing rewrites Airflow's
    metadata): a manual run named after its period. The scheduler's repeated "run already exists"
    warning for that month is Airflow's (docs/airflow-gaps.md)."""
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    from crm_kpis.tools.local_airflow import run_in_process

    running, *_ = scheduling_airflow
    today = datetime.now(UTC).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    dag = DagBag(dag_folder=str(PROJECT_DIR / "dags")).get_dag("crm_kpis_monthly")
    done = run_in_process(dag, logical_date=pendulum.datetime(last_month.year, last_month.month, 1, tz="UTC"),
                          mark_success_pattern=".*")  # as the demo's runs: the period's start
    assert done.run_id.startswith("manual__") and done.logical_date.date() == last_month  # Airflow's own name
    running.api("PATCH", "/dags/crm_kpis_monthly", {"is_paused": False})
    time.sleep(30)  # several parses of the DAG file and scheduler loops
    runs = running.api("GET", "/dags/crm_kpis_monthly/dagRuns?limit=100")["dag_runs"]
    mine = [r for r in runs if r["logical_date"][:10] == last_month.isoformat()]
    assert [(r["dag_run_id"], r["run_type"], r["triggered_by"], r["note"]) for r in mine] == [
        (done.run_id, "manual", "test", None)]
    assert (mine[0]["data_interval_start"][:10], mine[0]["data_interval_end"][:10]) == (
        last_month.isoformat(), today.replace(day=1).isoformat())  # exactly the scheduler's period
    # the scheduler created no run: not for that month, and none ahead of its time (the other runs of
    # the DAG in this metadata database are the in-process runs of other tests)
    assert [r["dag_run_id"] for r in runs if r["run_type"] == "scheduled"] == []
