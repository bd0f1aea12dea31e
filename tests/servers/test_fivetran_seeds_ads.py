"""Conformance of the ad networks' adapters (`fivetran_google_ads`, `fivetran_facebook_ads`) with
Fivetran's own test data for its Google Ads and Facebook Ads packages (`../shared/data/fivetran/`,
seeds as shipped, typed as their integration-test projects type them), on SQLite and PostgreSQL;
then the stack they are meant for: HubSpot, Stripe, Google Ads and Facebook Ads synced into one
PostgreSQL warehouse, one schema each, read as one CRM.

The seeds' spend, by hand (Google Ads: `campaign_stats.cost_micros` of its one campaign, a SEARCH
campaign, one row per day, device and network; Facebook Ads: `basic_ad.spend` per ad and day):
- Google Ads, January 2021: 28,190,000 + 23,720,000 + 33,470,000 + 3,250,000 + 2,300,000 + 1,690,000
  + 2,520,000 micros = 95.14; February 2021: 36,150,000 + 24,570,000 + 22,590,000 + 16,520,000 +
  18,400,000 + 0 + 2,590,000 + 4,720,000 + 10,650,000 micros = 136.19;
- Facebook Ads, December 2020: 76.53 + 55.26 + 54.87 + 49.20 + 144.00 + 56.63 + 49.95 + 51.56 +
  55.11 + 50.52 = 643.63.
"""

from __future__ import annotations

import pytest

from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.check_command import main
from tests.fivetran_seeds import checked, seeded_connection, seeded_stack
from tests.integration.adapter_helpers import values
from tests.servers.test_fivetran_seeds_stripe import ADDED as STRIPE_ADDED

GOOGLE_JANUARY = (28_190_000 + 23_720_000 + 33_470_000 + 3_250_000 + 2_300_000 + 1_690_000 + 2_520_000) / 1e6
GOOGLE_FEBRUARY = (36_150_000 + 24_570_000 + 22_590_000 + 16_520_000 + 18_400_000 + 0 + 2_590_000 + 4_720_000
                   + 10_650_000) / 1e6
FACEBOOK_DECEMBER = 76.53 + 55.26 + 54.87 + 49.20 + 144.00 + 56.63 + 49.95 + 51.56 + 55.11 + 50.52


def spend(month: str) -> dict[str, tuple]:
    """Marketing spend of a month: member ("" for the company) -> (value, numerator, denominator, note)."""
    return {k[2]: v for k, v in values(ReportPeriod.parse("monthly", month), "marketing").items()
            if k[0] == "marketing.spend"}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_kind(request):
    return request.param


def test_google_ads_seeds_pass_the_check_and_give_their_spend_by_hand(engine_kind, postgres, tmp_path, monkeypatch,
                                                                     capsys):
    seeded = seeded_connection(engine_kind, postgres, tmp_path, monkeypatch, "google_ads", "fivetran_google_ads", "crm")
    assert seeded[3]["campaign_stats"] == 16
    out = checked(seeded, "fivetran_google_ads", "crm", capsys)
    assert "Google Ads synced by Fivetran: ok" in out, out
    january, february = spend("2021-01"), spend("2021-02")
    assert (round(GOOGLE_JANUARY, 2), round(GOOGLE_FEBRUARY, 2)) == (95.14, 136.19)
    assert january[""][0] == pytest.approx(GOOGLE_JANUARY, abs=1e-9)
    assert january["paid_search"][0] == pytest.approx(GOOGLE_JANUARY, abs=1e-9)  # a SEARCH campaign
    assert february[""][0] == pytest.approx(GOOGLE_FEBRUARY, abs=1e-9)
    # the synced layout fills no leads: their KPIs are n/a, said in the stack's terms
    leads = values(ReportPeriod.parse("monthly", "2021-02"), "marketing")[("marketing.leads_created", "", "")]
    assert leads[0] is None and "no synced connector fills leads" in leads[3], leads


def test_facebook_ads_seeds_pass_the_check_and_give_their_spend_by_hand(engine_kind, postgres, tmp_path, monkeypatch,
                                                                       capsys):
    seeded = seeded_connection(engine_kind, postgres, tmp_path, monkeypatch, "facebook_ads", "fivetran_facebook_ads",
                               "crm")
    out = checked(seeded, "fivetran_facebook_ads", "crm", capsys)
    assert "Facebook Ads synced by Fivetran: ok" in out, out
    december = spend("2020-12")
    assert december[""][0] == pytest.approx(FACEBOOK_DECEMBER, abs=1e-9)
    assert december["social"][0] == pytest.approx(FACEBOOK_DECEMBER, abs=1e-9)
    assert spend("2021-01")[""][0] == 0  # tracked (spend before), none this month: zero, not n/a


