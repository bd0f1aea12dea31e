"""Marketing KPIs (kpi-catalogue.md, Marketing). Breakdown: `channel`."""

from __future__ import annotations

import pandas as pd

from crm_kpis.kpis.base import (
    Inputs,
    Measure,
    active_at,
    count,
    exact_sum,
    in_period,
    kpi,
    member_ratios,
    safe_div,
    share,
    sum_by,
    sum_ratio,
    total,
)

BY = ("channel",)


def _campaign_orders(x: Inputs) -> pd.DataFrame:
    """The definition; the extract (crm/campaign_orders.sql) already reads only these rows."""
    o = x["campaign_orders"]
    return o[(o["status"] == "completed") & o["campaign_id"].notna()]


def _new_customers(x: Inputs) -> pd.DataFrame:
    c = x["customers"]
    return c[in_period(c["created_at"], x.period)]


@kpi("marketing.spend", flow=True, tracked=("marketing_spend",), name="Marketing spend", unit="money", better="down", grain="D",
     formula="Σ marketing_spend.amount in period", inputs=["marketing_spend"], breakdowns=BY,
     description="All acquisition spend booked on the days of the period.")
def spend(x: Inputs) -> list[Measure]:
    return total(x["marketing_spend"], "amount", BY)


@kpi("marketing.campaigns_active", tracked=("campaigns",), name="Active campaigns", unit="count", better=None, grain="D",
     formula="campaigns with started_on < end and (ended_on NULL or ended_on >= start)",
     inputs=["campaigns_active"], breakdowns=BY,
     description="Campaigns that ran on at least one day of the period.")
def campaigns_active(x: Inputs) -> list[Measure]:
    return count(x["campaigns_active"], BY)


@kpi("marketing.campaign_responses", flow=True, tracked=("leads", "campaigns"), name="Campaign responses", unit="count", better="up", grain="D",
     formula="leads created in period with a campaign_id", inputs=["leads"], breakdowns=BY,
     description="Leads that a campaign brought in.")
def campaign_responses(x: Inputs) -> list[Measure]:
    leads = x["leads"]
    return count(leads[in_period(leads["created_at"], x.period) & leads["campaign_id"].notna()], BY, leads)


@kpi("marketing.campaign_purchases", flow=True, tracked=("orders", "campaigns"), name="Campaign purchases", unit="count", better="up", grain="D",
     formula="completed orders in period with a campaign_id", inputs=["campaign_orders"], breakdowns=BY,
     description="Orders attributed to a campaign; the breakdown is the campaign's channel.")
def campaign_purchases(x: Inputs) -> list[Measure]:
    return count(_campaign_orders(x), BY, x["campaign_orders"])


@kpi("marketing.campaign_revenue", flow=True, tracked=("orders", "campaigns"), name="Campaign revenue", unit="money", better="up", grain="D",
     formula="Σ total_amount of completed orders in period with a campaign_id", inputs=["campaign_orders"],
     breakdowns=BY, description="Revenue of the orders attributed to a campaign.")
def campaign_revenue(x: Inputs) -> list[Measure]:
    return total(_campaign_orders(x), "total_amount", BY, x["campaign_orders"])


@kpi("marketing.campaign_new_customers", flow=True, tracked=("customers", "campaigns"), name="New customers from campaigns", unit="count", better="up",
     grain="D", formula="customers created in period with a campaign_id", inputs=["customers"],
     breakdowns=BY, description="New paying customers attributed to a campaign.")
def campaign_new_customers(x: Inputs) -> list[Measure]:
    new = _new_customers(x)
    return count(new[new["campaign_id"].notna()], BY, new)


@kpi("marketing.roi", sample=False, tracked=("campaigns", "marketing_spend"), name="Marketing ROI", unit="ratio", better="up", grain="M",
     formula="(campaign revenue − spend) / spend", inputs=["campaign_orders", "marketing_spend"], breakdowns=BY,
     description="Return on marketing spend: 0.5 means every 1 spent brought 1.5 of campaign revenue.")
def roi(x: Inputs) -> list[Measure]:
    revenue = sum_by(_campaign_orders(x), "channel", "total_amount")
    spent = sum_by(x["marketing_spend"], "channel", "amount")
    return member_ratios("channel", revenue.sub(spent, fill_value=0.0), spent,
                         exact_sum(revenue) - exact_sum(spent), exact_sum(spent))


@kpi("marketing.cac", tracked=("marketing_spend", "customers"), name="Customer acquisition cost", unit="money", better="down", grain="M",
     formula="spend / customers created in period", inputs=["marketing_spend", "customers"], breakdowns=BY,
     description="Spend per new customer; per channel, that channel's spend per customer it acquired.")
def cac(x: Inputs) -> list[Measure]:
    spent = sum_by(x["marketing_spend"], "channel", "amount")
    new = _new_customers(x).groupby("channel").size().astype(float)
    return member_ratios("channel", spent, new, exact_sum(spent), exact_sum(new))


@kpi("marketing.leads_created", flow=True, tracked=("leads",), name="New leads", unit="count", better="up", grain="D",
     formula="leads created in period", inputs=["leads"], breakdowns=BY,
     description="Leads created, by their source channel.")
def leads_created(x: Inputs) -> list[Measure]:
    leads = x["leads"]
    return count(leads[in_period(leads["created_at"], x.period)], BY, leads)


@kpi("marketing.lead_conversion_rate", tracked=("leads", "lead_conversions"), name="Lead conversion rate", unit="rate", better="up", grain="D",
     formula="leads converted in period / leads created in period", inputs=["leads"], breakdowns=BY,
     description="Conversions in the period over leads created in it (two flows of the same period).")
