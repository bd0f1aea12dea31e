"""Sales KPIs on the hand-made October 2026 fixture (tests/unit/kpi_fixture.py)."""

import pytest

from tests.unit.kpi_fixture import evaluate, value

approx = pytest.approx


def test_revenue_orders_aov():
    # completed: order 1 (100, at exactly start), 2 (300), 4 (200, one second before end)
    assert value("sales.revenue") == approx(100 + 300 + 200)
    assert value("sales.orders") == 3
    assert value("sales.aov") == approx(600 / 3)
    assert value("sales.revenue", "segment", "mid_market") == approx(300)
    # order 4 has no rep: it is counted under "unknown", so the teams add up to the total
    assert value("sales.revenue", "rep_team", "unknown") == approx(200)
    assert value("sales.revenue", "rep_team", "A") + value("sales.revenue", "rep_team", "B") + 200 == approx(600)


def test_growth_rate():
    # September completed revenue 400 + 100 = 500 (the refund is not revenue)
    v = evaluate("sales.growth_rate")
    assert v[("", "")].value == approx((600 - 500) / 500)
    assert v[("segment", "smb")].value == approx((100 - 400) / 400)
    assert v[("segment", "mid_market")].value == approx((300 - 100) / 100)
    assert v[("segment", "enterprise")].value is None  # no September revenue


def test_customer_counts():
    # new: 3, 4, 5; active at end: 1, 3, 4, 7 (7 churned exactly at end); retained: 1, 7
    assert value("sales.new_customers") == 3
    assert value("sales.active_customers") == 4
    assert value("sales.retained_customers") == 2
    assert value("sales.active_customers", "segment", "smb") == 3  # 1, 3, 7


def test_retention_and_churn_rates():
    # active at start: 1, 2, 7, 8 → 4; (active at end 4 − new 3) / 4
    assert value("sales.retention_rate") == approx((4 - 3) / 4)
    assert value("sales.retention_rate", "segment", "smb") == approx((3 - 2) / 2)
    # churned in period: 2 (10-10), 5 (10-25), 8 (exactly start) → 3 / 4
    assert value("sales.churn_rate") == approx(3 / 4)
    assert value("sales.churn_rate", "segment", "enterprise") == approx(1 / 1)


def test_mrr():
    assert value("sales.mrr") == approx(10.5 + 20 + 30)
    assert value("sales.mrr", "segment", "smb") == approx(30.5)


def test_win_rate_and_cycle():
    assert value("sales.win_rate") == approx(2 / 3)
    assert value("sales.win_rate", "rep_team", "A") == approx(1 / 2)
    # won: 40 days and 2.5 days
    assert value("sales.cycle_days") == approx((40 + 2.5) / 2)


def test_pipeline():
    assert value("sales.open_opportunities") == 3
    assert value("sales.pipeline_value") == approx(100 + 200 + 300.5)
    assert value("sales.pipeline_value", "rep_team", "A") == approx(300)
    assert value("sales.proposals_sent") == 2
    assert value("sales.calls") == 4
    assert value("sales.calls", "rep_team", "unknown") == 1


def test_lead_response_hours():
    # first contacted in period: lead 1 (6 h), lead 2 (3 h) → median 4.5
    assert value("sales.lead_response_hours") == approx((6 + 3) / 2)


def test_repeat_purchase_rate():
    # buyers 1, 2, 4, 5; with an earlier completed order: 1 and 4
    assert value("sales.repeat_purchase_rate") == approx(2 / 4)
    assert value("sales.repeat_purchase_rate", "segment", "smb") == approx(1 / 2)
