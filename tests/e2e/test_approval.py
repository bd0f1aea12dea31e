"""Approval when in doubt, end to end through a real Airflow's REST API: the monthly report asks
for approval (`approval: {when: always}`), once per edition (the mapped `edition` task group: the
company-wide report is map index 0, then the variants); each run renders, then waits in
`edition.approve_report`; an approver rejects one month's company-wide report (it is not sent, its
variants are approved and go out) and approves another month's every edition, answering as the
UI does, with PATCH …/hitlDetails/<map index>. Then nobody answers: after the configured timeout
the scheduler takes the configured choice."""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
import yaml

from crm_kpis.paths import PROJECT_DIR
from crm_kpis.tools.local_airflow import standalone
from tests.e2e.helpers import free_port_block, smtp_server

DAG_ID = "crm_kpis_monthly"
TIMEOUT_S = 300


@pytest.fixture(scope="module")
def approving_airflow(demo_sources, airflow_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("approval")
    config = yaml.safe_load((PROJECT_DIR / "include/config/reports.yaml").read_text())
    config["reports"]["monthly_executive"]["approval"] = {"when": "always", "timeout_hours": 24, "on_timeout": "reject"}
    config["kpi_alerts"] = []
    (folder / "reports.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    with smtp_server() as (inbox, smtp_conn):
        extra = {
            "CRM_KPIS_CONFIG": str(folder / "reports.yaml"),
            "AIRFLOW_CONN_KPI_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(folder / "warehouse.db")}),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_conn,
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
        }
        with standalone(free_port_block(), schedule=True, extra_env=extra) as running:
            running.wait_for_dags({DAG_ID})
            end = time.monotonic() + 120
            while "asked for every run" not in (running.api("GET", f"/dags/{DAG_ID}/details").get("doc_md") or ""):
                assert time.monotonic() < end, f"the DAG was not re-parsed with the test configuration; {running.log_file}"
                time.sleep(2)
            try:
                yield running, inbox, folder / "reports.yaml"
            finally:
                running.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": True})


def _no_scheduled_runs(running) -> None:
    """Unpausing makes the scheduler create its own run for the last month, whose data the test set
    lacks (it retries its freshness check): with one active run at a time it would hold ours up."""
    for run in running.api("GET", f"/dags/{DAG_ID}/dagRuns?run_type=scheduled&limit=50")["dag_runs"]:
        if run["dag_run_id"].startswith("scheduled__") and run["state"] not in ("success", "failed"):
            running.api("PATCH", f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}", {"state": "failed"})


def _trigger(running, month: str) -> str:
    run = running.api("POST", f"/dags/{DAG_ID}/dagRuns", {
        "dag_run_id": f"manual__approval-{month}", "logical_date": f"{month}-01T00:00:00Z",
        "conf": {"deliver": "yes", "resend": False, "test_to": "", "test_variant": ""}})
    return run["dag_run_id"]


EDITIONS = {"company": 0, "segment-enterprise": 1, "inside-sales": 2}  # reports.yaml's order: the map indexes
APPROVE, SEND = "edition.approve_report", "edition.send_report"


def _task_state(running, run_id: str, task_id: str, map_index: int) -> str | None:
    return running.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}")["state"]


def _wait(running, run_id: str, task_id: str, states: set[str], map_index: int = 0) -> str:
    end = time.monotonic() + TIMEOUT_S
    while time.monotonic() < end:
        _no_scheduled_runs(running)
        try:
            state = _task_state(running, run_id, task_id, map_index)
        except Exception:  # the mapped group is not expanded yet: its instances do not exist
            state = None
        if state in states:
            return state
        assert state not in ("failed", "upstream_failed"), f"{task_id}[{map_index}] {state}; see {running.log_file}"
        time.sleep(3)
    raise AssertionError(f"{task_id}[{map_index}] of {run_id} never reached {states}; see {running.log_file}")


def _answer(running, run_id: str, choice: str, map_index: int) -> dict:
    """Answer one edition's request as the UI does, once the scheduler has taken in that the paused
    task's process ended.

    Airflow 3.3.2 race, seen in full test runs: an answer that reached the scheduler before the
    executor's report that the paused process ended made it take that report for the resumed try,
    mark it up for retry, and the retry asked again (once after an answer 1 s after the pause, once
    after 5.8 s on a loaded machine). A person answers later than that; the test waits for the
    scheduler's own log line of that report instead of guessing a delay.
    """
    _wait_for_log(running, re.compile(
        rf"Received executor event with state success for task instance TaskInstanceKey\(dag_id='{DAG_ID}', "
        rf"task_id='{re.escape(APPROVE)}', run_id='{re.escape(run_id)}', try_number=\d+, map_index={map_index}\)"))
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{APPROVE}/{map_index}/hitlDetails"
    request = running.api("GET", path)
    running.api("PATCH", path, {"chosen_options": [choice], "params_input": {}})
    return request


def _wait_for_log(running, line: re.Pattern, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not line.search(running.log_file.read_text(errors="replace")):
        assert time.monotonic() < end, f"no {line.pattern!r} in {running.log_file} after {timeout:.0f} s"
        time.sleep(1)


def reports(inbox, month: str) -> list:
    return [m for m in inbox.messages if month in str(m["message"]["Subject"])]


def test_each_edition_is_approved_on_its_own_and_a_rejected_one_sends_nothing(approving_airflow):
    running, inbox, _ = approving_airflow
    rejected, approved = _trigger(running, "2026-10"), _trigger(running, "2026-09")
    running.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": False})
    for index in EDITIONS.values():
        _wait(running, rejected, APPROVE, {"awaiting_input", "deferred"}, index)
    assert _task_state(running, rejected, SEND, 0) in (None, "none", "scheduled", "queued")  # waits
    request = _answer(running, rejected, "Reject", EDITIONS["company"])
    assert request["subject"] == "Send the Monthly KPI report for October 2026?"
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    body = request["body"]
    assert "the report asks for approval every time" in body and "No data warnings." in body
    # the edition's rendered PDF to look at, through a link that opens without a login
    [link] = re.findall(r"\]\((http[^)]+/kpi-history/shared/report\.pdf\?[^)]+)\)", body)
    assert "period=2026-10-01" in link and "variant=&" in link
    with urllib.request.urlopen(link, timeout=30) as opened:  # no cookie, no token
        assert opened.status == 200 and opened.read(5) == b"%PDF-"
    # each variant asks on its own, with its own PDF
    enterprise = _answer(running, rejected, "Approve", EDITIONS["segment-enterprise"])
    assert enterprise["subject"] == "Send the Monthly KPI report · Enterprise (customer segment) for October 2026?"
    assert "variant=segment-enterprise" in enterprise["body"]
    _answer(running, rejected, "Approve", EDITIONS["inside-sales"])
    assert _wait(running, rejected, SEND, {"skipped", "success"}, EDITIONS["company"]) == "skipped"
    for variant in ("segment-enterprise", "inside-sales"):
        assert _wait(running, rejected, SEND, {"skipped", "success"}, EDITIONS[variant]) == "success"
    # the company-wide report was rejected: nobody got it; the approved variants went to their readers
    october = sorted(str(m["message"]["Subject"]).split(" · October")[0] for m in reports(inbox, "October 2026"))
    assert october == ["Monthly KPI report · Enterprise (customer segment)", "Monthly KPI report · Inside Sales (sales team)"]

    for index in EDITIONS.values():
        _wait(running, approved, APPROVE, {"awaiting_input", "deferred"}, index)
        _answer(running, approved, "Approve", index)
    for index in EDITIONS.values():
        assert _wait(running, approved, SEND, {"skipped", "success"}, index) == "success"
    assert len(reports(inbox, "September 2026")) == 3  # the company-wide report and both variants


def test_an_unanswered_request_takes_the_configured_choice(approving_airflow):
    """`timeout_hours: 0.01` (36 s) and `on_timeout: approve`: nobody answers, and the report goes out."""
    running, inbox, config_path = approving_airflow
    config = yaml.safe_load(config_path.read_text())
    config["reports"]["monthly_executive"]["approval"] = {"when": "always", "timeout_hours": 0.01,
                                                          "on_timeout": "approve"}
    config_path.write_text(yaml.safe_dump(config, allow_unicode=True))
    end = time.monotonic() + 120
    while "unanswered after 0.01 h: approve" not in (running.api("GET", f"/dags/{DAG_ID}/details").get("doc_md") or ""):
        assert time.monotonic() < end, f"the DAG was not re-parsed with the new approval; {running.log_file}"
        time.sleep(2)
    unanswered = _trigger(running, "2026-08")
    _wait(running, unanswered, APPROVE, {"awaiting_input", "deferred"})
    request = running.api("GET", f"/dags/{DAG_ID}/dagRuns/{unanswered}/taskInstances/{APPROVE}/0/hitlDetails")
    assert request["defaults"] == ["Approve"] and request["response_received"] is False
    for index in EDITIONS.values():  # the timeout approved every edition
        assert _wait(running, unanswered, SEND, {"skipped", "success"}, index) == "success"
    assert len(reports(inbox, "August 2026")) == 3
