"""Failure alerts without a mail server, and for a run without a period."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from types import SimpleNamespace

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
