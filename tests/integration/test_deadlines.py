"""Deadline Alerts: the reference, the message ops get, and both ways it reaches them.

The scheduler side (a scheduled run missing its deadline fires the alert) runs against a real
standalone Airflow in tests/e2e/test_scheduler_deadline.py; here the parts are checked one by one.
"""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesParser

import pytest

from crm_kpis.orchestration.deadlines import PeriodEndDeadline, describe_run, overdue_message, report_overdue
from tests.e2e.helpers import smtp_server

RUN = {
    "dag_id": "crm_kpis_daily", "dag_run_id": "scheduled__2026-11-30", "run_type": "scheduled",
    "data_interval_start": "2026-11-30T00:00:00Z", "data_interval_end": "2026-12-01T00:00:00Z",
    "logical_date": "2026-11-30T00:00:00Z", "queued_at": "2026-12-01T00:00:05Z",
    "start_date": "2026-12-01T00:00:06Z", "end_date": None, "state": "running",
}


def context(**changes):
    return {"dag_run": {**RUN, **changes}, "deadline": {"id": "d1", "deadline_time": "2026-12-01T06:00:00+00:00"}}


@pytest.mark.parametrize(("changes", "said"), [
    ({"state": "failed", "end_date": "2026-12-01T00:09:00Z"}, "the run failed (ended 2026-12-01T00:09:00Z)"),
    ({}, "still running, since 2026-12-01T00:00:06Z: it hangs or is slow"),
    ({"state": "queued", "start_date": None}, "queued at 2026-12-01T00:00:05Z and never started"),
])
def test_the_alert_says_whether_the_run_failed_hung_or_never_started(changes, said):
    assert said in describe_run({**RUN, **changes})


def test_the_message_names_report_period_deadline_and_links_the_run(monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://airflow.internal:8443/")
    subject, body = overdue_message(context(), "daily_operations", 6)
    assert subject == "[CRM KPIs] daily_operations for 2026-11-30 not delivered by its deadline (6 h after the period)"
    assert "not delivered by 2026-12-01T06:00:00+00:00" in body
    assert '<a href="http://airflow.internal:8443/dags/crm_kpis_daily/runs/scheduled__2026-11-30">' in body
    assert "still running" in body


def test_without_smtp_the_deadline_alert_goes_to_the_outbox(test_home, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    report_overdue(context(state="failed", dag_run_id="scheduled__{weird}"), ["ops@example.com"], "daily_operations", 6)
    [eml] = (test_home / "outbox" / "alerts").glob("deadline-crm_kpis_daily-scheduled__*weird*.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert msg["To"] == "ops@example.com"
    assert "not delivered by its deadline" in msg["Subject"]
    assert "runs/scheduled__{weird}" in msg.get_body(("html",)).get_content()  # braces kept, not read as Jinja
    eml.unlink()


def test_with_smtp_the_deadline_alert_is_emailed():
    with smtp_server() as (inbox, conn):
        mp = pytest.MonkeyPatch()
        mp.setenv("AIRFLOW_CONN_SMTP_DEFAULT", conn)
        try:
            report_overdue(context(state="queued", start_date=None, dag_run_id="scheduled__{{ x }}"),
                           ["ops@example.com", "oncall@example.com"], "daily_operations", 6)
        finally:
            mp.undo()
    [mail] = inbox.messages
    assert sorted(mail["rcpt"]) == ["oncall@example.com", "ops@example.com"]
    body = mail["message"].get_body(("html",)).get_content()
    assert "never started" in body and "runs/scheduled__{{ x }}" in body  # final text, not a template


def test_only_a_scheduled_run_gets_a_deadline_at_its_periods_end(airflow_db):
    """Evaluated against the metadata database, as the scheduler does when it creates a run."""
    import pendulum
    from airflow.models import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    from crm_kpis.orchestration.deadlines import delivery_deadline

    reference = PeriodEndDeadline()
    start, end = pendulum.datetime(2026, 3, 29, tz="Europe/Berlin"), pendulum.datetime(2026, 3, 30, tz="Europe/Berlin")
    with create_session() as session:
        for run_type in (DagRunType.SCHEDULED, DagRunType.MANUAL, DagRunType.BACKFILL_JOB):
            session.add(DagRun(dag_id="deadline_probe", run_id=f"{run_type.value}__probe", run_type=run_type,
                               logical_date=start + timedelta(seconds=list(DagRunType).index(run_type)),
                               data_interval=(start, end), run_after=end, state=DagRunState.QUEUED,
                               triggered_by=DagRunTriggeredByType.TEST))
        session.flush()
        found = {rt: reference._evaluate_with(session=session, dag_id="deadline_probe", run_id=f"{rt}__probe")
                 for rt in ("scheduled", "manual", "backfill")}
        session.rollback()
    # a 23-hour day (DST): the deadline follows the period's real end, not logical date + 24 h
    assert found == {"scheduled": end.in_timezone("UTC"), "manual": None, "backfill": None}
    alert = delivery_deadline("daily_operations", 6, ("ops@example.com",))
    assert alert.interval == timedelta(hours=6) and isinstance(alert.reference, PeriodEndDeadline)