def lead_conversion_rate(x: Inputs) -> list[Measure]:
    leads = x["leads"].assign(
        converted=lambda f: in_period(f["converted_at"], x.period),
        created=lambda f: in_period(f["created_at"], x.period),
    )
    return sum_ratio(leads, "converted", "created", BY)


@kpi("marketing.referrals", flow=True, tracked=("referrals",), name="New customer referrals", unit="count", better="up", grain="D",
     formula="customers created in period with referred_by_customer_id", inputs=["customers"], breakdowns=BY,
     description="New customers referred by an existing customer.")
def referrals(x: Inputs) -> list[Measure]:
    new = _new_customers(x)
    return count(new[new["referred_by_customer_id"].notna()], BY, new)


@kpi("marketing.referral_rate", tracked=("referrals",), name="Customer referral rate", unit="rate", better="up", grain="M",
     formula="distinct referrers of customers created in period / customers active at start",
     inputs=["customers"], description="Share of the customer base that referred a new customer.")
def referral_rate(x: Inputs) -> list[Measure]:
    referrers = _new_customers(x)["referred_by_customer_id"].dropna().nunique()
    base = int(active_at(x["customers"], x.period.utc_start).sum())
    return [Measure(safe_div(referrers, base), float(referrers), float(base))]


@kpi("marketing.page_views", flow=True, tracked=("web_traffic",), name="Web page views", unit="count", better="up", grain="D",
     formula="Σ web_traffic.page_views in period", inputs=["web_traffic"], breakdowns=BY,
     description="Page views of the web site, by traffic channel.")
def page_views(x: Inputs) -> list[Measure]:
    return total(x["web_traffic"], "page_views", BY)


@kpi("marketing.sessions", flow=True, tracked=("web_traffic",), name="Web sessions", unit="count", better="up", grain="D",
     formula="Σ web_traffic.sessions in period", inputs=["web_traffic"], breakdowns=BY,
     description="Web site sessions, by traffic channel.")
def sessions(x: Inputs) -> list[Measure]:
    return total(x["web_traffic"], "sessions", BY)


def _delivered(x: Inputs) -> pd.DataFrame:
    m = x["email_messages"]
    m = m[m["delivered"].fillna(0).astype(bool)]
    return m.assign(opened=m["opened_at"].notna(), clicked=m["clicked_at"].notna())


@kpi("marketing.email_open_rate", tracked=("email_messages",), name="Email open rate", unit="rate", better="up", grain="D",
     formula="delivered marketing messages sent in period with opened_at / delivered marketing messages sent in period",
     inputs=["email_messages"], description="Share of delivered marketing emails that were opened.")
def email_open_rate(x: Inputs) -> list[Measure]:
    return share(_delivered(x), "opened")


@kpi("marketing.email_click_rate", tracked=("email_messages",), name="Email click-through rate", unit="rate", better="up", grain="D",
     formula="delivered marketing messages sent in period with clicked_at / delivered marketing messages sent in period",
     inputs=["email_messages"], description="Share of delivered marketing emails with a click.")
def email_click_rate(x: Inputs) -> list[Measure]:
    return share(_delivered(x), "clicked")


@kpi("marketing.email_list_growth_rate", tracked=("email_subscribers",), name="Email list growth rate", unit="rate", better="up", grain="M",
     formula="(subscribed in period − unsubscribed in period) / subscribed before start and not unsubscribed before start",
     inputs=["email_subscribers"], description="Net growth of the email list over its size at the start.")
def email_list_growth_rate(x: Inputs) -> list[Measure]:
    s, p = x["email_subscribers"], x.period
    joined = int(in_period(s["subscribed_at"], p).sum())
    left = int(in_period(s["unsubscribed_at"], p).sum())
    base = int(((s["subscribed_at"] < p.utc_start)
                & (s["unsubscribed_at"].isna() | (s["unsubscribed_at"] >= p.utc_start))).sum())
    return [Measure(safe_div(joined - left, base), float(joined - left), float(base))]


@kpi("marketing.social_engagement_rate", tracked=("social_activity",), name="Social media engagement rate", unit="rate", better="up",
     grain="D", formula="Σ engagements / Σ impressions in period", inputs=["social_activity"],
     description="Likes, comments and shares per impression, all platforms.")
def social_engagement_rate(x: Inputs) -> list[Measure]:
    return sum_ratio(x["social_activity"], "engagements", "impressions")


@kpi("marketing.social_mentions", flow=True, tracked=("social_activity",), name="Social mentions", unit="count", better="up", grain="D",
     formula="Σ mentions in period", inputs=["social_activity"], description="Mentions of the brand, all platforms.")
def social_mentions(x: Inputs) -> list[Measure]:
    return total(x["social_activity"], "mentions")


@kpi("marketing.nps", tracked=("nps_surveys",), name="Net Promoter Score", unit="score", better="up", grain="D",
     formula="100 × (share of NPS responses in period scoring 9–10 − share scoring 0–6)",
     inputs=["survey_responses"], breakdowns=BY,
     description="Promoters minus detractors, in points from −100 to 100; numerator is promoters − "
                 "detractors, denominator the responses.")
def nps(x: Inputs) -> list[Measure]:
    r = x["survey_responses"]
    r = r[r["survey"] == "nps"]
    r = r.assign(net=(r["score"] >= 9).astype(int) - (r["score"] <= 6).astype(int))
    return [
        Measure(None if m.value is None else 100.0 * m.value, m.numerator, m.denominator, m.dimension, m.member)
        for m in sum_ratio(r.assign(one=1), "net", "one", BY)
    ]
