"""The extracts the KPIs read: which SQL file, from which connection, with which row checks.

Why a registry: each area task loads only the extracts its KPIs declare, each once, and every
extract passes the same checks whichever KPI reads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from crm_kpis.periods import ReportPeriod
from crm_kpis.quality import Rule, apply_rules, before, duplicate, negative
from crm_kpis.sources import CRM_CONN_ID, HELPDESK_CONN_ID, engine_for, read_query

log = logging.getLogger(__name__)


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
    #: (rule, column) pairs for an extract that aggregates in SQL: the source rows the query itself
    #: left out under that rule, counted per output row in that column (e.g. order lines of an
    #: unknown product behind a per-buyer row). They are added to the rule's excluded count.
    counted_in_sql: tuple[tuple[str, str], ...] = ()


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
                 before("converted_at", "created_at"))),
        Extract("customers", CRM_CONN_ID, "crm/customers.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("orders", CRM_CONN_ID, "crm/orders.sql", ORDER_RULES),
        Extract("campaign_orders", CRM_CONN_ID, "crm/campaign_orders.sql", ORDER_RULES),
        Extract("orders_previous", CRM_CONN_ID, "crm/orders.sql", ORDER_RULES, shift=-1),
        Extract("order_customers", CRM_CONN_ID, "crm/order_customers.sql", (duplicate("customer_id"),)),
        Extract("opportunities_closed", CRM_CONN_ID, "crm/opportunities_closed.sql",
                (duplicate("opportunity_id"), before("closed_at", "created_at"),
                 Rule("closed_without_outcome", lambda f: ~f["outcome"].isin(["won", "lost"])))),
        Extract("opportunities_open", CRM_CONN_ID, "crm/opportunities_open.sql",
                (duplicate("opportunity_id"), negative("amount"))),
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
                counted_in_sql=(("order_line_missing_tier_or_category", "lines_excluded"),)),
        Extract("revenue_trailing", CRM_CONN_ID, "crm/revenue_trailing.sql"),
        Extract("customers_trailing", CRM_CONN_ID, "crm/customers_trailing.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("tickets_created", HELPDESK_CONN_ID, "helpdesk/tickets_created.sql",
                (duplicate("ticket_id"), before("resolved_at", "created_at"))),
        Extract("tickets_resolved", HELPDESK_CONN_ID, "helpdesk/tickets_resolved.sql",
                (duplicate("ticket_id"), before("resolved_at", "created_at"),
                 before("first_response_at", "created_at"), before("resolved_at", "first_response_at"))),
        Extract("tickets_first_response", HELPDESK_CONN_ID, "helpdesk/tickets_first_response.sql",
                (duplicate("ticket_id"), before("first_response_at", "created_at"))),
        Extract("tickets_open", HELPDESK_CONN_ID, "helpdesk/tickets_open.sql", (duplicate("ticket_id"),)),
        Extract("calls", HELPDESK_CONN_ID, "helpdesk/calls.sql",
                (duplicate("call_id"), before("answered_at", "queued_at"), before("ended_at", "queued_at"),
                 before("ended_at", "answered_at"))),
        Extract("agent_time", HELPDESK_CONN_ID, "helpdesk/agent_time.sql", (negative("hours_logged", "hourly_cost"),)),
    ]
}


@dataclass
class Loaded:
    frames: dict[str, pd.DataFrame]
    rows_read: dict[str, int]
    rejected: dict[str, dict[str, int]]


def load_extracts(names: set[str], period: ReportPeriod) -> Loaded:
    """Run each named extract once for the period and apply its row checks."""
    frames: dict[str, pd.DataFrame] = {}
    rows_read: dict[str, int] = {}
    rejected: dict[str, dict[str, int]] = {}
    for name in sorted(names):
        extract = EXTRACTS[name]
        target = period.shift(extract.shift) if extract.shift else period
        raw = read_query(engine_for(extract.conn_id), extract.sql, target.sql_params())
        checked = apply_rules(name, raw, extract.rules)
        excluded = dict(checked.rejected)
        for rule, column in extract.counted_in_sql:
            n = int(pd.to_numeric(raw[column]).fillna(0).sum()) if len(raw) else 0
            if n:
                excluded[rule] = excluded.get(rule, 0) + n
                log.warning("%s: the query left out %d source rows (%s)", name, n, rule)
        frames[name] = checked.frame
        rows_read[name] = len(raw)
        if excluded:
            rejected[name] = excluded
        log.info("extract %s: %d rows read, %d excluded", name, len(raw), sum(excluded.values()))
    return Loaded(frames, rows_read, rejected)
