"""Airflow's distributed setup for real (crm_kpis.tools.distributed): scheduler, dag-processor, triggerer, API
server and two Celery workers as processes, CeleryExecutor with the Redis broker on 127.0.0.1:6379,
metadata, warehouse and the CRM on PostgreSQL, the helpdesk on MariaDB, a real SMTP server.

Every component has its own AIRFLOW_HOME and CRM_KPIS_HOME, so whatever a task left on its own
worker's disk is missing for the next task on the other worker: the run only passes if the tasks
share what they must through the warehouse and the reports' store (`reports_url`, a folder that is
no component's home, standing in for a bucket).

1. A monthly run spreads its tasks over both workers; the history is complete once, each recipient
   gets each edition once, and the API server serves the PDF a worker rendered.
2. A worker is SIGKILLed in the middle of `compute_sales` (its query waits on a lock the test holds
   on the CRM's `opportunities` table, so the kill lands mid-read, not by luck of timing): the
   scheduler notices the lost heartbeat, the retry runs on the other worker, the history has one
   copy of the period and nobody gets two emails.
3. The same monthly run with one worker left, timed against the two-worker run.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections import Counter
from datetime import date, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, func, select, text

from crm_kpis.history.store import kpi_history, kpi_runs, report_deliveries
from crm_kpis.kpis import REGISTRY
from crm_kpis.sources.connections import engine_for
from crm_kpis.tools.distributed import celery_cluster
from tests.e2e.helpers import free_port_block, smtp_server

DAG_ID = "crm_kpis_monthly"
RUN_TIMEOUT_S = 900
#: a database of its own: the cluster empties it at start (CRM_KPIS_TEST_REDIS_URL points elsewhere)
REDIS_DB = os.environ.get("CRM_KPIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/11")
TIMINGS: dict[str, float] = {}


def _airflow_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://").replace("mysql+pymysql://", "mysql://")


@pytest.fixture(scope="module")
def cluster(postgres, mariadb, demo_frames, tmp_path_factory):
    from crm_kpis.tools.demo.loader import load_database

    crm, helpdesk = postgres.create("celerycrm"), mariadb.create("celeryhelpdesk")
    load_database(engine_for(crm), "crm", demo_frames["crm"])
    load_database(engine_for(helpdesk), "helpdesk", demo_frames["helpdesk"])
    warehouse, metadata = postgres.create("celerywh"), postgres.create("celeryairflow")
    homes = tmp_path_factory.mktemp("celery")
    store = tmp_path_factory.mktemp("report-store")  # no component's home: the shared bucket
    with smtp_server() as (inbox, smtp_conn):
        extra = {
            "AIRFLOW_CONN_CRM_DB": _airflow_url(crm),
            "AIRFLOW_CONN_HELPDESK_DB": _airflow_url(helpdesk),
            "AIRFLOW_CONN_KPI_WAREHOUSE": _airflow_url(warehouse),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_conn,
            # a lost worker is noticed after 30 s without a heartbeat (default 300 s)
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        }
        with celery_cluster(free_port_block(), homes, workers=2, metadata_url=metadata, broker_url=REDIS_DB,
                            reports_url=store.as_uri(), own_homes=True, extra_env=extra,
                            fresh_broker=True) as running:
            running.airflow.wait_for_dags({DAG_ID})
            running.airflow.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
            yield running, engine_for(warehouse), engine_for(crm), inbox, store


def _trigger(airflow, month: str) -> str:
    run = airflow.api("POST", f"/dags/{DAG_ID}/dagRuns", {
        "dag_run_id": f"manual__celery-{month}", "logical_date": f"{month}-01T00:00:00Z",
        "conf": {"deliver": "yes", "resend": False, "page_size": "A4", "test_to": "", "test_variant": ""}})
    return run["dag_run_id"]


def _wait_run(running, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = running.airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}")
        if run["state"] in ("success", "failed"):
            assert run["state"] == "success", (_task_states(running.airflow, run_id), running.homes)
            return run
        time.sleep(3)
    raise AssertionError(f"{run_id} not finished in {RUN_TIMEOUT_S} s: {_task_states(running.airflow, run_id)}; "
                         f"logs under {running.homes}")


def _task_states(airflow, run_id: str) -> dict[str, tuple]:
    tis = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=100")["task_instances"]
    return {t["task_id"]: (t["state"], t["hostname"], t["try_number"]) for t in tis}


def _seconds(run: dict) -> float:
    return (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()


def _assert_history_once(warehouse, start: date, run_id: str) -> int:
    """The month is in the history once: every KPI row and the run record are this run's."""
    with warehouse.connect() as conn:
        rows = conn.execute(select(kpi_history.c.run_id)
                            .where(kpi_history.c.grain == "monthly", kpi_history.c.period_start == start)).scalars().all()
        runs = conn.execute(select(kpi_runs.c.run_id)
                            .where(kpi_runs.c.grain == "monthly", kpi_runs.c.period_start == start)).scalars().all()
        kpis = conn.execute(select(func.count(func.distinct(kpi_history.c.kpi_id)))
                            .where(kpi_history.c.grain == "monthly", kpi_history.c.period_start == start)).scalar_one()
    assert rows and set(rows) == {run_id} and runs == [run_id], (set(rows), runs)
    assert kpis == len(REGISTRY)
    return len(rows)


