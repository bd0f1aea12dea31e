"""Both DAGs end to end with `dag.test()`: generated data, real SMTP server, PDF read back.

What a user relies on, checked here as they would see it: the email arrives with a plain-text
part, an HTML part and the PDF; the PDF's text shows the three areas and the numbers stored in
the history; a re-run gives the same history and sends nothing; `resend` sends exactly once more.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pendulum
import pytest

from crm_kpis.config.settings import load_settings
from crm_kpis.history.store import read_history
from crm_kpis.kpis import REGISTRY
from crm_kpis.paths import PROJECT_DIR
from crm_kpis.report.context import alternatives
from crm_kpis.report.formatting import format_value
from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for
from crm_kpis.tools.local_airflow import run_in_process
from tests.e2e.helpers import smtp_server


@pytest.fixture(scope="module", autouse=True)
def poppler():
    assert shutil.which("pdftotext") and shutil.which("pdftoppm"), \
        "pdftotext/pdftoppm not found: install Debian's poppler-utils (.ci/run does)"


@pytest.fixture(scope="module")
def smtp_inbox():
    with smtp_server() as (inbox, conn):
        mp = pytest.MonkeyPatch()
        mp.setenv("AIRFLOW_CONN_SMTP_DEFAULT", conn)
        yield inbox
        mp.undo()



@pytest.fixture(scope="module")
def dags(airflow_db, demo_sources):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    assert bag.import_errors == {}
    return {"monthly": bag.get_dag("crm_kpis_monthly"), "daily": bag.get_dag("crm_kpis_daily")}


def run(dag, logical: tuple[int, int, int], conf: dict | None = None):
    dag_run = run_in_process(dag, logical_date=pendulum.datetime(*logical, tz="UTC"), run_conf=conf)
    assert str(dag_run.state).endswith("success"), f"{dag.dag_id} {logical}: {dag_run.state}"
    return dag_run


def edition_states(dag_run, task_id: str) -> dict[str | None, str]:
    """States of a task's instances in the run: by edition ("company" or the variant's id, the
    order of reports.yaml's editions is the map index) for the mapped `edition.*` tasks, else None."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    editions = [e.edition_id or "company" for e in load_settings().report_for_grain("monthly").editions()]
    with create_session() as session:
        tis = session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id).all()
        return {None if ti.map_index < 0 else editions[ti.map_index]: str(getattr(ti.state, "value", ti.state))
                for ti in tis}


def company_values(grain: str, start) -> dict[str, float | None]:
    h = read_history(engine_for(WAREHOUSE_CONN_ID), grain, [start], company_only=True)
    return {r.kpi_id: (None if r.value != r.value else r.value) for r in h.itertuples()}


