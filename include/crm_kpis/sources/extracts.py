"""The extracts the KPIs read: which SQL file, from which connection, with which row checks.

Why a registry: each area task loads only the extracts its KPIs declare, each once, and every
extract passes the same checks whichever KPI reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crm_kpis.quality.rules import Rule, before, below_zero, duplicate, negative
from crm_kpis.sources.connections import CRM_CONN_ID, HELPDESK_CONN_ID
from crm_kpis.sources.contract import main_table


def _score_out_of_scale(frame: pd.DataFrame) -> pd.Series:
    """NPS 0–10, CSAT 1–5, CES 1–7; an unknown survey kind is out of scale too."""
    low = frame["survey"].map({"nps": 0, "csat": 1, "ces": 1})
    high = frame["survey"].map({"nps": 10, "csat": 5, "ces": 7})
    return (low.isna() | frame["score"].isna() | (frame["score"] < low) | (frame["score"] > high)).astype(bool)


ORPHAN_CUSTOMER = Rule("orphan_customer", lambda f: f["known_customer_id"].isna())
#: every extract of orders rows (all of a period, its campaign orders, the period before) checks the same
ORDER_RULES = (duplicate("order_id"), negative("total_amount"), ORPHAN_CUSTOMER)


@dataclass(frozen=True)
class Extract:
    name: str
    conn_id: str
    sql: str
    rules: tuple[Rule, ...] = ()
    shift: int = 0  # read the period this many periods earlier (e.g. -1 for growth rates)
    #: (rule, column, table) for an extract that aggregates in SQL: the rows of that source table
    #: the query itself left out under that rule, counted per output row in that column (e.g. order
    #: lines of an unknown product behind a per-buyer row). They are added to the rule's count.
    counted_in_sql: tuple[tuple[str, str, str], ...] = ()
    #: magnitude columns in which one row far beyond the period's median, or far beyond the largest
    #: of the recent periods, is a finding of the quality gate (quality/gate.py)
    outliers: tuple[str, ...] = ()
    #: the columns that together say what a row is (customer, time, amount): rows repeating another
    #: row's content under another key are counted, since that is how a period loaded twice looks
    repeats: tuple[str, ...] = ()
    #: the reference table its rows stand for, where the outermost FROM is a CTE of the query
    table: str | None = None
    #: a long aggregate in the database (a minute and more at company scale): read first, so that
    #: the area's other reads run beside it rather than after it
    read_first: bool = False


EXTRACTS: dict[str, Extract] = {
    e.name: e
    for e in [
        Extract("marketing_spend", CRM_CONN_ID, "crm/marketing_spend.sql", (negative("amount"),)),
        Extract("web_traffic", CRM_CONN_ID, "crm/web_traffic.sql", (negative("sessions", "page_views"),)),
        Extract(
            "social_activity", CRM_CONN_ID, "crm/social_activity.sql",
            (negative("impressions", "engagements", "mentions"),
             Rule("engagements_above_impressions", lambda f: f["engagements"] > f["impressions"])),
        ),
        Extract("campaigns_active", CRM_CONN_ID, "crm/campaigns_active.sql",
                (duplicate("campaign_id"), before("ended_on", "started_on"))),
        Extract("leads", CRM_CONN_ID, "crm/leads.sql",
                (duplicate("lead_id"), before("first_contacted_at", "created_at"),
                 before("converted_at", "created_at")), repeats=("created_at", "channel", "campaign_id")),
        Extract("customers", CRM_CONN_ID, "crm/customers.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("orders", CRM_CONN_ID, "crm/orders.sql", ORDER_RULES, outliers=("total_amount",),
                repeats=("customer_id", "ordered_at", "total_amount")),
        Extract("campaign_orders", CRM_CONN_ID, "crm/campaign_orders.sql", ORDER_RULES),
        Extract("orders_previous", CRM_CONN_ID, "crm/orders.sql", ORDER_RULES, shift=-1),
        Extract("order_customers", CRM_CONN_ID, "crm/order_customers.sql", (duplicate("customer_id"),)),
        Extract("opportunities_closed", CRM_CONN_ID, "crm/opportunities_closed.sql",
                (duplicate("opportunity_id"), before("closed_at", "created_at"),
                 Rule("closed_without_outcome", lambda f: ~f["outcome"].isin(["won", "lost"])))),
        # an open deal without an amount (not priced yet: HubSpot's usual case) is still open; the
        # pipeline value says on what share of them it is computed
        Extract("opportunities_open", CRM_CONN_ID, "crm/opportunities_open.sql",
                (duplicate("opportunity_id"), below_zero("amount"))),
        Extract("proposals", CRM_CONN_ID, "crm/proposals.sql", (duplicate("opportunity_id"),)),
        Extract("sales_calls", CRM_CONN_ID, "crm/sales_calls.sql", (duplicate("activity_id"),)),
        Extract("email_messages", CRM_CONN_ID, "crm/email_messages.sql",
                (duplicate("message_id"), before("opened_at", "sent_at"), before("clicked_at", "sent_at"))),
        Extract("email_subscribers", CRM_CONN_ID, "crm/email_subscribers.sql",
                (duplicate("subscriber_id"), before("unsubscribed_at", "subscribed_at"))),
        Extract("survey_responses", CRM_CONN_ID, "crm/survey_responses.sql",
                (duplicate("response_id"), Rule("score_out_of_scale", _score_out_of_scale), ORPHAN_CUSTOMER)),
        Extract("subscriptions_active", CRM_CONN_ID, "crm/subscriptions_active.sql",
                (duplicate("subscription_id"), negative("mrr"))),
        Extract("subscriptions_term_end", CRM_CONN_ID, "crm/subscriptions_term_end.sql",
                (duplicate("subscription_id"),)),
        Extract("stage_exits", CRM_CONN_ID, "crm/stage_exits.sql", (before("exited_at", "entered_at"),)),
        Extract("customer_journeys", CRM_CONN_ID, "crm/customer_journeys.sql",
                (duplicate("customer_id"), before("created_at", "lead_created_at"))),
        Extract("buyer_flags", CRM_CONN_ID, "crm/buyer_flags.sql",
                (Rule("buyer_without_line_with_tier_and_category", lambda f: f["lines_judged"] < 1),),
                counted_in_sql=(("order_line_missing_tier_or_category", "lines_excluded", "order_lines"),),
                read_first=True),
        # the order rules evaluated in the database, their counts beside the sum (one row)
        Extract("revenue_trailing", CRM_CONN_ID, "crm/revenue_trailing.sql", (),
                counted_in_sql=(("unreadable_total_amount", "amounts_unreadable", "orders"),
                                ("duplicate", "duplicates", "orders"),
                                ("negative_or_missing_total_amount", "amounts_excluded", "orders"),
                                ("orphan_customer", "orphans", "orders")),
                table="orders", read_first=True),
        # a row is a customer's whole history: one of an unknown customer is left out and counted as a
        # customer (not as his orders, which the other order extracts count by order_id)
        Extract("purchase_histories", CRM_CONN_ID, "crm/purchase_histories.sql",
                (Rule("purchase_history_of_unknown_customer", lambda f: f["known_customer_id"].isna()),),
                counted_in_sql=(("negative_or_missing_total_amount", "orders_excluded", "orders"),
                                ("unreadable_total_amount", "amounts_unreadable", "orders")),
                table="orders", read_first=True),
        Extract("customer_lifetimes", CRM_CONN_ID, "crm/customer_lifetimes.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("customers_trailing", CRM_CONN_ID, "crm/customers_trailing.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("tickets_created", HELPDESK_CONN_ID, "helpdesk/tickets_created.sql",
                (duplicate("ticket_id"), before("resolved_at", "created_at")),
                repeats=("created_at", "category", "ticket_channel")),
        Extract("tickets_resolved", HELPDESK_CONN_ID, "helpdesk/tickets_resolved.sql",
                (duplicate("ticket_id"), before("resolved_at", "created_at"),
                 before("first_response_at", "created_at"), before("resolved_at", "first_response_at")),
                table="tickets"),
        Extract("tickets_first_response", HELPDESK_CONN_ID, "helpdesk/tickets_first_response.sql",
                (duplicate("ticket_id"), before("first_response_at", "created_at"))),
        Extract("tickets_open", HELPDESK_CONN_ID, "helpdesk/tickets_open.sql", (duplicate("ticket_id"),)),
        Extract("calls", HELPDESK_CONN_ID, "helpdesk/calls.sql",
                (duplicate("call_id"), before("answered_at", "queued_at"), before("ended_at", "queued_at"),
                 before("ended_at", "answered_at"))),
        Extract("agent_time", HELPDESK_CONN_ID, "helpdesk/agent_time.sql", (negative("hours_logged", "hourly_cost"),),
                outliers=("hours_logged", "hourly_cost")),
    ]
}


def source_table(extract: Extract) -> str:
    """The reference table an extract's rows come from (its SQL's outermost FROM)."""
    return extract.table or main_table(extract.sql) or extract.name