#: HubSpot for leads, deals and reps; Stripe for the billing (it takes customers from HubSpot, whose
#: companies Stripe's orders do not name); both ad networks for spend
STACK = {"hubspot": "fivetran_hubspot",
         "stripe": {"adapter": "fivetran_stripe", "tables": ["orders", "customers", "subscriptions"]},
         "google_ads": "fivetran_google_ads", "facebook_ads": "fivetran_facebook_ads"}
#: a Facebook ad's spend in February 2021, beside Google's: the month's spend is both networks';
#: Stripe's added charges and subscription (tests/servers/test_fivetran_seeds_stripe.py)
ADDED = {"stripe": STRIPE_ADDED, "facebook_ads": ["INSERT INTO {basic_ad} (ad_id, date, account_id, impressions, inline_link_clicks, spend, "
                          "reach) VALUES (6215293456071, '2021-02-10', 1700252260223815, 100, 1, 10.25, 90)"]}


def test_a_composed_stack_reads_each_table_from_its_connector(postgres, tmp_path, monkeypatch, capsys):
    helpdesk_url, url, loaded = seeded_stack(postgres, tmp_path, monkeypatch, STACK, ADDED)
    assert loaded["facebook_ads"]["basic_ad"] == 10  # as shipped; the added row on top
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "adapter fivetran_hubspot + fivetran_stripe + fivetran_google_ads + fivetran_facebook_ads, schemas " \
           "hubspot, stripe, google_ads, facebook_ads" in out, out
    # which connector fills each table, and what none fills, in the adapters' own terms
    assert "  marketing_spend: fivetran_google_ads (schema google_ads) + fivetran_facebook_ads (schema " \
           "facebook_ads)" in out, out
    assert "  leads: fivetran_hubspot (schema hubspot)" in out, out
    assert "  orders: fivetran_stripe (schema stripe)" in out and "  customers: fivetran_stripe (schema stripe)" in out
    assert "  web_traffic: nothing: no synced connector fills web_traffic (fivetran_hubspot: no web analytics" in out
    assert "    marketing.spend: approximated" in out, out

    february = spend("2021-02")
    assert february[""][0] == pytest.approx(GOOGLE_FEBRUARY + 10.25, abs=1e-9)  # both networks
    assert february["paid_search"][0] == pytest.approx(GOOGLE_FEBRUARY, abs=1e-9)
    assert february["social"][0] == pytest.approx(10.25, abs=1e-9)
    assert spend("2020-12")[""][0] == pytest.approx(FACEBOOK_DECEMBER, abs=1e-9)
    # HubSpot's leads as its own seeds test has them (March 2021: 2, the merged contacts left out)
    march = values(ReportPeriod.parse("monthly", "2021-03"), "marketing")
    assert march[("marketing.leads_created", "", "")][0] == 2
    # CAC: both networks' spend over Stripe's 6 new customers of February
    cac = values(ReportPeriod.parse("monthly", "2021-02"), "marketing")[("marketing.cac", "", "")]
    assert cac[0] == pytest.approx((GOOGLE_FEBRUARY + 10.25) / 6, abs=1e-9), cac
    # the monthly executive report's headline, from four connectors: revenue and MRR (Stripe), the
    # win rate (HubSpot), CAC (the ad networks over Stripe's customers)
    sales = {k[0]: v for k, v in values(ReportPeriod.parse("monthly", "2021-02"), "sales").items() if k[1] == ""}
    assert sales["sales.revenue"][0] == pytest.approx(100.00 + 50.00 * 4000 / 5000 + 13.80, abs=1e-9)
    assert sales["sales.mrr"][0] == pytest.approx(3000.0, abs=1e-9)


def test_one_broken_connector_leaves_the_others_computed(postgres, tmp_path, monkeypatch):
    # Google Ads' campaign_stats is gone (a sync reset): the spend it fills with Facebook's is n/a,
    # not Facebook's half of it; HubSpot's leads and Stripe's revenue are computed as before
    _, url, _ = seeded_stack(postgres, tmp_path, monkeypatch, STACK, ADDED)
    from sqlalchemy import create_engine, text

    with create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1)).begin() as conn:
        conn.execute(text('ALTER TABLE google_ads.campaign_stats RENAME TO campaign_stats_old'))
    marketing = values(ReportPeriod.parse("monthly", "2021-03"), "marketing")
    spend_note = marketing[("marketing.spend", "", "")]
    assert spend_note[0] is None
    assert spend_note[3] == ("not tracked: crm_db: fivetran_google_ads (schema google_ads) cannot be read "
                             "(fivetran_google_ads needs the synced table campaign_stats (schema google_ads); "
                             "it is missing)"), spend_note
    assert marketing[("marketing.leads_created", "", "")][0] == 2
    sales = values(ReportPeriod.parse("monthly", "2021-02"), "sales")
    assert sales[("sales.revenue", "", "")][0] == pytest.approx(100.00 + 50.00 * 4000 / 5000 + 13.80, abs=1e-9)
