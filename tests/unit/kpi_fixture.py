"""A small hand-made data set for October 2026 (UTC), shaped like the extracts.

Every expected value in the KPI tests is computed by hand from these rows; the arithmetic is
written next to each assertion. Rows sit exactly on the period bounds on purpose: a timestamp
equal to the start is in the period, one equal to the end is out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm_kpis.compute import prepare_frames
from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import Inputs, KpiValue
from crm_kpis.periods import ReportPeriod

OCTOBER = ReportPeriod.parse("monthly", "2026-10")
NaT = pd.NaT
NA = np.nan


def frame(columns: str, rows: list[tuple]) -> pd.DataFrame:
    """Columns as a space-separated string; `*_at`, `*_date` and `*_on` columns become datetimes."""
    df = pd.DataFrame(rows, columns=columns.split())
    for c in df.columns:
        if c.endswith(("_at", "_date", "_on")):
            df[c] = pd.to_datetime(df[c], format="ISO8601")
    return df


def frames() -> dict[str, pd.DataFrame]:
    data = _frames()
    # crm/campaign_orders.sql reads only completed campaign orders; the KPIs apply that definition
    # themselves, so they get every order here and must drop the others
    data["campaign_orders"] = data["orders"]
    data["purchase_histories"] = purchase_histories()
    data["customer_lifetimes"] = customer_lifetimes()
    return data


def purchase_histories(customers: int = 150) -> pd.DataFrame:
    """Enough buyers for the lifetime-value models to fit (crm/purchase_histories.sql's row shape),
    drawn once with a fixed seed from the BG/NBD story (r 0.8, α 6 weeks, a 1.5, b 4): customer i
    first bought 3i days after 1 Jan 2025, then at Poisson times until he dropped out; each repeat
    purchase $(30 + i). Its values are the models', checked in test_clv_*; here they feed the
    properties every KPI must have."""
    rng = np.random.default_rng(19)
    end = pd.Timestamp("2026-11-01")
    rows = []
    for i in range(customers):
        first = pd.Timestamp("2025-01-01") + pd.Timedelta(days=i * 3)
        rate, drop = rng.gamma(0.8, 1 / 6.0), rng.beta(1.5, 4.0)  # purchases a week; dropout after each
        at, times = first, []
        while True:
            at = at + pd.Timedelta(days=min(float(rng.exponential(7.0 / rate)), 1000.0))
            if at >= end:
                break
            times.append(at)
            if rng.uniform() < drop:
                break
        x = len(times)
        rows.append((i + 1, i + 1, ("smb", "enterprise", None)[i % 3], first, times[-1] if times else first, x,
                     (30.0 + i) * x, 0, NaT, 0, 0, 0, 0, 0, 0, 0))
    return frame("customer_id known_customer_id segment first_at last_at repeat_purchases repeat_amount "
                 "calibration_repeats calibration_last_at holdout_1 holdout_2 holdout_3 holdout_4 holdout_5 "
                 "holdout_6 orders_excluded", rows)


def customer_lifetimes(customers: int = 120) -> pd.DataFrame:
    """Customer i joined i × 5 days after 1 Jan 2024; every third left (i mod 11 + 1) × 29 days later,
    if that was before November."""
    rows = []
    for i in range(customers):
        created = pd.Timestamp("2024-01-01") + pd.Timedelta(days=i * 5)
        churned = created + pd.Timedelta(days=(i % 11 + 1) * 29) if i % 3 == 0 else NaT
        rows.append((i + 1, ("smb", "enterprise")[i % 2], created,
                     churned if churned is not NaT and churned < pd.Timestamp("2026-11-01") else NaT))
    return frame("customer_id segment created_at churned_at", rows)


def _frames() -> dict[str, pd.DataFrame]:
    return {
        "marketing_spend": frame("spend_date channel amount", [
            ("2026-10-01", "email", 100.00), ("2026-10-15", "paid_search", 250.50), ("2026-10-31", "email", 49.50),
        ]),
        "campaigns_active": frame("campaign_id channel started_on ended_on", [
            (1, "email", "2026-09-01", NaT), (2, "email", "2026-10-05", "2026-10-20"),
            (3, "social", "2026-10-31", NaT),
        ]),
        "leads": frame("lead_id created_at channel campaign_id first_contacted_at converted_at", [
            (1, "2026-10-01 00:00:00", "email", 1, "2026-10-01 06:00:00", "2026-10-20 00:00:00"),  # at start: in
            (2, "2026-10-10 00:00:00", "paid_search", NA, "2026-10-10 03:00:00", NaT),
            (3, "2026-09-20 00:00:00", "email", 2, "2026-09-21 00:00:00", "2026-10-05 00:00:00"),
            (4, "2026-11-01 00:00:00", "social", 3, NaT, NaT),  # at end: out
            (5, "2026-10-31 23:59:59", "social", 4, NaT, NaT),
        ]),
        "customers": frame("customer_id created_at churned_at segment channel campaign_id referred_by_customer_id", [
            (1, "2025-01-01", NaT, "smb", "email", NA, NA),
            (2, "2025-06-01", "2026-10-10", "mid_market", "paid_search", NA, NA),
            (3, "2026-10-01 00:00:00", NaT, "smb", "email", 5, 1),  # new at exactly start
            (4, "2026-10-15", NaT, "enterprise", "social", NA, 1),
            (5, "2026-10-20", "2026-10-25", "smb", "social", 6, 2),  # new and churned in period
            (6, "2026-11-01 00:00:00", NaT, "smb", "email", 7, NA),  # created at end: not new, not active
            (7, "2024-01-01", "2026-11-01 00:00:00", "smb", "referral", NA, NA),  # churned at end: active at end
            (8, "2024-05-01", "2026-10-01 00:00:00", "enterprise", "content", NA, NA),  # churned at start
        ]),
        "orders": frame("order_id customer_id ordered_at status total_amount campaign_id segment rep_team channel", [
            (1, 1, "2026-10-01 00:00:00", "completed", 100.00, 1, "smb", "A", "email"),
            (2, 2, "2026-10-05", "completed", 300.00, NA, "mid_market", "B", None),
            (3, 1, "2026-10-06", "refunded", 50.00, 2, "smb", "A", "social"),
            (4, 4, "2026-10-31 23:59:59", "completed", 200.00, 3, "enterprise", None, "social"),
            (5, 5, "2026-10-07", "cancelled", 70.00, NA, "smb", "B", None),
        ]),
        "orders_previous": frame("order_id customer_id ordered_at status total_amount campaign_id segment rep_team channel", [
            (11, 1, "2026-09-03", "completed", 400.00, NA, "smb", "A", None),
            (12, 2, "2026-09-04", "completed", 100.00, NA, "mid_market", "B", None),
            (13, 1, "2026-09-05", "refunded", 999.00, NA, "smb", "A", None),
        ]),
        "order_customers": frame("customer_id segment had_prior_order", [
            (1, "smb", 1), (2, "mid_market", 0), (4, "enterprise", 1), (5, "smb", 0),
        ]),
        "opportunities_closed": frame(
            "opportunity_id created_at closed_at outcome amount segment rep_team calls_before_close", [
                (1, "2026-09-01 00:00:00", "2026-10-11 00:00:00", "won", 1000.0, "smb", "A", 3),  # 40 days
                (2, "2026-10-01 00:00:00", "2026-10-03 12:00:00", "won", 500.0, "mid_market", "B", 0),  # 2.5 days
                (3, "2026-08-01 00:00:00", "2026-10-20 00:00:00", "lost", 700.0, "smb", "A", 4),
            ]),
        "subscriptions_term_end": frame("subscription_id term_ends_at segment renewed", [
            (1, "2026-10-05", "smb", 1), (2, "2026-10-10", "smb", 0), (3, "2026-10-20", "enterprise", 1),
            (4, "2026-10-31", "mid_market", 0),
        ]),
        "stage_exits": frame("opportunity_id stage entered_at exited_at rep_team", [
            (1, "qualification", "2026-09-01 00:00", "2026-10-03 00:00", "A"),  # 32 days
            (1, "proposal", "2026-10-03 00:00", "2026-10-11 00:00", "A"),  # 8 days
            (2, "qualification", "2026-10-01 00:00", "2026-10-02 12:00", "B"),  # 1.5 days
        ]),
        "customer_journeys": frame("customer_id created_at segment lead_created_at", [
            (3, "2026-10-01 00:00", "smb", "2026-09-11 00:00"),  # 20 days
            (5, "2026-10-20 00:00", "smb", "2026-10-15 12:00"),  # 4.5 days
        ]),
        # per buyer, as crm/buyer_flags.sql returns it (its flags are worked out by hand in
        # tests/integration/test_buyer_flags.py); customer 3's only line was of an unknown product
        "buyer_flags": frame("customer_id segment lines_judged lines_excluded cross_sell upsell", [
            (1, "smb", 2, 0, 1, 1), (2, "mid_market", 1, 0, 0, 0), (3, "smb", 0, 1, 0, 0),
            (4, "enterprise", 1, 0, 0, 0), (5, "smb", 2, 0, 1, 0), (6, None, 1, 0, 1, 0),
        ]),
        # 120 completed orders of 200.00 over the trailing twelve months: revenue 24,000
        "revenue_trailing": frame("order_id total_amount", [(900 + i, 200.0) for i in range(120)]),
        "customers_trailing": frame("customer_id created_at churned_at segment", [
            (1, "2025-01-01", NaT, "smb"),  # active at all 12 month starts
            (2, "2025-01-01", "2026-03-15", "smb"),  # active Nov 2025 .. Mar 2026, churned in March
            (3, "2026-06-10", NaT, "smb"),  # active from 1 July
        ]),
        "opportunities_open": frame("opportunity_id created_at amount segment rep_team", [
            (4, "2026-09-01", 100.0, "smb", "A"), (5, "2026-10-02", 200.0, "smb", "A"),
            (6, "2026-10-03", 300.5, "enterprise", "B"),
        ]),
        "proposals": frame("opportunity_id proposal_sent_at segment rep_team", [
            (1, "2026-10-02", "smb", "A"), (2, "2026-10-02", "mid_market", "B"),
        ]),
        "sales_calls": frame("activity_id occurred_at rep_team", [
            (1, "2026-10-01", "A"), (2, "2026-10-02", "A"), (3, "2026-10-03", "B"), (4, "2026-10-04", None),
        ]),
        "subscriptions_active": frame("subscription_id mrr segment", [
            (1, 10.5, "smb"), (2, 20.0, "smb"), (3, 30.0, "enterprise"),
        ]),
        "email_messages": frame("message_id sent_at delivered opened_at clicked_at", [
            (1, "2026-10-06 09:00", 1, "2026-10-06 10:00", "2026-10-06 10:01"),
            (2, "2026-10-06 09:00", 1, "2026-10-06 11:00", NaT),
            (3, "2026-10-06 09:00", 1, NaT, NaT),
            (4, "2026-10-06 09:00", 0, NaT, NaT),  # bounced: not delivered
            (5, "2026-10-20 09:00", 1, NaT, NaT),
        ]),
        "email_subscribers": frame("subscriber_id subscribed_at unsubscribed_at", [
            (1, "2025-01-01", NaT), (2, "2025-02-01", "2026-10-10"), (3, "2026-10-05", NaT),
            (4, "2026-10-06", "2026-10-07"), (5, "2026-01-01", "2026-10-01 00:00:00"),
        ]),
        "social_activity": frame("activity_date platform impressions engagements mentions", [
            ("2026-10-01", "linkedin", 1000, 50, 3), ("2026-10-02", "x", 3000, 70, 2),
        ]),
        "web_traffic": frame("traffic_date channel sessions page_views", [
            ("2026-10-01", "email", 10, 25), ("2026-10-01", "paid_search", 30, 60), ("2026-10-02", "email", 5, 15),
        ]),
        "survey_responses": frame("response_id customer_id survey score responded_at ticket_id channel segment", [
            (1, 1, "nps", 10, "2026-10-02", NA, "email", "smb"),
            (2, 2, "nps", 9, "2026-10-03", NA, "email", "mid_market"),
            (3, 3, "nps", 9, "2026-10-04", NA, "social", "smb"),
            (4, 4, "nps", 7, "2026-10-05", NA, "social", "enterprise"),
            (5, 5, "nps", 3, "2026-10-06", NA, "email", "smb"),
            (6, 1, "csat", 5, "2026-10-07", 1, "email", "smb"),
            (7, 2, "csat", 4, "2026-10-08", 2, "email", "mid_market"),
            (8, 3, "csat", 3, "2026-10-09", 3, "social", "smb"),
            (9, 4, "csat", 1, "2026-10-10", 4, "social", "enterprise"),
            (10, 1, "ces", 2, "2026-10-11", 1, "email", "smb"),
            (11, 2, "ces", 3, "2026-10-12", 2, "email", "mid_market"),
            (12, 3, "ces", 7, "2026-10-13", 3, "social", "smb"),
        ]),
        "tickets_created": frame("ticket_id created_at resolved_at category ticket_channel agent_team", [
            (1, "2026-10-02", "2026-10-03", "complaint", "email", "Tier 1"),
            (2, "2026-10-05", NaT, "complaint", "chat", "Tier 2"),
            (3, "2026-10-06", "2026-11-01 00:00:00", "complaint", "email", "Tier 1"),  # resolved at end: not before
            (4, "2026-10-07", "2026-10-08", "question", "phone", None),
        ]),
        "tickets_resolved": frame(
            "ticket_id created_at first_response_at resolved_at category priority reopen_count ticket_channel "
            "agent_team sla_first_response_minutes sla_resolution_minutes public_agent_messages", [
                (1, "2026-10-01 08:00", "2026-10-01 08:30", "2026-10-01 10:00", "question", "normal", 0,
                 "email", "Tier 1", 240, 1440, 1),
                (2, "2026-10-01 20:00", "2026-10-02 01:00", "2026-10-02 08:00", "complaint", "normal", 1,
                 "chat", "Tier 2", 240, 1440, 2),
                (3, "2026-09-30 12:00", "2026-09-30 12:05", "2026-10-01 12:00", "complaint", "high", 0,
                 "email", "Tier 1", 60, 480, 1),
                (4, "2026-10-10 09:00", NaT, "2026-10-10 09:30", "question", "low", 0,
                 "phone", None, 480, 4320, 0),
            ]),
        "tickets_first_response": frame("ticket_id created_at first_response_at ticket_channel agent_team", [
            (1, "2026-10-01 08:00", "2026-10-01 08:30", "email", "Tier 1"),  # 0.5 h
            (2, "2026-10-01 20:00", "2026-10-02 01:00", "chat", "Tier 2"),  # 5 h
            (5, "2026-10-03 00:00", "2026-10-03 02:00", "email", "Tier 2"),  # 2 h
        ]),
        "tickets_open": frame("ticket_id ticket_channel agent_team", [
            (2, "chat", "Tier 2"), (3, "email", "Tier 1"), (9, "email", None),
        ]),
        "calls": frame("call_id direction queued_at answered_at ended_at is_callback outcome agent_team", [
            (1, "inbound", "2026-10-01 09:00:00", "2026-10-01 09:00:30", "2026-10-01 09:05:30", 0, "answered", "Tier 1"),
            (2, "inbound", "2026-10-02 10:00:00", "2026-10-02 10:01:30", "2026-10-02 10:11:30", 1, "answered", "Tier 2"),
            (3, "inbound", "2026-10-03 10:00:00", NaT, "2026-10-03 10:01:00", 0, "abandoned", None),
            (4, "outbound", "2026-10-04 11:00:00", "2026-10-04 11:00:10", "2026-10-04 11:03:10", 1, "answered", "Tier 1"),
            (5, "inbound", "2026-10-05 12:00:00", NaT, "2026-10-05 12:02:00", 0, "voicemail", None),
        ]),
        "agent_time": frame("agent_id work_date hours_logged hourly_cost agent_team", [
            (1, "2026-10-01", 8.0, 30.0, "Tier 1"), (2, "2026-10-01", 7.5, 40.0, "Tier 2"),
            (3, "2026-10-02", 4.0, 30.0, "Tier 1"),
        ]),
    }


def evaluate(kpi_id: str, data: dict[str, pd.DataFrame] | None = None,
             period: ReportPeriod = OCTOBER) -> dict[tuple[str, str], KpiValue]:
    """One KPI's values keyed by (dimension, member); ("", "") is the company-wide value."""
    values = REGISTRY[kpi_id].evaluate(Inputs(period, prepare_frames(data if data is not None else frames())))
    return {(v.dimension, v.member): v for v in values}


def value(kpi_id: str, dimension: str = "", member: str = "", **kwargs) -> float | None:
    return evaluate(kpi_id, **kwargs)[(dimension, member)].value