def reports(messages: list) -> list:
    """The report emails (KPI alerts are counted apart)."""
    return [m for m in messages if not str(m["message"]["X-CRM-KPIs-Report"] or "").startswith("kpi_alert.")]


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_monthly_and_daily_runs_deliver_reports(dags, smtp_inbox, tmp_path):
    # September, then October: the October report compares with September from the history.
    # A run's logical date is its period's start, as the scheduler's runs have it.
    run(dags["monthly"], (2026, 9, 1))
    october_run = run(dags["monthly"], (2026, 10, 1))
    assert (october_run.data_interval_start.date().isoformat(), october_run.data_interval_end.date().isoformat()) == (
        "2026-10-01", "2026-11-01")
    assert october_run.logical_date.date().isoformat() == "2026-10-01"
    run(dags["daily"], (2026, 10, 31))

    # each monthly run: the company-wide report and one edition per variant (two in reports.yaml)
    report = load_settings().report_for_grain("monthly")
    assert len(report.variants) == 2
    assert len(reports(smtp_inbox.messages)) == 2 * 3 + 1
    # the KPI alerts that fire for these periods (reports.yaml's rules on the published history), once each
    from crm_kpis.orchestration.tasks import fired_alerts
    from crm_kpis.periods import ReportPeriod

    expected = sorted(f"{hit.rule.rule_id} {p.key}" for g, k in (("monthly", "2026-09"), ("monthly", "2026-10"),
                                                                ("daily", "2026-10-31"))
                      for p in [ReportPeriod.parse(g, k)]
                      for hit in fired_alerts(engine_for(WAREHOUSE_CONN_ID), load_settings(), p))
    alerts = [m for m in smtp_inbox.messages if m not in reports(smtp_inbox.messages)]
    assert sorted(m["message"]["X-CRM-KPIs-Report"].removeprefix("kpi_alert.") for m in alerts) == expected
    october = next(m for m in smtp_inbox.messages if m["message"]["Subject"].startswith(
        "Monthly KPI report · October 2026"))
    msg = october["message"]
    assert sorted(october["rcpt"]) == sorted([*report.to, *report.cc])
    assert msg["From"] == "kpi-reports@example.com"
    assert msg["Subject"].startswith("Monthly KPI report · October 2026")
    text_body = msg.get_body(("plain",)).get_content()
    html_body = msg.get_body(("html",)).get_content()
    (pdf_part,) = list(msg.iter_attachments())
    assert pdf_part.get_content_type() == "application/pdf"
    assert pdf_part.get_filename() == "monthly-kpi-report-2026-10.pdf"
    pdf = tmp_path / "october.pdf"
    pdf.write_bytes(pdf_part.get_content())

    # the numbers in the PDF and in both bodies are the ones in the history table

    values = company_values("monthly", date(2026, 10, 1))
    assert len(values) == len([k for k in REGISTRY.values() if k.applies_to("monthly")])
    text = pdf_text(pdf)
    for area in ("Marketing", "Sales", "Operations", "Appendix: KPI definitions"):
        assert area in text
    for kpi_id in ("sales.revenue", "sales.orders", "sales.churn_rate", "marketing.nps", "operations.csat",
                   "operations.first_response_hours", "operations.sla_compliance_rate", "sales.win_rate"):
        shown = format_value(values[kpi_id], REGISTRY[kpi_id].unit)
        assert shown in text, f"{kpi_id} {shown} not in the PDF"
    for entry in report.headline:  # `sales.revenue or sales.bookings`: revenue, which the demo has
        kpi_id = alternatives(entry)[0]
        shown = format_value(values[kpi_id], REGISTRY[kpi_id].unit)
        assert shown in text_body and shown in html_body, kpi_id

    # a rendered page shows content (not a blank or cut-off page)
    subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(pdf), str(tmp_path / "page")], check=True)
    from PIL import Image

    page = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
    dark = sum(1 for p in page.getdata() if p < 128) / (page.width * page.height)
    assert 0.01 < dark < 0.5, f"page 1 looks blank or broken ({dark:.3%} dark pixels)"

    # the enterprise edition: to its own recipient only, the member named in subject, file and title,
    # the member's values where the history breaks a KPI down by segment, the company's marked elsewhere
    enterprise = next(m for m in smtp_inbox.messages if m["message"]["Subject"].startswith(
        "Monthly KPI report · Enterprise (customer segment) · October 2026"))
    assert enterprise["rcpt"] == ["vp-enterprise@example.com"]
    (part,) = list(enterprise["message"].iter_attachments())
    assert part.get_filename() == "monthly-kpi-report-enterprise-customer-segment-2026-10.pdf"
    edition = tmp_path / "enterprise.pdf"
    edition.write_bytes(part.get_content())
    text = pdf_text(edition)
    assert "Enterprise (customer segment): October 2026" in " ".join(text.split())  # the title, wrapped
    members = read_history(engine_for(WAREHOUSE_CONN_ID), "monthly", [date(2026, 10, 1)])
    own = members[(members["dimension"] == "segment") & (members["member"] == "enterprise")].set_index("kpi_id")
    for kpi_id in ("sales.revenue", "sales.win_rate", "sales.churn_rate"):
        assert format_value(own.at[kpi_id, "value"], REGISTRY[kpi_id].unit) in text, kpi_id
    assert format_value(values["sales.revenue"], "money") not in text.split("Sales by")[0]  # not the company's
    flat = " ".join(text.split())
    assert "Marketing (company-wide: no KPI of this area is broken down by segment)" in flat
    assert "Sales calls (company-wide)" in flat  # a sales KPI broken down by team only
    assert "Revenue (1st of 3)" in flat or "Revenue (2nd of 3)" in flat or "Revenue (3rd of 3)" in flat
    inside = next(m for m in smtp_inbox.messages if "Inside Sales (sales team) · October 2026" in m["message"]["Subject"])
    assert inside["rcpt"] == ["head-inside-sales@example.com"]