def _copies(inbox, period: str) -> Counter:
    """Messages per (recipient, report edition) for a period, as the SMTP server received them."""
    out: Counter = Counter()
    for m in inbox.messages:
        header = m["message"]["X-CRM-KPIs-Report"] or ""
        if f" {period}" in header:
            for rcpt in m["rcpt"]:
                out[(rcpt, header)] += 1
    return out


def _get(airflow, path: str) -> tuple[int, bytes]:
    airflow.api("GET", "/version")  # logs in (the token is kept)
    request = urllib.request.Request(f"{airflow.base_url}{path}", headers={"Authorization": f"Bearer {airflow._token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


EDITIONS = {"monthly_executive {p}": {"ceo@example.com", "cfo@example.com", "data-team@example.com"},
            "monthly_executive {p} segment-enterprise": {"vp-enterprise@example.com"},
            "monthly_executive {p} inside-sales": {"head-inside-sales@example.com"}}


def _assert_delivered_once(warehouse, inbox, period: str) -> None:
    copies = _copies(inbox, period)
    assert copies and set(copies.values()) == {1}, copies  # nobody got anything twice
    for header, recipients in EDITIONS.items():
        got = {rcpt for rcpt, h in copies if h == header.format(p=period)}
        assert got == recipients, (header, got)
    with warehouse.connect() as conn:
        logged = conn.execute(select(report_deliveries.c.variant).where(
            report_deliveries.c.report_id == "monthly_executive",
            report_deliveries.c.period_start == date.fromisoformat(f"{period}-01"))).scalars().all()
    assert sorted(logged) == ["", "inside-sales", "segment-enterprise"]


def test_a_monthly_run_spreads_over_two_workers_and_delivers_once(cluster):
    running, warehouse, _, inbox, store = cluster
    run = _wait_run(running, _trigger(running.airflow, "2026-09"))
    TIMINGS["two workers"] = _seconds(run)
    states = _task_states(running.airflow, run["dag_run_id"])
    assert {s for s, _, _ in states.values()} <= {"success", "skipped"}, states
    hosts = Counter(host for _, host, _ in states.values() if host)
    assert set(hosts) == {"worker1", "worker2"}, states  # both workers ran tasks
    _assert_history_once(warehouse, date(2026, 9, 1), run["dag_run_id"])
    _assert_delivered_once(warehouse, inbox, "2026-09")
    # the rendered files are in the shared store, none on a worker's own disk
    assert (store / "monthly_executive" / "2026-09.pdf").read_bytes().startswith(b"%PDF")
    assert not list(running.homes.glob("*/var/reports/**/*.pdf"))
    # the API server (its own home) serves the PDF a worker rendered, as the email's link does
    status, body = _get(running.airflow, "/kpi-history/report.pdf?grain=monthly&period=2026-09-01")
    assert status == 200 and body.startswith(b"%PDF")
    print(f"\ntwo workers: {TIMINGS['two workers']:.1f} s, tasks per worker {dict(hosts)}")


def test_a_worker_killed_mid_compute_is_retried_on_the_other_and_nothing_is_doubled(cluster):
    running, warehouse, crm, inbox, _ = cluster
    airflow = running.airflow
    locker = create_engine(crm.url).connect()
    locker.execute(text("LOCK TABLE opportunities IN ACCESS EXCLUSIVE MODE"))  # held until rollback
    try:
        run_id = _trigger(airflow, "2026-10")
        deadline = time.monotonic() + 300
        while True:
            assert time.monotonic() < deadline, _task_states(airflow, run_id)
            state, victim, try_number = _task_states(airflow, run_id).get("compute_sales", (None, None, 0))
            with crm.connect() as conn:
                waiting = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%opportunities%' AND pid <> pg_backend_pid()")).scalar_one()
            if state == "running" and victim and waiting:
                break  # compute_sales is inside its read of opportunities
            time.sleep(0.5)
        assert try_number == 1
        running.kill_worker(victim)
    finally:
        locker.rollback()
        locker.close()
    survivor = next(w for w in running.workers if w != victim)
    run = _wait_run(running, run_id)
    states = _task_states(airflow, run_id)
    assert states["compute_sales"] == ("success", survivor, 2), states
    tries = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/compute_sales/-1/tries")
    first = next(t for t in tries["task_instances"] if t["try_number"] == 1)
    assert first["hostname"] == victim and first["state"] in ("failed", "up_for_retry"), first
    # everything after the kill ran on the survivor
    assert all(host == survivor for task, (_, host, _) in states.items() if task not in ("compute_marketing",
                                                                                         "compute_operations")
               and host), states
    _assert_history_once(warehouse, date(2026, 10, 1), run["dag_run_id"])
    # ops read both tries' logs in the UI, whichever worker wrote them (one shared log folder)
    quoted = quote(run_id, safe="")
    retry_log = json.dumps(airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/compute_sales/logs/2"))
    assert "extract orders:" in retry_log and "staged sales" in retry_log, retry_log[:2000]
    killed_log = json.dumps(airflow.api("GET", f"/dags/{DAG_ID}/dagRuns/{quoted}/taskInstances/compute_sales/logs/1"))
    assert "staged sales" not in killed_log, killed_log[:2000]  # it died before staging anything
    _assert_delivered_once(warehouse, inbox, "2026-10")
    _assert_delivered_once(warehouse, inbox, "2026-09")  # the earlier month untouched
    TIMINGS["kill and retry"] = _seconds(run)
    print(f"\nkilled {victim} in compute_sales try 1; try 2 on {survivor}; run {TIMINGS['kill and retry']:.1f} s")


def test_the_same_run_on_one_worker(cluster):
    running, warehouse, _, inbox, _ = cluster
    assert sum(running.alive(w) for w in running.workers) == 1
    run = _wait_run(running, _trigger(running.airflow, "2026-08"))
    TIMINGS["one worker"] = _seconds(run)
    hosts = {host for _, host, _ in _task_states(running.airflow, run["dag_run_id"]).values() if host}
    assert len(hosts) == 1
    _assert_history_once(warehouse, date(2026, 8, 1), run["dag_run_id"])
    _assert_delivered_once(warehouse, inbox, "2026-08")
    report = Path(running.homes / "shared" / "timings.json")
    report.write_text(json.dumps(TIMINGS, indent=1))
    print(f"\nmonthly run: one worker {TIMINGS['one worker']:.1f} s, two workers "
          f"{TIMINGS.get('two workers', float('nan')):.1f} s")
