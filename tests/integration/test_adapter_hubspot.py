"""The fivetran_hubspot adapter on a hand-made synced HubSpot (SQLite), worked out by hand: a deal
reopened after it was won, a stage written twice in deal_stage, deleted deal, contact and company,
a company that is no customer, a note before the first email (a first contact, not a sales
activity), a task engagement, a call on two deals, an amount synced as text, text ids; no
`rep_team` breakdown (no owner_team or team is synced there: left out, not "unknown"). The differential test against the demo business
is tests/integration/test_adapters_differential.py (and on the servers, tests/servers)."""

from __future__ import annotations

import pytest

from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.adapters import load_adapter
from crm_kpis.sources.coverage import coverage_table
from tests.integration.adapter_helpers import hand_made_source, values

ADAPTER = "fivetran_hubspot"

HAND_MADE = """
CREATE TABLE owner (owner_id TEXT, first_name TEXT);
CREATE TABLE company (id TEXT, is_deleted INTEGER, property_createdate TEXT, property_numberofemployees INTEGER,
                      property_country TEXT, property_hs_analytics_source TEXT,
                      property_hs_lifecyclestage_customer_date TEXT);
CREATE TABLE contact (id TEXT, _fivetran_deleted INTEGER, property_createdate TEXT, property_hs_analytics_source TEXT,
                      property_hubspot_owner_id TEXT, property_hs_lifecyclestage_customer_date TEXT,
                      property_associatedcompanyid TEXT);
CREATE TABLE deal (deal_id TEXT, is_deleted INTEGER, owner_id TEXT, deal_pipeline_stage_id TEXT, property_amount TEXT,
                   property_createdate TEXT, property_dealtype TEXT);
CREATE TABLE deal_stage (deal_id TEXT, value TEXT, date_entered TEXT);
CREATE TABLE deal_pipeline_stage (stage_id TEXT, label TEXT, probability REAL, closed_won INTEGER);
CREATE TABLE deal_company (deal_id TEXT, company_id TEXT);
CREATE TABLE engagement (id TEXT, type TEXT, "timestamp" TEXT, owner_id TEXT);
CREATE TABLE engagement_contact (engagement_id TEXT, contact_id TEXT);
CREATE TABLE engagement_deal (engagement_id TEXT, deal_id TEXT);
INSERT INTO owner VALUES ('o1', 'Ann'), ('o2', 'Bo');
INSERT INTO deal_pipeline_stage VALUES ('qualifiedtobuy', 'Qualified To Buy', 0.2, 0), ('contractsent', 'Contract Sent', 0.9, 0),
  ('decisionmakerboughtin', 'Decision Maker Bought-In', 0.8, 0), ('closedwon', 'Closed Won', 1.0, 1),
  ('closedlost', 'Closed Lost', 0.0, 0);
INSERT INTO company VALUES
  ('c1', 0, '2026-09-20 00:00:00', 40, 'DE', 'ORGANIC_SEARCH', '2026-10-05 12:00:00'),
  ('c2', 0, '2026-08-01 00:00:00', 2000, 'FR', 'REFERRALS', '2026-09-01 00:00:00'),
  ('c3', 0, '2026-10-06 00:00:00', 10, 'DE', 'ORGANIC_SEARCH', NULL),
  ('c4', 1, '2026-10-07 00:00:00', 10, 'DE', 'ORGANIC_SEARCH', '2026-10-07 00:00:00');
INSERT INTO contact VALUES
  ('p1', 0, '2026-10-01 08:00:00', 'ORGANIC_SEARCH', 'o1', '2026-10-05 12:00:00', 'c1'),
  ('p2', 0, '2026-10-03 08:00:00', 'PAID_SEARCH', 'o2', NULL, NULL),
  ('p3', 1, '2026-10-02 08:00:00', 'PAID_SEARCH', 'o2', NULL, NULL);
INSERT INTO deal VALUES
  ('d1', 0, 'o1', 'closedwon', '1000', '2026-10-01 09:00:00', 'newbusiness'),
  ('d2', 0, 'o2', 'closedwon', '2500', '2026-09-01 00:00:00', 'existingbusiness'),
  ('d3', 0, 'o1', 'closedlost', '700', '2026-10-03 10:00:00', 'newbusiness'),
  ('d4', 0, 'o2', 'decisionmakerboughtin', '4000.00', '2026-10-10 12:00:00', 'existingbusiness'),
  ('d5', 1, 'o1', 'qualifiedtobuy', '9999', '2026-10-10 12:00:00', 'newbusiness');
INSERT INTO deal_company VALUES ('d1', 'c1'), ('d2', 'c2'), ('d4', 'c2');
INSERT INTO deal_stage VALUES
  ('d1', 'qualifiedtobuy', '2026-10-01 09:00:00'), ('d1', 'contractsent', '2026-10-05 09:00:00'),
  ('d1', 'contractsent', '2026-10-06 09:00:00'), ('d1', 'closedwon', '2026-10-11 09:00:00'),
  ('d2', 'qualifiedtobuy', '2026-09-01 00:00:00'), ('d2', 'closedwon', '2026-09-20 00:00:00'),
  ('d2', 'decisionmakerboughtin', '2026-10-02 00:00:00'), ('d2', 'closedwon', '2026-10-15 00:00:00'),
  ('d3', 'qualifiedtobuy', '2026-10-03 10:00:00'), ('d3', 'closedlost', '2026-10-09 10:00:00'),
  ('d4', 'qualifiedtobuy', '2026-10-10 12:00:00'), ('d4', 'decisionmakerboughtin', '2026-10-12 12:00:00'),
  ('d5', 'qualifiedtobuy', '2026-10-10 12:00:00');
INSERT INTO engagement VALUES ('e1', 'CALL', '2026-10-02 10:00:00', 'o1'), ('e2', 'EMAIL', '2026-10-01 10:00:00', 'o1'),
  ('e3', 'NOTE', '2026-10-01 09:30:00', 'o1'), ('e4', 'CALL', '2026-10-04 08:00:00', 'o2'),
  ('e5', 'TASK', '2026-10-03 10:00:00', 'o1');
INSERT INTO engagement_contact VALUES ('e2', 'p1'), ('e3', 'p1'), ('e4', 'p2');
INSERT INTO engagement_deal VALUES ('e1', 'd1'), ('e1', 'd3'), ('e5', 'd1');
"""


