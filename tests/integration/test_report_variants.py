"""Report variants: each manager his own edition, built from the history's breakdown rows and
delivered exactly once per variant.

A hand-made history (two months, three KPIs: revenue broken down by segment, MRR not broken down,
win rate by segment) gives the values, ranks and statuses worked out below; the deliveries go to
a real SMTP server process (tests/smtp_fault_server.py) that can refuse a recipient.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from crm_kpis.compute import AreaResult
from crm_kpis.config.settings import ReportConfig, Settings, Target, Variant, _load
from crm_kpis.delivery.email import deliver
from crm_kpis.delivery.intents import DeliveryRefused
from crm_kpis.history.store import publish_period, stage_area
from crm_kpis.kpis.base import KpiValue
from crm_kpis.periods import ReportPeriod
from crm_kpis.report.context import build_context
from tests.integration.test_delivery_faults import copies, logged, smtp

OCT = ReportPeriod.parse("monthly", "2026-10")
SEP = OCT.previous()
ENTERPRISE = Variant("segment-enterprise", "segment", "enterprise", ("vp-enterprise@example.com",))
SMB = Variant("smb", "segment", "smb", ("head-smb@example.com",), cc=("smb-deputy@example.com",))
REPORT = ReportConfig("monthly_executive", "Monthly KPI report", "monthly", to=("ceo@example.com",),
                      headline=("sales.revenue", "sales.mrr", "sales.win_rate"), variants=(ENTERPRISE, SMB))
SETTINGS = Settings("UTC", "USD", "Example Corp", {"monthly_executive": REPORT}, targets={"monthly": {
    "sales.revenue": Target(1000.0, members={("segment", "enterprise"): Target(700.0, 650.0)}),
    "sales.mrr": Target(450.0),
    "sales.win_rate": Target(0.45)}})


def _values(revenue: tuple[float, float, float], mrr: float, win: tuple[float, float, float]) -> list[KpiValue]:
    """(company, enterprise, smb) for revenue and win rate; MRR has no breakdown."""
    out = [KpiValue("sales.mrr", mrr, None, None)]
    for kpi_id, (total, ent, smb) in (("sales.revenue", revenue), ("sales.win_rate", win)):
        out += [KpiValue(kpi_id, total, None, None), KpiValue(kpi_id, ent, None, None, "segment", "enterprise"),
                KpiValue(kpi_id, smb, None, None, "segment", "smb")]
    return out


@pytest.fixture()
def history(warehouse):
    for period, values in ((SEP, _values((900.0, 500.0, 400.0), 400.0, (0.40, 0.50, 0.30))),
                           (OCT, _values((1000.0, 600.0, 400.0), 500.0, (0.44, 0.40, 0.48)))):
        run_id = f"run-{period.key}"
        for area in ("marketing", "sales", "operations"):
            stage_area(warehouse, run_id, AreaResult(area, period, values if area == "sales" else []))
        publish_period(warehouse, period, run_id, ("marketing", "sales", "operations"))
    return warehouse


def _lines(engine, edition: ReportConfig) -> dict[str, object]:
    context = build_context(engine, OCT, SETTINGS, edition, rendered_at=OCT.utc_end)
    sales = next(a for a in context["areas"] if a["id"] == "sales")
    return {line.id: line for line in sales["kpis"]}, context


def test_a_variant_shows_its_member_with_its_target_and_rank(history):
    lines, context = _lines(history, REPORT.edition("segment-enterprise"))
    revenue, mrr, win = lines["sales.revenue"], lines["sales.mrr"], lines["sales.win_rate"]
    # enterprise revenue 600 (was 500): +100, +20.0 %; its own target 700, at risk down to 650 → off target
    assert (revenue.value, revenue.previous, revenue.change_pct) == (600.0, 500.0, "+20.0 %")
    assert (revenue.target_text, revenue.status) == ("$700.00", "off_target")
    assert revenue.scope == "1st of 2"  # 600 > smb's 400
    # MRR has no segment breakdown: the company's 500, marked, with the company's target (450 → on target)
    assert (mrr.value, mrr.scope, mrr.status) == (500.0, "company-wide", "on_target")
    # enterprise win rate 40 % against smb's 48 %: 2nd of 2; no member target, so no status (the
    # company's 45 % is not the member's)
    assert (win.value, win.scope, win.status, win.target_text) == (0.40, "2nd of 2", None, "")
    assert context["title"] == "Monthly KPI report · Enterprise (customer segment)"
    # the movers are the member's: revenue +20.0 %, win rate −10.0 pp; MRR (company-wide) is not one
    assert [m.kpi_id for m in context["movers"]] == ["sales.revenue", "sales.win_rate"]
    # a tile keeps its scope even where its whole area is company-wide (marketing and operations
    # have no KPI here at all; the headline's MRR is in sales, beside member lines)
    assert [(k.id, k.scope) for k in context["headline"]] == [
        ("sales.revenue", "1st of 2"), ("sales.mrr", "company-wide"), ("sales.win_rate", "2nd of 2")]


def test_the_company_wide_report_is_unchanged_by_variants(history):
    lines, context = _lines(history, REPORT)
    revenue = lines["sales.revenue"]
    assert (revenue.value, revenue.scope, revenue.status) == (1000.0, "", "on_target")
    assert context["title"] == "Monthly KPI report" and context["variant"] is None


def _send(warehouse, pdf, edition: ReportConfig, run="run-1", **kw):
    return deliver(warehouse, edition, OCT, run, f"{edition.edition_title} · October 2026", "t", "<p>h</p>", pdf, **kw)


def test_each_variant_is_delivered_once_to_its_own_recipients(tmp_path, warehouse, pdf):
    with smtp(tmp_path, "--refuse", "smb-deputy@example.com") as (record, _):
        results = {}
        for edition in REPORT.editions():
            try:
                results[edition.edition_id] = _send(warehouse, pdf, edition)
            except DeliveryRefused as exc:  # the smb deputy's mailbox is gone: said, not retried
                results[edition.edition_id] = exc
        assert "smb-deputy@example.com refused: 550" in str(results["smb"])
        assert results["segment-enterprise"].message_id == \
            "<monthly_executive.2026-10.segment-enterprise.0@crm-kpis.local>"
        for _ in range(2):  # retries and re-runs: nobody gets a second copy, in any edition
            assert {_send(warehouse, pdf, e, run="run-2").status for e in REPORT.editions()} == {"skipped"}
    assert copies(record) == {"ceo@example.com": 1, "vp-enterprise@example.com": 1, "head-smb@example.com": 1}
    assert sorted(logged(warehouse)) == ["ceo@example.com", "head-smb@example.com", "vp-enterprise@example.com"]


def test_variants_in_the_configuration_are_checked(tmp_path: Path):
    def load(variants):
        path = tmp_path / f"r{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump({"reports": {"m": {"grain": "monthly", "to": ["a@example.com"],
                                                          "variants": variants}}}))
        return _load(str(path), path.stat().st_mtime).reports["m"]

    report = load([{"dimension": "rep_team", "member": "Inside Sales", "to": "head@example.com"},
                   {"id": "vip", "dimension": "segment", "member": "enterprise", "to": ["vp@example.com"]}])
    assert [v.variant_id for v in report.variants] == ["rep-team-inside-sales", "vip"]
    assert [e.edition_id for e in report.editions()] == ["", "rep-team-inside-sales", "vip"]
    assert report.edition("vip").to == ("vp@example.com",) and report.edition("vip").variants == ()
    for bad, message in (
        ([{"dimension": "region", "member": "EMEA", "to": ["x@example.com"]}], r"variants\[0\]\.dimension: Input should be 'channel', 'segment', 'rep_team', 'ticket_channel' or 'agent_team'"),
        ([{"dimension": "segment", "member": "smb"}], "needs recipients under `to`"),
        ([{"id": "test", "dimension": "segment", "member": "smb", "to": ["x@example.com"]}], "must be lower-case"),
        ([{"id": "a", "dimension": "segment", "member": "smb", "to": ["x@example.com"]},
          {"id": "a", "dimension": "segment", "member": "mid", "to": ["y@example.com"]}], "used twice"),
    ):
        with pytest.raises(ValueError, match=message):
            load(bad)
    with pytest.raises(KeyError, match="no variant 'nope'"):
        report.edition("nope")


def test_the_variant_dimensions_are_the_breakdowns():
    from crm_kpis.compute import DIMENSIONS
    from crm_kpis.config.schema import VARIANT_DIMENSIONS

    assert VARIANT_DIMENSIONS == DIMENSIONS


def test_an_area_without_the_breakdown_says_so_once_and_its_tiles_stay_marked(history):
    """A support team's edition: no sales KPI is broken down by support team, so the sales table says
    it once, while each headline tile still says company-wide and none of them is a mover."""
    team = replace(REPORT, variants=(Variant("tier-1", "agent_team", "Tier 1", ("lead@example.com",)),))
    lines, context = _lines(history, team.edition("tier-1"))
    sales = next(a for a in context["areas"] if a["id"] == "sales")
    assert sales["company_wide"] and {line.scope for line in lines.values()} == {""}
    assert {k.scope for k in context["headline"]} == {"company-wide"}
    assert context["movers"] == []


def test_a_variant_whose_member_the_history_does_not_know_is_not_sent_and_says_why(history):
    """`member: Enterprise` (a typo for enterprise) used to email an all-n/a report every month."""
    from crm_kpis.orchestration.tasks import unknown_member

    assert unknown_member(history, REPORT.edition("segment-enterprise"), OCT) is None
    assert unknown_member(history, REPORT, OCT) is None  # the company-wide report has no member
    typo = replace(REPORT, variants=(replace(ENTERPRISE, member="Enterprise"),))
    assert unknown_member(history, typo.edition("segment-enterprise"), OCT) == (
        "monthly_executive variant segment-enterprise for monthly 2026-10 (UTC): not sent, since segment member "
        "'Enterprise' is not among the members of the period's history ('enterprise', 'smb'); its edition would be "
        "all n/a. Fix `member` of that variant in reports.yaml (spelling and case as listed)")