def test_rerun_gives_identical_history_and_sends_nothing(dags, smtp_inbox):
    from datetime import date

    sent = len(reports(smtp_inbox.messages))
    before = company_values("monthly", date(2026, 10, 1))
    again = run(dags["monthly"], (2026, 10, 1))
    assert company_values("monthly", date(2026, 10, 1)) == before
    assert len(reports(smtp_inbox.messages)) == sent, "a re-run must not email the same report again"
    # Airflow's skipped state, not a green success, for every edition
    assert edition_states(again, "edition.send_report") == dict.fromkeys(
        ("company", "segment-enterprise", "inside-sales"), "skipped")

    run(dags["monthly"], (2026, 10, 1), conf={"resend": True})
    assert len(reports(smtp_inbox.messages)) == sent + 3  # the company-wide report and both variants, again

    run(dags["monthly"], (2026, 10, 1), conf={"deliver": "no", "resend": True})
    assert len(reports(smtp_inbox.messages)) == sent + 3

    # a test send, even from a run that delivers nothing: the one address only, marked, not a delivery;
    # every edition, or the one chosen
    test_run = run(dags["monthly"], (2026, 10, 1), conf={"deliver": "no", "test_to": "analyst@example.com"})
    assert len(reports(smtp_inbox.messages)) == sent + 6
    assert {m["rcpt"][0] for m in reports(smtp_inbox.messages)[-3:]} == {"analyst@example.com"}
    assert sorted(m["message"]["Subject"].split(": ")[0] for m in reports(smtp_inbox.messages)[-3:]) == [
        "[TEST] Monthly KPI report · Enterprise (customer segment) · October 2026",
        "[TEST] Monthly KPI report · Inside Sales (sales team) · October 2026",
        "[TEST] Monthly KPI report · October 2026"]
    assert set(edition_states(test_run, "edition.send_report").values()) == {"success"}
    one = run(dags["monthly"], (2026, 10, 1), conf={"deliver": "no", "test_to": "analyst@example.com",
                                                   "test_variant": "inside-sales"})
    assert len(reports(smtp_inbox.messages)) == sent + 7
    # the other editions' send tasks say why they sent nothing: skipped, not failed
    assert edition_states(one, "edition.send_report") == {"company": "skipped", "segment-enterprise": "skipped",
                                                          "inside-sales": "success"}
    assert reports(smtp_inbox.messages)[-1]["message"]["Subject"].startswith("[TEST] Monthly KPI report · Inside Sales")
    # the report's own delivery still counts as done (dag.test() keeps the run's earlier conf: reset it)
    run(dags["monthly"], (2026, 10, 1), conf={"test_to": "", "test_variant": ""})
    assert len(reports(smtp_inbox.messages)) == sent + 7


