"""Marketing KPIs on the hand-made October 2026 fixture (tests/unit/kpi_fixture.py)."""

import pytest

from tests.unit.kpi_fixture import evaluate, value

approx = pytest.approx


def test_spend():
    assert value("marketing.spend") == approx(100.00 + 250.50 + 49.50)  # 400.00
    assert value("marketing.spend", "channel", "email") == approx(100.00 + 49.50)
    assert value("marketing.spend", "channel", "paid_search") == approx(250.50)


def test_campaigns_active():
    assert value("marketing.campaigns_active") == 3
    assert value("marketing.campaigns_active", "channel", "email") == 2


def test_campaign_responses():
    # leads created in [start, end) with a campaign: lead 1 (at exactly start) and lead 5; lead 4 is at end
    assert value("marketing.campaign_responses") == 2
    assert value("marketing.campaign_responses", "channel", "social") == 1


def test_campaign_purchases_and_revenue():
    # completed orders with a campaign: order 1 (100, email) and order 4 (200, social); order 3 is refunded
    assert value("marketing.campaign_purchases") == 2
    assert value("marketing.campaign_revenue") == approx(100.0 + 200.0)
    assert value("marketing.campaign_revenue", "channel", "social") == approx(200.0)


def test_campaign_new_customers_and_referrals():
    # new in period: customers 3, 4, 5; with a campaign: 3 and 5; referred: 3, 4, 5
    assert value("marketing.campaign_new_customers") == 2
    assert value("marketing.referrals") == 3


def test_roi():
    v = evaluate("marketing.roi")
    # (campaign revenue 300 − spend 400) / 400
    assert v[("", "")].value == approx((300 - 400) / 400)
    assert (v[("", "")].numerator, v[("", "")].denominator) == (approx(-100.0), approx(400.0))
    assert v[("channel", "email")].value == approx((100 - 149.5) / 149.5)
    assert v[("channel", "paid_search")].value == approx((0 - 250.5) / 250.5)
    assert v[("channel", "social")].value is None  # no social spend: zero denominator is no value


def test_cac():
    # spend 400 / 3 new customers
    assert value("marketing.cac") == approx(400 / 3)
    assert value("marketing.cac", "channel", "email") == approx(149.5 / 1)  # customer 3
    assert value("marketing.cac", "channel", "paid_search") is None  # spend but no new customer
    assert value("marketing.cac", "channel", "social") == approx(0 / 2)  # customers 4, 5 without spend


def test_leads_created_and_conversion_rate():
    # created in period: leads 1, 2, 5 (lead 3 before start, lead 4 at end)
    assert value("marketing.leads_created") == 3
    # converted in period: lead 1 (10-20) and lead 3 (10-05) → 2 / 3
    v = evaluate("marketing.lead_conversion_rate")
    assert v[("", "")].value == approx(2 / 3)
    assert (v[("", "")].numerator, v[("", "")].denominator) == (2, 3)
    assert v[("channel", "email")].value == approx(2 / 1)  # two flows: may exceed 1 by definition
    assert v[("channel", "paid_search")].value == 0


def test_referral_rate():
    # distinct referrers of new customers: 1 (for 3 and 4) and 2 (for 5) → 2
    # active at start: 1, 2, 7, 8 (8 churned exactly at start: still active at start) → 4
    assert value("marketing.referral_rate") == approx(2 / 4)


def test_web_traffic():
    assert value("marketing.page_views") == 25 + 60 + 15
    assert value("marketing.sessions") == 10 + 30 + 5
    assert value("marketing.sessions", "channel", "email") == 10 + 5


def test_email_rates():
    # delivered: messages 1, 2, 3, 5 (4 bounced) → 4; opened 1, 2 → 2; clicked 1 → 1
    assert value("marketing.email_open_rate") == approx(2 / 4)
    assert value("marketing.email_click_rate") == approx(1 / 4)


def test_email_list_growth_rate():
    # joined in period: 3, 4 → 2; left in period: 2 (10-10), 4 (10-07), 5 (exactly start) → 3
    # on the list at start: 1, 2, 5 (5 left at exactly start: not before start) → 3
    assert value("marketing.email_list_growth_rate") == approx((2 - 3) / 3)


def test_social():
    assert value("marketing.social_engagement_rate") == approx((50 + 70) / (1000 + 3000))
    assert value("marketing.social_mentions") == 3 + 2


def test_nps():
    # NPS scores 10, 9, 9, 7, 3: promoters 3, detractors 1 → 100 × (3 − 1) / 5
    v = evaluate("marketing.nps")
    assert v[("", "")].value == approx(100 * (3 - 1) / 5)
    assert (v[("", "")].numerator, v[("", "")].denominator) == (2, 5)
    assert v[("channel", "email")].value == approx(100 * (2 - 1) / 3)  # 10, 9, 3
    assert v[("channel", "social")].value == approx(100 * (1 - 0) / 2)  # 9, 7
