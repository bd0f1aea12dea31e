"""The whole stack, composed: the demo business as a company syncs it (HubSpot for leads, deals and
reps; Stripe for orders, customers and subscriptions; Google Ads and Facebook Ads for spend; Zendesk
for the helpdesk) in one PostgreSQL database, one schema each, as `python -m crm_kpis.tools.demo
--stack` writes it, read through the connections' `adapters` extras, gives every KPI the stack covers
equal to the same business in the reference layout (1e-9), company-wide and per member; HubSpot's
companies match Stripe's customers through a custom property, and the check says how many do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.coverage import APPROXIMATED, COMPUTED, coverage
from crm_kpis.sources.stack import stack_of
from crm_kpis.tools.demo.layouts import FIVETRAN_STACK, as_recorded_by, write_stack
from crm_kpis.tools.demo.loader import load_database
from tests.integration.adapter_helpers import COMPARED_KPIS, compare_stacks, point

PARTS = [p["adapter"] for parts in FIVETRAN_STACK.values() for p in parts]


@pytest.fixture(scope="module")
def composed(postgres, demo_frames):
    """The business in the reference layout (two databases) and as the stack (one database)."""
    data = as_recorded_by(demo_frames, PARTS)
    reference = {"crm": postgres.create("stkcrm"), "helpdesk": postgres.create("stkhelp")}
    for database, url in reference.items():
        load_database(engine_for(url), database, data[database])
    synced = postgres.create("stksynced")
    written = write_stack(engine_for(synced), data)
    assert set(written) == {"hubspot", "stripe", "google_ads", "facebook_ads", "zendesk"}
    return reference, synced


def test_the_composed_stack_gives_the_kpis_of_the_same_business(composed, monkeypatch):
    reference, synced = composed
    COMPARED_KPIS.clear()
    assert compare_stacks(monkeypatch, reference, synced, FIVETRAN_STACK) > 300
    # each connector's KPIs were among those compared: deals (HubSpot), billing (Stripe), the spend of
    # both ad networks joined to Stripe's customers (CAC), a lead's journey to a Stripe customer
    # (matched), tickets (Zendesk)
    assert {"sales.win_rate", "sales.revenue", "sales.mrr", "sales.churn_rate", "marketing.spend", "marketing.cac",
            "marketing.leads_created", "operations.tickets_solved", "operations.csat", "operations.feedback_volume"} \
        <= COMPARED_KPIS


def test_the_check_prints_the_stack_and_the_customers_matched(composed, monkeypatch, capsys):
    from crm_kpis.sources.check_command import main

    _, synced = composed
    point(monkeypatch, synced, synced, crm_adapters=FIVETRAN_STACK["crm"], helpdesk_adapters=FIVETRAN_STACK["helpdesk"])
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert "  orders: fivetran_stripe (schema stripe)" in out and "  leads: fivetran_hubspot (schema hubspot)" in out
    assert "  marketing_spend: fivetran_google_ads (schema google_ads) + fivetran_facebook_ads (schema facebook_ads)" in out
    matched = next(line for line in out.splitlines() if "customers matched" in line)
    assert "customers its rows refer to match a customer of fivetran_stripe through company.property_stripe_customer_id" \
        in matched and "do not" not in matched


def test_an_unmatched_company_is_counted_not_hidden(composed, monkeypatch, capsys):
    """Two companies lose their Stripe id: the check counts them and says what it means and the fix."""
    from sqlalchemy import text


    _, synced = composed
    engine = engine_for(synced)
    stack = stack_of("crm", FIVETRAN_STACK["crm"], "test")
    before = stack.customer_matches(engine)[0]
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT DISTINCT property_associatedcompanyid FROM hubspot.contact WHERE property_associatedcompanyid "
            "IS NOT NULL AND property_hs_lifecyclestage_customer_date IS NOT NULL ORDER BY 1 LIMIT 2"))]
        conn.execute(text("UPDATE hubspot.company SET property_stripe_customer_id = NULL WHERE id IN (:a, :b)"),
                     {"a": ids[0], "b": ids[1]})
    try:
        after = stack.customer_matches(engine)[0]
        referred = int(before.split(" of the ")[1].split(" ")[0].replace(",", ""))
        assert after.startswith(f"fivetran_hubspot: {referred - 2:,} of the {referred:,} customers")
        assert "; 2 do not: their leads and opportunities have no customer (fill " \
               "company.property_stripe_customer_id for them)" in after
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE hubspot.company SET property_stripe_customer_id = 'cus_' || LPAD(id::text, 10, '0') "
                              "WHERE id IN (:a, :b)"), {"a": ids[0], "b": ids[1]})


def test_what_the_stack_covers():
    """What the stack computes or approximates, of every KPI (the closing note and the README quote
    it); every other KPI has its reason in the connectors' terms."""
    rows = [r for database, parts in FIVETRAN_STACK.items() for r in coverage(stack_of(database, parts, "test"))]
    given = {r[0] for r in rows if r[2] in (COMPUTED, APPROXIMATED)}
    assert len(given) >= 44, f"{len(given)} of {len(rows)}"
    assert all(r[3] for r in rows if r[0] not in given)
    assert {"sales.revenue", "sales.mrr", "sales.churn_rate", "sales.win_rate", "marketing.cac",
            "operations.sla_compliance_rate"} <= given


def test_the_demo_writes_the_stack(postgres):
    url = postgres.create("stkdemo")
    done = subprocess.run([sys.executable, "-m", "crm_kpis.tools.demo", "--stack", "--crm-url", url, "--months", "3",
                           "--scale", "0.1", "--end-month", "2026-10"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "stripe: " in done.stdout and '"schema": "zendesk"' in done.stdout
    refused = subprocess.run([sys.executable, "-m", "crm_kpis.tools.demo", "--stack"], capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode == 2 and "give a PostgreSQL URL" in refused.stderr
