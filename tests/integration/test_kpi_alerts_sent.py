"""KPI alerts end to end from a published history: a rule that fires is sent once per (rule,
period) to its owners, by email to a real SMTP server process and to Slack through a real HTTP
server process, however often the task runs; a backfill sends none unless asked; a report with
`send_when: alert` is sent only for a period where an alert fired."""

from __future__ import annotations

from datetime import UTC
from email import policy
from email.parser import BytesParser

import pytest
import yaml

from crm_kpis.compute import AreaResult
from crm_kpis.history.store import publish_period, stage_area
from crm_kpis.kpis.base import KpiValue
from crm_kpis.orchestration import tasks
from crm_kpis.periods import ReportPeriod
from tests.integration.test_chat_channels import posts, webhook
from tests.integration.test_delivery_faults import copies, smtp
from tests.integration.test_test_send import received

SEP, OCT = ReportPeriod.parse("monthly", "2026-09"), ReportPeriod.parse("monthly", "2026-10")
AREAS = ("marketing", "sales", "operations")


@pytest.fixture()
def published(tmp_path, monkeypatch, warehouse):
    """Revenue 1000 in September, 940 in October (−6.0 %); churn 3.0 % then 3.2 %."""
    for period, revenue, churn in ((SEP, 1000.0, 0.030), (OCT, 940.0, 0.032)):
        values = [KpiValue("sales.revenue", revenue, None, None), KpiValue("sales.churn_rate", churn, 3.0, 100.0)]
        for area in AREAS:
            stage_area(warehouse, f"run-{period.key}", AreaResult(area, period, values if area == "sales" else []))
        publish_period(warehouse, period, f"run-{period.key}", AREAS)
    config = {"reports": {"monthly_executive": {"grain": "monthly", "to": ["ceo@example.com"], "send_when": "alert"}},
              "kpi_alerts": [
                  {"kpi": "sales.revenue", "grain": "monthly", "change_below": -5, "to": ["cfo@example.com"],
                   "slack": "slack_kpis"},
                  {"kpi": "sales.churn_rate", "grain": "monthly", "above": 0.035, "to": ["cfo@example.com"]}]}
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("CRM_KPIS_CONFIG", str(path))
    monkeypatch.setenv("AIRFLOW_CONN_KPI_WAREHOUSE", str(warehouse.url))
    return warehouse


def _send(period: ReportPeriod, run: str = "manual__1", run_type: str = "manual", deliver: str = "auto"):
    return tasks.send_kpi_alerts("monthly", period.utc_start.replace(tzinfo=UTC), period.utc_end.replace(tzinfo=UTC),
                                    run, deliver_param=deliver, run_type=run_type, run_instance=f"{run}|1")


def test_a_fired_alert_reaches_its_owners_once(tmp_path, published):
    with smtp(tmp_path) as (record, _), webhook(tmp_path) as chat:
        assert _send(SEP)["status"] == "none fired"  # the first month has nothing to compare with
        first = _send(OCT)
        assert first["fired"] == ["sales-revenue-change-below"]  # churn 3.2 % is not above 3.5 %
        for run in ("manual__1", "manual__2"):  # the task's retry, a re-run of the period: no second copy
            assert {d["status"] for d in _send(OCT, run=run)["deliveries"]} == {"skipped"}
    assert copies(record) == {"cfo@example.com": 1}
    (message,) = [BytesParser(policy=policy.default).parsebytes(r["data"].encode()) for r in received(record)]
    assert message["Subject"] == "[CRM KPIs alert] Revenue October 2026: $940.00, −6.0 % against the previous " \
        "period ($1,000)"
    assert message["To"] == "cfo@example.com" and not list(message.iter_attachments())
    assert "Rule sales-revenue-change-below: a change below −5 % against the previous period." in \
        message.get_body(("plain",)).get_content()
    (post,) = posts(chat)
    assert post["body"]["text"].startswith("[CRM KPIs alert] Revenue October 2026")
    assert post["body"]["blocks"][1]["elements"][0]["url"].endswith("/plugin/kpi-history?grain=monthly&kpi=sales.revenue&until=2026-10-01")


def test_a_backfill_alerts_nobody_unless_asked(tmp_path, published):
    with smtp(tmp_path) as (record, _), webhook(tmp_path) as chat:
        quiet = _send(OCT, run="backfill__1", run_type="backfill")
        assert quiet["status"] == "not requested" and quiet["fired"] == ["sales-revenue-change-below"]
        assert copies(record) == {} and posts(chat) == []
        assert _send(OCT, run="backfill__2", run_type="backfill", deliver="yes")["status"] == "sent"
    assert copies(record) == {"cfo@example.com": 1}


def test_a_report_sent_only_when_an_alert_fired(published):
    from crm_kpis.config.settings import load_settings

    report = load_settings().report_for_grain("monthly")
    assert tasks._nothing_to_say(published, report, OCT) == ""  # revenue fell 6 %: the report goes out
    assert tasks._nothing_to_say(published, report, SEP) == \
        "not sent: send_when is alert and no KPI alert fired for the period"