@pytest.fixture()
def hand_made(tmp_path, monkeypatch):
    return hand_made_source(tmp_path, monkeypatch, ADAPTER, HAND_MADE)


def test_the_hand_made_hubspot_worked_out_by_hand(hand_made):
    october = ReportPeriod.parse("monthly", "2026-10")
    sales, marketing = values(october, "sales"), values(october, "marketing")
    s = {k[0]: v for k, v in sales.items() if k[1] == ""}
    m = {k[0]: v for k, v in marketing.items() if k[1] == ""}
    # decided in October: d1 won (11 Oct), d2 won again (15 Oct, after a reopening), d3 lost
    assert s["sales.win_rate"][:3] == (pytest.approx(2 / 3), 2, 3)
    assert s["sales.cycle_days"][0] == pytest.approx((10 + 44) / 2, abs=1e-9)  # d1 10 days, d2 1 Sep → 15 Oct
    assert s["sales.pipeline_value"][0] == 4000 and s["sales.open_opportunities"][0] == 1  # d4 ('4000.00'); d5 deleted
    assert s["sales.proposals_sent"][0] == 1  # d1's Contract Sent on 5 Oct (written again on 6 Oct)
    assert s["sales.calls"][0] == 2  # e1, e4 (e5 is a task, e3 a note, e2 an email)
    # e1 is on d1 and d3: counted on d1 (the lowest id), before its close: 1 call on 3 decided deals
    assert s["sales.calls_per_opportunity"][:3] == (pytest.approx(1 / 3), 1, 3)
    # first contacts: p1 by the note at 09:30 (1.5 h after its creation), p2 by the call (24 h)
    assert s["sales.lead_response_hours"][0] == pytest.approx((1.5 + 24) / 2, abs=1e-9)
    assert s["sales.new_customers"][0] == 1  # c1 (c2 became a customer in September, c3 never, c4 deleted)
    assert s["sales.journey_days"][0] == pytest.approx(4 + 4 / 24, abs=1e-9)  # p1 1 Oct 08:00 → c1 5 Oct 12:00
    stages = {k[2]: v[0] for k, v in sales.items() if k[0] == "sales.stage_days" and k[1] == "stage"}
    assert stages == pytest.approx({"qualification": 4.0, "proposal": 6.0, "closed_won": 12.0, "negotiation": 13.0})
    assert m["marketing.leads_created"][0] == 2 and m["marketing.lead_conversion_rate"][:3] == (pytest.approx(0.5), 1, 2)
    assert not [k for k in sales if k[1] == "rep_team"]  # no breakdown every row would file under "unknown"
    assert {k[2] for k in sales if k[0] == "sales.win_rate" and k[1] == "segment"} == {"smb", "enterprise", "unknown"}
    assert s["sales.churn_rate"][3] == "not tracked: not recorded by fivetran_hubspot (HubSpot companies have no " \
                                       "churn date)"


def test_the_readme_has_the_coverage_the_adapter_declares():
    assert coverage_table(load_adapter(ADAPTER)) in (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
