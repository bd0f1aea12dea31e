"""The fivetran_salesforce adapter on SQLite: a synced Salesforce read as the reference CRM tables it
can fill (users, accounts, leads, opportunities and their history, tasks and events, campaigns).

- differential: the demo business in Salesforce's synced layout gives, through the adapter, the
  sales and marketing KPIs of its reference layout that Salesforce covers, to 1e-9, monthly and
  daily; the others are n/a with the adapter's reason;
- a hand-made synced set with the awkward cases (a deal reopened after it was won, an amount
  change in the history that is no stage change, deleted records, a prospect account, a to-do task,
  an amount synced as text, a meeting before the first call), worked out by hand;
- the coverage table in the README is the declaration's. (PostgreSQL and MariaDB:
  tests/servers/test_adapters_servers.py.)
"""

from __future__ import annotations

import pytest

from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.adapters import load_adapter
from crm_kpis.sources.coverage import coverage_table
from tests.integration.adapter_helpers import hand_made_source, values

ADAPTER = "fivetran_salesforce"


HAND_MADE = """
CREATE TABLE user (id TEXT, name TEXT, user_role_id TEXT);
CREATE TABLE user_role (id TEXT, name TEXT);
CREATE TABLE account (id TEXT, created_date TEXT, type TEXT, number_of_employees INTEGER, billing_country_code TEXT,
                      account_source TEXT, is_deleted INTEGER);
CREATE TABLE opportunity (id TEXT, account_id TEXT, owner_id TEXT, type TEXT, stage_name TEXT, amount TEXT,
                          created_date TEXT, close_date TEXT, is_closed INTEGER, is_won INTEGER, is_deleted INTEGER);
CREATE TABLE opportunity_history (id TEXT, opportunity_id TEXT, stage_name TEXT, created_date TEXT, is_deleted INTEGER);
CREATE TABLE lead (id TEXT, created_date TEXT, lead_source TEXT, owner_id TEXT, status TEXT, is_converted INTEGER,
                   converted_date TEXT, converted_account_id TEXT, is_deleted INTEGER);
CREATE TABLE task (id TEXT, owner_id TEXT, who_id TEXT, what_id TEXT, type TEXT, task_subtype TEXT, created_date TEXT,
                   is_deleted INTEGER);
CREATE TABLE event (id TEXT, owner_id TEXT, who_id TEXT, what_id TEXT, start_date_time TEXT, is_deleted INTEGER);
CREATE TABLE campaign (id TEXT, name TEXT, type TEXT, start_date TEXT, end_date TEXT, actual_cost REAL, is_deleted INTEGER);
INSERT INTO user_role VALUES ('00EA', 'Inside Sales'), ('00EB', 'Field Sales');
INSERT INTO user VALUES ('005A', 'Ann', '00EA'), ('005B', 'Bo', '00EB');
INSERT INTO account VALUES
  ('001A', '2026-10-05 12:00:00', 'Customer - Direct', 50, 'DE', 'web', 0),
  ('001B', '2026-09-01 00:00:00', 'Customer - Channel', 2000, 'FR', 'partner', 0),
  ('001C', '2026-10-06 00:00:00', 'Prospect', 10, 'DE', 'web', 0),
  ('001D', '2026-10-07 00:00:00', 'Customer - Direct', 10, 'DE', 'web', 1);
INSERT INTO opportunity VALUES
  ('006A', '001A', '005A', 'New Customer', 'Closed Won', '1000', '2026-10-01 09:00:00', '2026-10-20', 1, 1, 0),
  ('006B', '001B', '005B', 'Existing Customer - Upgrade', 'Closed Won', '2500', '2026-09-01 00:00:00', '2026-10-15', 1, 1, 0),
  ('006C', NULL, '005A', 'New Business', 'Closed Lost', '700', '2026-10-03 10:00:00', '2026-10-09', 1, 0, 0),
  ('006D', '001B', '005B', 'Existing Customer - Upgrade', 'Negotiation/Review', '4000.00', '2026-10-10 12:00:00',
   '2026-12-01', 0, 0, 0),
  ('006E', '001A', '005A', 'New Customer', 'Qualification', '9999', '2026-10-10 12:00:00', '2026-12-01', 0, 0, 1);
INSERT INTO opportunity_history VALUES
  ('h1', '006A', 'Qualification', '2026-10-01 09:00:00', 0), ('h2', '006A', 'Proposal/Price Quote', '2026-10-05 09:00:00', 0),
  ('h3', '006A', 'Proposal/Price Quote', '2026-10-06 09:00:00', 0), ('h4', '006A', 'Closed Won', '2026-10-11 09:00:00', 0),
  ('h5', '006B', 'Qualification', '2026-09-01 00:00:00', 0), ('h6', '006B', 'Closed Won', '2026-09-20 00:00:00', 0),
  ('h7', '006B', 'Negotiation/Review', '2026-10-02 00:00:00', 0), ('h8', '006B', 'Closed Won', '2026-10-15 00:00:00', 0),
  ('h9', '006C', 'Qualification', '2026-10-03 10:00:00', 0), ('h10', '006C', 'Closed Lost', '2026-10-09 10:00:00', 0),
  ('h11', '006D', 'Qualification', '2026-10-10 12:00:00', 0), ('h12', '006D', 'Negotiation/Review', '2026-10-12 12:00:00', 0),
  ('h13', '006E', 'Qualification', '2026-10-10 12:00:00', 0);
INSERT INTO lead VALUES
  ('00QA', '2026-10-01 08:00:00', 'web', '005A', 'Closed - Converted', 1, '2026-10-05', '001A', 0),
  ('00QB', '2026-10-03 08:00:00', 'web', '005B', 'Working - Contacted', 0, NULL, NULL, 0),
  ('00QC', '2026-10-02 08:00:00', 'web', '005B', 'Open - Not Contacted', 0, NULL, NULL, 1);
INSERT INTO task VALUES
  ('00T1', '005A', NULL, '006A', 'Call', 'Call', '2026-10-02 10:00:00', 0),
  ('00T2', '005A', '00QA', NULL, 'Email', 'Email', '2026-10-01 10:00:00', 0),
  ('00T3', '005A', NULL, '006A', 'Other', 'Task', '2026-10-03 10:00:00', 0),
  ('00T4', '005B', '00QB', NULL, 'Call', 'Call', '2026-10-04 08:00:00', 0),
  ('00T5', '005B', NULL, '006C', 'Call', 'Call', '2026-10-05 08:00:00', 1);
INSERT INTO event VALUES ('00U1', '005A', '00QA', NULL, '2026-10-01 09:30:00', 0);
INSERT INTO campaign VALUES ('701A', 'Autumn mail', 'Email', '2026-09-15', '2026-10-10', 500, 0),
                            ('701B', 'Winter webinar', 'Webinar', '2026-11-05', NULL, 100, 0),
                            ('701C', 'Gone', 'Email', '2026-10-01', NULL, 100, 1);
"""


