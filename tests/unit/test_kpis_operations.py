"""Operations KPIs on the hand-made October 2026 fixture (tests/unit/kpi_fixture.py)."""

from datetime import date

import pytest

from crm_kpis.periods import ReportPeriod
from tests.unit.kpi_fixture import evaluate, frame, frames, value

approx = pytest.approx


def test_ticket_counts():
    assert value("operations.tickets_created") == 4
    assert value("operations.tickets_created", "agent_team", "unknown") == 1
    assert value("operations.tickets_solved") == 4
    assert value("operations.backlog") == 3


def test_solved_same_day_rate_utc():
    # same UTC day: ticket 1 (08:00 → 10:00) and 4 (09:00 → 09:30); not 2 (20:00 → next day) nor 3
    assert value("operations.solved_same_day_rate") == approx(2 / 4)


def test_solved_same_day_uses_report_timezone_on_dst_day():
    # 2026-10-24 22:30 UTC = 25 Oct 00:30 CEST; 2026-10-25 22:30 UTC = 25 Oct 23:30 CET: same local day
    data = frames()
    data["tickets_resolved"] = frame("ticket_id created_at resolved_at ticket_channel agent_team", [
        (1, "2026-10-24 22:30", "2026-10-25 22:30", "email", "Tier 1"),
    ])
    berlin = ReportPeriod("daily", date(2026, 10, 25), "Europe/Berlin")
    assert berlin.hours == 25
    assert value("operations.solved_same_day_rate", data=data, period=berlin) == 1.0
    utc = ReportPeriod("daily", date(2026, 10, 25), "UTC")
    assert value("operations.solved_same_day_rate", data=data, period=utc) == 0.0


def test_first_response_hours():
    # 0.5 h, 5 h, 2 h → median 2
    assert value("operations.first_response_hours") == approx(2.0)


def test_resolution_hours_mean_and_median():
    v = evaluate("operations.resolution_hours")
    # 2 h, 12 h, 24 h, 0.5 h
    assert v[("", "")].value == approx((2 + 12 + 24 + 0.5) / 4)
    assert v[("statistic", "median")].value == approx((2 + 12) / 2)
    c = evaluate("operations.complaint_resolution_hours")
    assert c[("", "")].value == approx((12 + 24) / 2)


def test_complaint_resolution_rate():
    # complaints created: 1, 2, 3; resolved before end: 1 (3 is resolved exactly at end)
    assert value("operations.complaint_resolution_rate") == approx(1 / 3)


def test_fcr_reopen_sla():
    # FCR: one public agent message and not reopened: tickets 1 and 3
    assert value("operations.fcr_rate") == approx(2 / 4)
    assert value("operations.reopen_rate") == approx(1 / 4)  # ticket 2
    # SLA: 1 met (30 ≤ 240, 120 ≤ 1440); 2 late first reply (300 > 240); 3 late resolution
    # (1440 > 480); 4 has no first response → not met
    assert value("operations.sla_compliance_rate") == approx(1 / 4)
    assert value("operations.sla_compliance_rate", "ticket_channel", "email") == approx(1 / 2)


def test_calls():
    # inbound: 1, 2, 3, 5; abandoned: 3
    assert value("operations.inbound_calls") == 4
    assert value("operations.abandoned_calls") == 1
    assert value("operations.abandonment_rate") == approx(1 / 4)
    # answered inbound: 30 s and 90 s
    assert value("operations.speed_of_answer_seconds") == approx((30 + 90) / 2)
    # answered calls of both directions: 5, 10 and 3 minutes
    assert value("operations.handle_minutes") == approx((5 + 10 + 3) / 3)
    assert value("operations.callbacks") == 2
    # answered inbound calls 2 over the 31 days of October
    assert value("operations.calls_per_day") == approx(2 / 31)


def test_surveys():
    assert value("operations.csat") == approx(2 / 4)  # 5 and 4 of 5, 4, 3, 1
    assert value("operations.ces") == approx((2 + 3 + 7) / 3)
    assert value("operations.feedback_volume") == 12


def test_costs():
    # 8 h × 30 + 7.5 h × 40 + 4 h × 30
    assert value("operations.service_cost") == approx(240 + 300 + 120)
    assert value("operations.cost_per_ticket") == approx(660 / 4)
    assert value("operations.cost_per_ticket", "agent_team", "Tier 1") == approx(360 / 2)
    # revenue 600 / (4 tickets solved + 3 answered calls)
    assert value("operations.revenue_per_interaction") == approx(600 / 7)
