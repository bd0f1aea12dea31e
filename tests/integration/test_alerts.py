"""Failure alerts without a mail server, and for a run without a period."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from types import SimpleNamespace

import pytest

from crm_kpis.orchestration.dag_factory import failure_alert


def context(**extra):
    ti = SimpleNamespace(dag_id="crm_kpis_monthly", task_id="compute_sales", try_number=1,
                         log_url="http://127.0.0.1:8080/dags/crm_kpis_monthly/runs/r/tasks/compute_sales?try_number=1")
    return {"ti": ti, "task_instance": ti, "run_id": "manual__2026-10__x", "dag": None, **extra}


def test_without_smtp_the_alert_is_written_to_the_outbox_and_shows_the_first_line(test_home, monkeypatch, caplog):
    from datetime import datetime

    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    error = RuntimeError("query crm/orders.sql failed on sqlite:///crm.db: no such column: o.total_amount\n"
                         "[SQL: SELECT o.order_id, … 40 lines of SQL …]")
    failure_alert(("ops@example.com",))(context(
        data_interval_start=datetime(2026, 10, 1), data_interval_end=datetime(2026, 11, 1), exception=error))
    [eml] = (test_home / "outbox" / "alerts").glob("crm_kpis_monthly-compute_sales-manual__2026-10__x-1.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert msg["Subject"] == "[CRM KPIs] crm_kpis_monthly failed at compute_sales for 2026-10-01"
    assert msg["To"] == "ops@example.com"
    html = msg.get_body(("html",)).get_content()
    assert "<b>query crm/orders.sql failed on sqlite:///crm.db: no such column: o.total_amount</b>" in html
    assert "the full error and its trace are in the log" in html
    assert "written to" in caplog.text and str(eml) in caplog.text
    eml.unlink()


def test_a_run_without_a_logical_date_still_alerts(test_home, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    failure_alert(("ops@example.com",))(context(data_interval_start=None, data_interval_end=None,
                                                exception=RuntimeError("this run has no data interval")))
    [eml] = (test_home / "outbox" / "alerts").glob("crm_kpis_monthly-compute_sales-*.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    assert msg["Subject"] == "[CRM KPIs] crm_kpis_monthly failed at compute_sales for a run without a period"
    assert "the run has no logical date" in msg.get_body(("html",)).get_content()
    eml.unlink()


def test_an_alert_about_a_stalled_mail_server_still_arrives_by_chat_outbox_and_log(test_home, tmp_path, caplog):
    """The failure is the mail server's: the alert's email goes to that same stalled server and times
    out, so it must arrive by the other paths (the chat channel, the outbox, an ERROR log line)."""
    import logging
    from datetime import datetime

    from tests.integration.test_chat_channels import posts, webhook
    from tests.integration.test_delivery_faults import copies, smtp

    error = RuntimeError("monthly_executive for monthly 2026-10 (UTC) (Message-ID <monthly_executive.2026-10.all.0@"
                         "crm-kpis.local>): the outcome is unknown for ceo@example.com (connection lost during DATA)")
    with webhook(tmp_path) as chat, smtp(tmp_path, "--stall-data", "4", timeout=1) as (mail, _):
        caplog.set_level(logging.INFO)
        failure_alert(("ops@example.com",), (("slack", "slack_kpis"),))(context(
            data_interval_start=datetime(2026, 10, 1), data_interval_end=datetime(2026, 11, 1), exception=error))
    [post] = posts(chat)
    said = post["body"]
    assert said["text"] == "[CRM KPIs] crm_kpis_monthly failed at compute_sales for 2026-10-01"
    section = said["blocks"][0]["text"]["text"]
    assert "the outcome is unknown for ceo@example.com" in section and "Period: 2026-10-01" in section
    assert said["blocks"][1]["elements"][0]["url"] == context()["ti"].log_url
    [eml] = (test_home / "outbox" / "alerts").glob("crm_kpis_monthly-compute_sales-*.eml")
    msg = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    text = msg.get_body(("plain",)).get_content()
    assert "the outcome is unknown for ceo@example.com" in text and "This alert is HTML" not in text
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(m.startswith("ALERT [CRM KPIs] crm_kpis_monthly failed at compute_sales") and str(eml) in m for m in errors)
    assert any("the alert could not be emailed through smtp_default" in m for m in errors)
    assert copies(mail) == {"ops@example.com": 1}  # the stalled server kept it late: at most one copy
    eml.unlink()


def test_an_alert_chat_channel_that_is_down_leaves_the_email_and_the_outbox(test_home, tmp_path, caplog):
    import json
    import logging
    from datetime import datetime

    from tests.e2e.helpers import free_port
    from tests.integration.test_delivery_faults import copies, smtp

    with smtp(tmp_path) as (mail, _), pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_SLACK_OPS", json.dumps({"conn_type": "slackwebhook",
                                                         "password": f"http://127.0.0.1:{free_port()}/s"}))
        failure_alert(("ops@example.com",), (("slack", "slack_ops"),))(context(
            data_interval_start=datetime(2026, 10, 1), data_interval_end=datetime(2026, 11, 1),
            exception=RuntimeError("boom")))
    assert copies(mail) == {"ops@example.com": 1}
    # what the mail server got: a text part in words (Airflow's SMTP hook would send HTML only) and the HTML
    [line] = mail.read_text().splitlines()
    received = BytesParser(policy=policy.default).parsebytes(json.loads(line)["data"].encode())
    assert received.get_body(("plain",)).get_content().startswith("crm_kpis_monthly failed at task compute_sales (try 1).")
    assert "boom" in received.get_body(("plain",)).get_content() and "<" not in received.get_body(("plain",)).get_content()
    assert "boom" in received.get_body(("html",)).get_content()
    assert received["From"] == "kpi@example.com"  # the connection's sender
    assert any("could not be posted to slack:slack_ops" in r.getMessage() for r in caplog.records
               if r.levelno == logging.ERROR)
    [eml] = (test_home / "outbox" / "alerts").glob("crm_kpis_monthly-compute_sales-*.eml")
    eml.unlink()


def test_one_incident_sends_one_alert_however_many_tasks_it_fails(test_home, monkeypatch, caplog):
    """Three compute tasks losing one database fail on three different queries: one alert, the
    others logged as already alerted; another error of the same run is another alert."""
    import logging
    from datetime import datetime

    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    caplog.set_level(logging.INFO)
    start, end = datetime(2026, 9, 1), datetime(2026, 10, 1)
    for area, query in (("marketing", "crm/leads.sql"), ("sales", "crm/orders.sql"), ("operations", "helpdesk/calls.sql")):
        ti = SimpleNamespace(dag_id="crm_kpis_monthly", task_id=f"compute_{area}", try_number=3, log_url="http://x/log")
        failure_alert(("ops@example.com",))({"ti": ti, "task_instance": ti, "run_id": "scheduled__2026-09-01",
                                             "data_interval_start": start, "data_interval_end": end,
                                             "exception": RuntimeError(f"query {query} failed: unable to open database "
                                                                       "file 127.0.0.1:5432")})
    sent = sorted((test_home / "outbox" / "alerts").glob("crm_kpis_monthly-compute_*-scheduled__2026-09-01-3.eml"))
    assert [p.name for p in sent] == ["crm_kpis_monthly-compute_marketing-scheduled__2026-09-01-3.eml"]
    again = [r.getMessage() for r in caplog.records if "not alerted again" in r.getMessage()]
    assert len(again) == 2 and all("alerted by compute_marketing (try 3)" in m for m in again)
    ti = SimpleNamespace(dag_id="crm_kpis_monthly", task_id="render_report", try_number=3, log_url="http://x/log")
    failure_alert(("ops@example.com",))({"ti": ti, "task_instance": ti, "run_id": "scheduled__2026-09-01",
                                         "data_interval_start": start, "data_interval_end": end,
                                         "exception": RuntimeError("WeasyPrint ran out of memory")})
    assert (test_home / "outbox" / "alerts" / "crm_kpis_monthly-render_report-scheduled__2026-09-01-3.eml").exists()
    for path in (test_home / "outbox" / "alerts").glob("*scheduled__2026-09-01*"):
        path.unlink()