@pytest.fixture()
def hand_made(tmp_path, monkeypatch):
    return hand_made_source(tmp_path, monkeypatch, ADAPTER, HAND_MADE)


def test_the_hand_made_salesforce_worked_out_by_hand(hand_made):
    october = ReportPeriod.parse("monthly", "2026-10")
    sales, marketing = values(october, "sales"), values(october, "marketing")
    s = {k[0]: v for k, v in sales.items() if k[1] == ""}
    m = {k[0]: v for k, v in marketing.items() if k[1] == ""}
    # decided in October: 006A won (11 Oct), 006B won again (15 Oct, after a reopening), 006C lost
    assert s["sales.win_rate"][:3] == (pytest.approx(2 / 3), 2, 3)
    # won: 006A 1 Oct 09:00 → 11 Oct 09:00 = 10 days (the history's close, not close_date 20 Oct);
    # 006B 1 Sep → 15 Oct = 44 days
    assert s["sales.cycle_days"][0] == pytest.approx((10 + 44) / 2, abs=1e-9)
    # open at the end: 006D (its amount synced as text '4000.00'); 006E is deleted
    assert s["sales.pipeline_value"][0] == 4000 and s["sales.open_opportunities"][0] == 1
    assert s["sales.proposals_sent"][0] == 1  # 006A on 5 Oct; its amount change on 6 Oct is no second one
    # calls in October: 00T1 and 00T4 (00T3 is a to-do, 00T5 deleted, 00T2 an email)
    assert s["sales.calls"][0] == 2
    # calls before the close on the three decided opportunities: 00T1 on 006A only
    assert s["sales.calls_per_opportunity"][:3] == (pytest.approx(1 / 3), 1, 3)
    # first contacts: 00QA by the meeting at 09:30 (before the email at 10:00): 1.5 h; 00QB 24 h
    assert s["sales.lead_response_hours"][0] == pytest.approx((1.5 + 24) / 2, abs=1e-9)
    assert s["sales.new_customers"][0] == 1  # 001A; 001C is a prospect, 001D deleted
    # 001A's account 5 Oct 12:00, its lead 1 Oct 08:00: 4 days 4 hours
    assert s["sales.journey_days"][0] == pytest.approx(4 + 4 / 24, abs=1e-9)
    stages = {k[2]: v[0] for k, v in sales.items() if k[0] == "sales.stage_days" and k[1] == "stage"}
    # exits in October: qualification 006A 4 d, 006C 6 d, 006D 2 d; proposal 006A 6 d (the amount
    # change is no stage change); closed_won 006B 20 Sep → 2 Oct reopened 12 d; negotiation 006B 13 d
    assert stages == pytest.approx({"qualification": 4.0, "proposal": 6.0, "closed_won": 12.0, "negotiation": 13.0})
    assert m["marketing.leads_created"][0] == 2  # 00QC is deleted
    assert m["marketing.lead_conversion_rate"][:3] == (pytest.approx(1 / 2), 1, 2)
    assert m["marketing.campaigns_active"][0] == 1  # 701A; 701B starts in November, 701C is deleted
    assert s["sales.revenue"][3] == "not tracked: not recorded by fivetran_salesforce (Salesforce opportunities are " \
                                    "not orders; no order table is read)"
    assert s["sales.churn_rate"][3] == "not tracked: not recorded by fivetran_salesforce (Salesforce accounts have " \
                                       "no churn date)"
    assert s["sales.active_customers"][3].startswith("not tracked: Salesforce accounts have no churn date")


def test_the_readme_has_the_coverage_the_adapter_declares():
    assert coverage_table(load_adapter(ADAPTER)) in (PROJECT_DIR / "README.md").read_text(encoding="utf-8")


def test_salesforce_synced_with_its_original_api_names_gives_the_same_kpis(tmp_path, monkeypatch):
    """Fivetran can keep Salesforce's own API names (`Opportunity`, `CreatedDate`, `StageName`)
    instead of snake case: the same business written so gives, through the same adapter, the KPIs of
    the reference layout (SQLite ignores the case of names; PostgreSQL, which does not:
    tests/servers/test_adapters_servers.py)."""
    from datetime import date

    from crm_kpis.tools.demo.generator import generate, spec_for
    from tests.integration.adapter_helpers import compare_layouts, write_original_names

    data = generate(spec_for(date(2026, 10, 1), months=14, seed=7, scale=0.2))
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("other", "reference", "synced")]
    assert "Opportunity" in write_original_names(data, *urls)
    assert compare_layouts(monkeypatch, ADAPTER, *urls) > 100