def test_a_failing_run_alerts_ops_and_changes_nothing(dags, smtp_inbox, monkeypatch):
    """An impossible value stops the run at the gate (no retries): ops get an alert, executives nothing."""
    from dataclasses import replace
    from datetime import date

    from crm_kpis.kpis.base import Measure

    broken = REGISTRY["operations.csat"]
    monkeypatch.setitem(REGISTRY, "operations.csat", replace(broken, compute=lambda x: [Measure(1.5)]))
    sent = len(smtp_inbox.messages)
    dag_run = run_in_process(dags["daily"], logical_date=pendulum.datetime(2026, 10, 28, tz="UTC"))
    assert str(dag_run.state).endswith("failed")
    new = smtp_inbox.messages[sent:]
    assert len(new) == 1, [m["message"]["Subject"] for m in new]  # the alert, and no report
    alert = new[0]
    assert alert["rcpt"] == list(load_settings().alerts_to)
    assert alert["message"]["Subject"] == "[CRM KPIs] crm_kpis_daily failed at check_quality for 2026-10-28"
    body = alert["message"].get_body(("html",)).get_content()
    assert "operations.csat = 1.5 is outside [0.0, 1.0]" in body
    assert "/dags/crm_kpis_daily/runs/" in body and "/tasks/check_quality?try_number=1" in body  # the log link
    # what the link opens: that try's log, written where a worker's is, says what failed and why
    import json

    from airflow.configuration import conf

    log_file = (Path(conf.get("logging", "base_log_folder")) / "dag_id=crm_kpis_daily" / f"run_id={dag_run.run_id}"
                / "task_id=check_quality" / "attempt=1.log")
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any("operations.csat = 1.5 is outside [0.0, 1.0]" in line["event"] and line["level"] == "error"
               for line in lines)
    [failed] = [line for line in lines if line["event"] == "Task failed with exception"]
    assert failed["error_detail"][0]["exc_type"] == "AirflowFailException"
    assert lines[-1]["event"] == "task ended: failed"
    assert read_history(engine_for(WAREHOUSE_CONN_ID), "daily", [date(2026, 10, 28)]).empty


def test_a_run_posts_to_slack_and_teams_once_each(dags, smtp_inbox, tmp_path, monkeypatch):
    """Slack for the whole report and Teams for a variant, added to the configuration: the next run
    of October posts each once (its email went out already: not again); a re-run posts nothing more.
    The webhooks are a real HTTP server process (tests/webhook_server.py)."""
    import yaml

    from crm_kpis.config.settings import DEFAULT_CONFIG_FILE
    from tests.integration.test_chat_channels import posts, webhook

    config = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text())
    config["reports"]["monthly_executive"]["slack"] = "slack_kpis"
    config["reports"]["monthly_executive"]["variants"][1]["teams"] = "teams_kpis"
    path = tmp_path / "reports.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    monkeypatch.setenv("CRM_KPIS_CONFIG", str(path))
    sent = len(reports(smtp_inbox.messages))
    with webhook(tmp_path) as record:
        # every param given: dag.test() keeps an earlier run's conf for the same logical date
        first = run(dags["monthly"], (2026, 10, 1), conf={"deliver": "auto", "resend": False, "test_to": "",
                                                         "test_variant": ""})
        # Slack for the company-wide report, Teams for Inside Sales; the enterprise edition had nothing left
        assert edition_states(first, "edition.send_report") == {
            "company": "success", "segment-enterprise": "skipped", "inside-sales": "success"}
        assert len(posts(record)) == 2
        again = run(dags["monthly"], (2026, 10, 1))
        assert set(edition_states(again, "edition.send_report").values()) == {"skipped"}
    assert len(reports(smtp_inbox.messages)) == sent  # the emails of October had gone out already
    # editions are mapped task instances: which one posts first is the executor's choice; Slack's first
    slack, teams = sorted(posts(record), key=lambda p: not p["path"].endswith("/slack_kpis"))
    assert slack["path"].endswith("/slack_kpis") and slack["body"]["text"].startswith("Monthly KPI report · October 2026")
    card = teams["body"]["attachments"][0]["content"]
    assert card["body"][0]["text"] == "Monthly KPI report · Inside Sales (sales team) · October 2026"
    # the button opens the edition's PDF without an Airflow login: a link signed for that one file
    from urllib.parse import parse_qs, urlsplit

    from crm_kpis.delivery.shared_links import link_secret, verify

    button = urlsplit(card["actions"][0]["url"])
    assert button.path == "/kpi-history/shared/report.pdf"
    q = {k: v[0] for k, v in parse_qs(button.query, keep_blank_values=True).items()}
    assert (q["grain"], q["period"], q["variant"]) == ("monthly", "2026-10-01", "inside-sales")
    assert str(verify(link_secret(), q["grain"], q["period"], q["variant"], q["expires"], q["sig"])) == "2026-10-01"
