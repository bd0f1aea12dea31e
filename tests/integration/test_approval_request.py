"""What the approval step decides and asks (tasks.approval_request), from the published run:
`warnings` asks only for a period whose quality gate raised warnings, `always` asks every time,
`never` never; the request names the period, lists the warnings and links every edition's PDF."""

from __future__ import annotations

import re
from datetime import UTC
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from crm_kpis.compute import AreaResult
from crm_kpis.config.settings import settings_from
from crm_kpis.delivery.shared_links import link_secret, verify
from crm_kpis.history.store import publish_period, stage_area
from crm_kpis.orchestration import tasks
from crm_kpis.periods import ReportPeriod

SEP, OCT = ReportPeriod.parse("monthly", "2026-09"), ReportPeriod.parse("monthly", "2026-10")


@pytest.fixture()
def configure(tmp_path, monkeypatch, warehouse):
    for period, warnings in ((SEP, []), (OCT, ["volume: orders 41 % of usual"])):
        for area in ("marketing", "sales", "operations"):
            stage_area(warehouse, f"run-{period.key}", AreaResult(area, period, []))
        publish_period(warehouse, period, f"run-{period.key}", ("marketing", "sales", "operations"), warnings)
    monkeypatch.setenv("AIRFLOW_CONN_KPI_WAREHOUSE", str(warehouse.url))

    def with_approval(approval: dict) -> None:
        path = tmp_path / f"reports-{approval['when']}.yaml"
        path.write_text(yaml.safe_dump({"reports": {"monthly_executive": {
            "grain": "monthly", "title": "Monthly KPI report", "to": ["ceo@example.com"], "approval": approval,
            "variants": [{"dimension": "segment", "member": "smb", "to": ["smb@example.com"]}]}}}))
        monkeypatch.setenv("CRM_KPIS_CONFIG", str(path))

    return with_approval


def _ask(period: ReportPeriod) -> dict:
    return tasks.approval_request("monthly", period.utc_start.replace(tzinfo=UTC), period.utc_end.replace(tzinfo=UTC))


def test_warnings_ask_only_when_the_gate_raised_some(configure):
    configure({"when": "warnings", "timeout_hours": 6, "on_timeout": "approve"})
    assert _ask(SEP) == {"needed": False, "reason": "the quality gate raised no warning for the period"}
    request = _ask(OCT)
    assert request["needed"] and request["reason"] == "the quality gate raised 1 warning(s)"
    assert request["subject"] == "Send the Monthly KPI report for October 2026?"
    body = request["body"]
    assert "- volume: orders 41 % of usual" in body
    # each edition's PDF through a link the approver opens without an Airflow login (a signed one)
    links = re.findall(r"\]\(([^)]+)\) \(opens without a login until ([^)]+)\)", body)
    assert len(links) == 2 and all(u.split("?")[0].endswith("/kpi-history/shared/report.pdf") for u, _ in links)
    first, smb = (parse_qs(urlsplit(u).query, keep_blank_values=True) for u, _ in links[:2])
    assert (first["period"], first["variant"], smb["variant"]) == (["2026-10-01"], [""], ["segment-smb"])
    assert verify(link_secret(), "monthly", "2026-10-01", "segment-smb", smb["expires"][0], smb["sig"][0]) == OCT.start_date
    assert body.endswith("Unanswered after 6 h: approve.")


def test_always_and_never(configure):
    configure({"when": "always"})
    assert _ask(SEP)["needed"] and _ask(SEP)["reason"] == "the report asks for approval every time"
    configure({"when": "never"})
    assert not _ask(OCT)["needed"]


@pytest.mark.parametrize("bad", [{"when": "sometimes"}, {"when": "always", "on_timeout": "ignore"},
                                 {"when": "always", "timeout_hours": 0}, "always"])
def test_the_approval_setting_is_checked(bad):
    with pytest.raises(ValueError, match=r"reports\.m\.approval"):
        settings_from({"reports": {"m": {"grain": "monthly", "to": "a@example.com", "approval": bad}}})


def test_a_run_that_sends_nothing_asks_nobody(configure):
    """Every backfill (deliver=auto) waited for a person, whose request said "Approve sends every
    edition" although nothing would be sent: such runs are approved at once, saying why."""
    configure({"when": "always"})
    start, end = OCT.utc_start.replace(tzinfo=UTC), OCT.utc_end.replace(tzinfo=UTC)
    assert tasks.approval_request("monthly", start, end, "auto", "backfill") == {
        "needed": False, "reason": "the run sends nothing (deliver=auto, backfill run): nothing to approve"}
    assert not tasks.approval_request("monthly", start, end, "no", "manual")["needed"]
    assert tasks.approval_request("monthly", start, end, "auto", "manual", test_to="me@example.com")["reason"] == (
        "a test send goes to me@example.com only, not to the report's recipients: nothing to approve")
    assert tasks.approval_request("monthly", start, end, "yes", "backfill")["needed"]  # a backfill that delivers
    assert tasks.approval_request("monthly", start, end, "auto", "scheduled")["needed"]


def test_each_edition_asks_for_itself(configure):
    """The DAG asks once per edition (the mapped `edition` group): each request names its edition
    and links its own PDF only; an edition reports.yaml does not have fails for good, saying so."""
    configure({"when": "always", "timeout_hours": 6, "on_timeout": "reject"})
    start, end = OCT.utc_start.replace(tzinfo=UTC), OCT.utc_end.replace(tzinfo=UTC)
    company = tasks.approval_request("monthly", start, end, edition_id="")
    smb = tasks.approval_request("monthly", start, end, edition_id="segment-smb")
    assert company["subject"] == "Send the Monthly KPI report for October 2026?"
    assert smb["subject"] == "Send the Monthly KPI report · Smb (customer segment) for October 2026?"
    for request, variant in ((company, ""), (smb, "segment-smb")):
        [link] = re.findall(r"\]\(([^)]+)\) \(opens without a login", request["body"])
        assert parse_qs(urlsplit(link).query, keep_blank_values=True)["variant"] == [variant]
        assert "Approve sends this edition to its recipients; Reject sends nothing of it." in request["body"]
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="has no variant 'segment-gone'"):
        tasks.approval_request("monthly", start, end, edition_id="segment-gone")
