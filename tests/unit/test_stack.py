"""The stack declaration (crm_kpis.sources.stack): which connector fills each reference table, and
the errors a wrong declaration gets, in the connection's terms."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine

from crm_kpis.sources.connections import CRM_CONN_ID, source_settings
from crm_kpis.sources.coverage import APPROXIMATED, NOT_RECORDED, coverage
from crm_kpis.sources.errors import SourceConfigError
from crm_kpis.sources.stack import stack_of

HUBSPOT = {"adapter": "fivetran_hubspot", "schema": "hubspot"}
GOOGLE = {"adapter": "fivetran_google_ads", "schema": "google_ads"}
FACEBOOK = {"adapter": "fivetran_facebook_ads", "schema": "facebook_ads"}


def test_each_table_comes_from_the_connector_that_has_it_and_spend_from_both_networks():
    stack = stack_of("crm", [HUBSPOT, GOOGLE, FACEBOOK], "test")
    filled = {t: [p.adapter.name for p in parts] for t, parts in stack.filled().items()}
    assert filled["leads"] == ["fivetran_hubspot"]
    assert filled["marketing_spend"] == ["fivetran_google_ads", "fivetran_facebook_ads"]
    assert filled["orders"] == []
    assert stack.not_recorded("orders") == \
        "no synced connector fills orders (fivetran_hubspot: HubSpot deals are not orders; no order table is read)"
    # the union: each part's SELECT in the contract's column order (on an empty database: the
    # optional campaign_history supplied as an empty table)
    bare = stack_of("crm", [{"adapter": p.adapter.name} for p in stack.parts], "test")
    sql = bare.select("marketing_spend", create_engine("sqlite://"))
    assert sql.count("UNION ALL") == 1
    assert 'FROM "campaign_stats" s' in sql and 'FROM "basic_ad" b' in sql
    assert sql.startswith('SELECT "spend_date", "channel", "amount" FROM (')


def test_a_kpi_reading_the_union_says_how_each_network_is_read():
    rows = {kpi: (status, why) for kpi, _, status, why in coverage(stack_of("crm", [HUBSPOT, GOOGLE, FACEBOOK], "t"))}
    status, why = rows["marketing.spend"]
    assert status == APPROXIMATED and "cost_micros" in why and "basic_ad.spend" in why
    # HubSpot's reasons still speak for what only HubSpot fills
    assert rows["sales.retention_rate"] == (NOT_RECORDED, "HubSpot companies have no churn date")
    assert rows["sales.revenue"][0] == NOT_RECORDED and "no synced connector fills orders" in rows["sales.revenue"][1]


def test_a_part_that_lists_a_table_takes_it_from_the_others():
    stack = stack_of("crm", [HUBSPOT, {**GOOGLE, "tables": ["marketing_spend"]}, FACEBOOK], "test")
    assert [p.adapter.name for p in stack.fillers("marketing_spend")] == ["fivetran_google_ads"]


@pytest.mark.parametrize("declared, says", [
    ([HUBSPOT, {"adapter": "fivetran_salesforce"}],
     "sales_reps is filled by fivetran_hubspot and fivetran_salesforce, but its rows have a key (rep_id)"),
    ([{**GOOGLE, "tables": ["leads"]}], "fivetran_google_ads does not fill leads; it fills marketing_spend"),
    ([{"adapter": "fivetran_zendesk"}], "adapter 'fivetran_zendesk' reads a synced helpdesk, not the crm"),
    ([{"adapter": "fivetran_hubspt"}], "adapter 'fivetran_hubspt' does not exist"),
    ([{"schema": "hubspot"}], "each entry of extra adapters needs an \"adapter\" name"),
    ([], "extra adapters must be a list"),
])
def test_a_wrong_stack_is_refused_naming_the_connection_and_the_fix(declared, says):
    with pytest.raises(SourceConfigError) as raised:
        stack_of("crm", declared, "connection 'crm_db'")
    assert says in str(raised.value) and "connection 'crm_db'" in str(raised.value)


def test_the_extra_gives_the_stack_or_the_one_adapter_never_both(monkeypatch, tmp_path):
    def extra(**settings):
        monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps(
            {"conn_type": "sqlite", "host": str(tmp_path / "crm.db"), "extra": settings}))

    extra(adapters=[HUBSPOT, GOOGLE])
    assert source_settings(CRM_CONN_ID).adapter == "fivetran_hubspot + fivetran_google_ads"
    extra(adapter="fivetran_hubspot", schema="hubspot")
    stack = source_settings(CRM_CONN_ID).stack
    assert [(p.adapter.name, p.schema) for p in stack.parts] == [("fivetran_hubspot", "hubspot")]
    extra(adapters=[GOOGLE], adapter="fivetran_hubspot")
    with pytest.raises(SourceConfigError, match="both adapters and adapter/schema"):
        source_settings(CRM_CONN_ID)
    extra(schema="crm")
    with pytest.raises(SourceConfigError, match="schema 'crm' without an adapter"):
        source_settings(CRM_CONN_ID)


def test_the_readme_has_the_coverage_of_the_whole_crm_stack():
    from crm_kpis.paths import PROJECT_DIR
    from crm_kpis.sources.coverage import coverage_table
    from crm_kpis.tools.demo.layouts import FIVETRAN_STACK

    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert coverage_table(stack_of("crm", FIVETRAN_STACK["crm"], "readme")) in readme
    # the example the README gives is the stack the demo writes
    assert '"customer_ids": {"table": "company", "column": "property_stripe_customer_id"}' in readme


def test_a_customer_match_is_checked_when_the_connection_is_read():
    stripe = {"adapter": "fivetran_stripe", "tables": ["orders", "customers", "subscriptions"]}
    with pytest.raises(SourceConfigError, match="customer_ids of fivetran_hubspot must name a synced table and the column"):
        stack_of("crm", [{"adapter": "fivetran_hubspot", "customer_ids": {"table": "company"}}, stripe], "t")
    with pytest.raises(SourceConfigError, match="fivetran_stripe matches its customers to another connector's "
                                                "\\(customer_ids\\), but fills customers itself"):
        stack_of("crm", [{"adapter": "fivetran_hubspot"},
                         {**stripe, "customer_ids": {"table": "customer", "column": "metadata"}}], "t")


def test_a_matched_part_reads_its_customer_references_through_the_match():
    from sqlalchemy import create_engine

    stack = stack_of("crm", [{"adapter": "fivetran_hubspot",
                              "customer_ids": {"table": "company", "column": "property_stripe_customer_id"}},
                             {"adapter": "fivetran_stripe", "tables": ["orders", "customers", "subscriptions"]}], "t")
    engine = create_engine("sqlite://")
    leads = stack.select("leads", engine)
    assert 'm."property_stripe_customer_id" AS "customer_id"' in leads
    assert 'LEFT JOIN "company" m ON m."id" = p."customer_id"' in leads
    assert "property_stripe_customer_id" not in stack.select("sales_reps", engine)  # no customer reference
    assert "property_stripe_customer_id" not in stack.select("orders", engine)  # Stripe's own ids


def test_a_stack_whose_connectors_type_ids_differently_reads_every_id_as_text():
    # HubSpot numbers its ids, Stripe names them (cus_…): an order's customer and a deal's rep join
    # across the two only if both sides are text
    stack = stack_of("crm", [{"adapter": "fivetran_hubspot"}, {"adapter": "fivetran_stripe",
                                                                "tables": ["orders", "customers", "subscriptions"]}], "t")
    assert stack.ids == "text"
    reps = stack.select("sales_reps", create_engine("sqlite://"))
    assert reps.startswith('SELECT CAST("rep_id" AS TEXT) AS "rep_id", "name", "team" FROM (')
    assert stack.select("campaigns", create_engine("sqlite://")).startswith('SELECT NULL AS "campaign_id"')
    assert stack_of("crm", [{"adapter": "fivetran_hubspot"}], "t").ids == "bigint"
