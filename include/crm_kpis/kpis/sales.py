"""Sales KPIs (kpi-catalogue.md, Sales). Breakdowns: customer `segment` and rep `rep_team`."""

from __future__ import annotations

import pandas as pd

from crm_kpis.kpis.base import (
    Inputs,
    Measure,
    active_at,
    count,
    exact_sum,
    hours_between,
    in_period,
    kpi,
    mean,
    median,
    member_ratios,
    safe_div,
    share,
    sum_by,
    sum_ratio,
    total,
)

SEGMENT = ("segment",)
BY = ("segment", "rep_team")


def _completed(orders: pd.DataFrame) -> pd.DataFrame:
    return orders[orders["status"] == "completed"]


@kpi("sales.revenue", flow=True, tracked=("orders",), name="Revenue", unit="money", better="up", grain="D",
     formula="Σ total_amount of completed orders in period", inputs=["orders"], breakdowns=BY,
     description="Revenue of completed orders; refunded and cancelled orders are not revenue.")
def revenue(x: Inputs) -> list[Measure]:
    return total(_completed(x["orders"]), "total_amount", BY, x["orders"])


@kpi("sales.orders", flow=True, tracked=("orders",), name="Orders", unit="count", better="up", grain="D",
     formula="completed orders in period", inputs=["orders"], breakdowns=BY,
     description="Completed orders placed in the period.")
def orders(x: Inputs) -> list[Measure]:
    return count(_completed(x["orders"]), BY, x["orders"])


@kpi("sales.aov", tracked=("orders",), name="Average order value", unit="money", better="up", grain="D",
     formula="revenue / orders", inputs=["orders"], breakdowns=BY,
     description="Revenue per completed order.")
def aov(x: Inputs) -> list[Measure]:
    return mean(_completed(x["orders"]), "total_amount", BY)


@kpi("sales.growth_rate", sample=False, tracked=("orders",), name="Sales growth rate", unit="rate", better="up", grain="D",
     formula="(revenue − revenue of the previous period of the same grain) / previous revenue",
     inputs=["orders", "orders_previous"], breakdowns=SEGMENT,
     description="Revenue change against the previous day or month; numerator is the change, "
                 "denominator the previous revenue.")
def growth_rate(x: Inputs) -> list[Measure]:
    now = sum_by(_completed(x["orders"]), "segment", "total_amount")
    before = sum_by(_completed(x["orders_previous"]), "segment", "total_amount")
    n_all = exact_sum(_completed(x["orders"])["total_amount"])
    b_all = exact_sum(_completed(x["orders_previous"])["total_amount"])
    return member_ratios("segment", now.sub(before, fill_value=0.0), before, n_all - b_all, b_all)


def _customer_flags(x: Inputs) -> pd.DataFrame:
    """Per customer: active at start, active at end, new in period, churned in period (built once)."""

    def build(x: Inputs) -> pd.DataFrame:
        c, p = x["customers"], x.period
        return c.assign(
            at_start=active_at(c, p.utc_start),
            at_end=active_at(c, p.utc_end),
            new=in_period(c["created_at"], p),
            churned=in_period(c["churned_at"], p),
        )

    return x.derived("customer_flags", build)


@kpi("sales.new_customers", flow=True, tracked=("customers",), name="New customers", unit="count", better="up", grain="D",
     formula="customers created in period", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers who became paying customers in the period.")
def new_customers(x: Inputs) -> list[Measure]:
    c = _customer_flags(x)
    return count(c[c["new"]], SEGMENT, c)


@kpi("sales.active_customers", tracked=("customers",), name="Active customers", unit="count", better="up", grain="D",
     formula="customers active at end", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers created before the end of the period and not churned by then.")
def active_customers(x: Inputs) -> list[Measure]:
    c = _customer_flags(x)
    return count(c[c["at_end"]], SEGMENT, c)


@kpi("sales.retained_customers", tracked=("customers",), name="Retained customers", unit="count", better="up", grain="D",
     formula="active at start and active at end", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers active both when the period began and when it ended.")
def retained_customers(x: Inputs) -> list[Measure]:
    c = _customer_flags(x)
    return count(c[c["at_start"] & c["at_end"]], SEGMENT, c)


@kpi("sales.retention_rate", tracked=("customers", "churn_dates"), name="Customer retention rate", unit="rate", better="up", grain="M",
     formula="(active at end − new in period) / active at start", inputs=["customers"], breakdowns=SEGMENT,
     description="The classic retention rate: customers kept from the start of the period, "
                 "not counting those won during it.")
def retention_rate(x: Inputs) -> list[Measure]:
    c = _customer_flags(x)
    return sum_ratio(c.assign(kept=c["at_end"].astype(int) - c["new"].astype(int)), "kept", "at_start", SEGMENT)


@kpi("sales.churn_rate", tracked=("customers", "churn_dates"), name="Customer churn rate", unit="rate", better="down", grain="M",
     formula="customers with churned_at in period / active at start", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers lost in the period over the customers at its start.")
def churn_rate(x: Inputs) -> list[Measure]:
    return sum_ratio(_customer_flags(x), "churned", "at_start", SEGMENT)


@kpi("sales.mrr", tracked=("subscriptions",), name="Monthly recurring revenue", unit="money", better="up", grain="D",
     formula="Σ mrr of subscriptions started before end, not ended (cancelled or past term without renewal) before end",
     inputs=["subscriptions_active"], breakdowns=SEGMENT,
     description="Recurring revenue running at the end of the period.")
def mrr(x: Inputs) -> list[Measure]:
    return total(x["subscriptions_active"], "mrr", SEGMENT)


@kpi("sales.win_rate", tracked=("won_deals", "lost_deals"), name="Win rate", unit="rate", better="up", grain="D",
     formula="opportunities closed won in period / closed (won or lost) in period",
     inputs=["opportunities_closed"], breakdowns=BY, description="Share of decided opportunities that were won.")
def win_rate(x: Inputs) -> list[Measure]:
    o = x["opportunities_closed"]
    return share(o.assign(won=o["outcome"] == "won"), "won", BY)


@kpi("sales.bookings", flow=True, tracked=("won_deals",), coverage=("opportunities_closed", "amount"), name="Bookings",
     unit="money", better="up", grain="D",
     formula="Σ amount of opportunities won in period (those without an amount are not in the sum: the value says "
             "its coverage)",
     inputs=["opportunities_closed"], breakdowns=BY,
     description="Deal value closed won: the revenue figure of a company whose billing is not among the sources "
                 "(a report's headline can name it as revenue's alternative).")
def bookings(x: Inputs) -> list[Measure]:
    o = x["opportunities_closed"]
    return total(o[o["outcome"] == "won"], "amount", BY, universe=o)


@kpi("sales.open_opportunities", tracked=("opportunities",), name="Open opportunities", unit="count", better=None, grain="D",
     formula="created before end, not closed before end", inputs=["opportunities_open"], breakdowns=BY,
     description="Opportunities still open at the end of the period.")
def open_opportunities(x: Inputs) -> list[Measure]:
    return count(x["opportunities_open"], BY)


@kpi("sales.pipeline_value", tracked=("opportunities",), coverage=("opportunities_open", "amount"), name="Pipeline value",
     unit="money", better="up", grain="D",
     formula="Σ amount of open opportunities (those without an amount are not in the sum: the value says its coverage)",
     inputs=["opportunities_open"], breakdowns=BY,
     description="Amount of the opportunities open at the end of the period.")
def pipeline_value(x: Inputs) -> list[Measure]:
    return total(x["opportunities_open"], "amount", BY)


@kpi("sales.proposals_sent", flow=True, tracked=("proposals",), name="Proposals sent", unit="count", better="up", grain="D",
     formula="opportunities with proposal_sent_at in period", inputs=["proposals"], breakdowns=BY,
     description="Proposals sent to prospects and customers.")
def proposals_sent(x: Inputs) -> list[Measure]:
    return count(x["proposals"], BY)


@kpi("sales.calls", flow=True, tracked=("sales_calls",), name="Sales calls", unit="count", better="up", grain="D",
     formula="sales_activities of kind call in period", inputs=["sales_calls"], breakdowns=("rep_team",),
     description="Calls logged by the sales reps.")
def calls(x: Inputs) -> list[Measure]:
    return count(x["sales_calls"], ("rep_team",))


@kpi("sales.cycle_days", tracked=("won_deals",), name="Sales cycle length", unit="days", better="down", grain="M",
     formula="mean (closed_at − created_at) in days of opportunities won in period",
     inputs=["opportunities_closed"], breakdowns=BY, description="Days from opportunity to won deal.")
def cycle_days(x: Inputs) -> list[Measure]:
    o = x["opportunities_closed"]
    won = o[o["outcome"] == "won"]
    return mean(won.assign(days=hours_between(won["closed_at"], won["created_at"]) / 24.0), "days", BY)


@kpi("sales.lead_response_hours", tracked=("lead_first_contact",), name="Lead response time", unit="hours", better="down", grain="D",
     formula="median (first_contacted_at − created_at) in hours of leads first contacted in period",
     inputs=["leads"], description="How fast a new lead hears from sales (median, so one slow lead does not dominate).")
def lead_response_hours(x: Inputs) -> list[Measure]:
    leads = x["leads"]
    contacted = leads[in_period(leads["first_contacted_at"], x.period)]
    return median(contacted.assign(h=hours_between(contacted["first_contacted_at"], contacted["created_at"])), "h")


@kpi("sales.repeat_purchase_rate", tracked=("orders",), name="Repeat purchase rate", unit="rate", better="up", grain="M",
     formula="customers with a completed order in period who had a completed order before start / "
             "customers with a completed order in period",
     inputs=["order_customers"], breakdowns=SEGMENT, description="Share of buyers who had bought before.")
def repeat_purchase_rate(x: Inputs) -> list[Measure]:
    c = x["order_customers"]
    return share(c.assign(repeat=c["had_prior_order"].astype(int) == 1), "repeat", SEGMENT)


@kpi("sales.renewal_rate", tracked=("subscriptions",), name="Renewal rate", unit="rate", better="up", grain="M",
     formula="subscriptions whose term_ends_at is in period and that some subscription renews / "
             "subscriptions whose term ends in period",
     inputs=["subscriptions_term_end"], breakdowns=SEGMENT,
     description="Share of contracts reaching their term that were renewed (by a renewal started before "
                 "the period's end, so a re-run gives the same value).")
def renewal_rate(x: Inputs) -> list[Measure]:
    s = x["subscriptions_term_end"]
    return share(s.assign(was_renewed=s["renewed"].astype(int) == 1), "was_renewed", SEGMENT)


@kpi("sales.calls_per_opportunity", tracked=("opportunities", "sales_calls"), name="Calls per opportunity", unit="ratio", better=None, grain="M",
     formula="calls logged (ever, before closed_at) on opportunities closed in period / opportunities closed in period",
     inputs=["opportunities_closed"], breakdowns=BY, description="Sales calls it took per decided opportunity.")
def calls_per_opportunity(x: Inputs) -> list[Measure]:
    return mean(x["opportunities_closed"], "calls_before_close", BY)


@kpi("sales.stage_days", tracked=("stage_history",), name="Sales stage duration", unit="days", better="down", grain="M",
     formula="per stage: mean days between entering that stage and entering the next one, for exits in period",
     inputs=["stage_exits"], breakdowns=("stage", "rep_team"),
     description="Days an opportunity spends in each pipeline stage (dimension 'stage'); the company-wide "
                 "value is the mean over all stage exits.")
def stage_days(x: Inputs) -> list[Measure]:
    s = x["stage_exits"]
    return mean(s.assign(days=hours_between(s["exited_at"], s["entered_at"]) / 24.0), "days", ("stage", "rep_team"))


@kpi("sales.journey_days", tracked=("leads", "customers"), name="Customer journey length", unit="days", better="down", grain="M",
     formula="mean days from the lead's created_at to the customer's created_at, customers created in period from a lead",
     inputs=["customer_journeys"], breakdowns=SEGMENT,
     description="Days from first lead to paying customer (the customer's earliest lead).")
def journey_days(x: Inputs) -> list[Measure]:
    j = x["customer_journeys"]
    return mean(j.assign(days=hours_between(j["created_at"], j["lead_created_at"]) / 24.0), "days", SEGMENT)


@kpi("sales.cross_sell_rate", tracked=("order_lines",), name="Cross-sell rate", unit="rate", better="up", grain="M",
     formula="customers with a completed order in period containing a product category they had never bought "
             "before (and at least one earlier order) / customers with a completed order in period",
     inputs=["buyer_flags"], breakdowns=SEGMENT,
     description="'Before' means before that order: a second order in the same period can be a cross-sell; "
                 "orders placed at the same instant are one purchase, neither before the other. "
                 "The per-buyer flags come from SQL (crm/buyer_flags.sql), which reads each buyer's whole "
                 "purchase history; order lines of an unknown product, or one without category or tier, "
                 "are excluded and counted.")
def cross_sell_rate(x: Inputs) -> list[Measure]:
    return share(x["buyer_flags"], "cross_sell", SEGMENT)


@kpi("sales.upsell_rate", tracked=("order_lines",), name="Up-sell rate", unit="rate", better="up", grain="M",
     formula="customers with a completed order in period containing a product of a higher tier than any they "
             "had bought before / customers with a completed order in period",
     inputs=["buyer_flags"], breakdowns=SEGMENT,
     description="Buyers who moved up a product tier (flags from crm/buyer_flags.sql, as for cross-sell).")
def upsell_rate(x: Inputs) -> list[Measure]:
    return share(x["buyer_flags"], "upsell", SEGMENT)


def _month_starts(x: Inputs, months: int = 12) -> list[pd.Timestamp]:
    first = x.period.start_date.replace(day=1)
    out = []
    for back in range(months - 1, -2, -1):  # 12 month starts and the end of the last month
        index = first.year * 12 + first.month - 1 - back
        local = pd.Timestamp(year=index // 12, month=index % 12 + 1, day=1, tz=x.period.tz)
        out.append(local.tz_convert("UTC").tz_localize(None))
    return out


@kpi("sales.clv", sample=False, tracked=("orders", "churn_dates"), name="Customer lifetime value", unit="money", better="up", grain="M",
     formula="(revenue in the trailing 12 months / mean active customers over those months / 12) ÷ "
             "mean monthly churn rate over those months",
     inputs=["revenue_trailing", "customers_trailing"],
     description="Monthly revenue per active customer divided by the monthly churn rate, over the twelve months "
                 "ending with the period; 'active customers' of a month are those active at its start. "
                 "Numerator: monthly revenue per customer; denominator: mean monthly churn rate.")
def clv(x: Inputs) -> list[Measure]:
    c = x["customers_trailing"]
    bounds = _month_starts(x)
    active, churn = [], []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        base = float(active_at(c, start).sum())
        lost = float(((c["churned_at"] >= start) & (c["churned_at"] < end)).sum())
        active.append(base)
        if base:
            churn.append(lost / base)
    revenue = exact_sum(x["revenue_trailing"]["total_amount"])
    mean_active = sum(active) / len(active)
    monthly_value = safe_div(revenue, mean_active * 12)
    mean_churn = sum(churn) / len(churn) if churn else 0.0
    value = None if monthly_value is None else safe_div(monthly_value, mean_churn)
    return [Measure(value, monthly_value, mean_churn)]


@kpi("sales.loyalty_index", sample=False, tracked=("nps_surveys", "orders", "churn_dates"), name="Customer loyalty index", unit="score", better="up", grain="M",
     formula="mean of three 0–100 scores: (NPS + 100) / 2, repeat purchase rate × 100, retention rate × 100",
     inputs=["survey_responses", "order_customers", "customers"],
     description="n/a when any of the three parts is undefined for the period.")
def loyalty_index(x: Inputs) -> list[Measure]:
    from crm_kpis.kpis.marketing import nps

    parts = [nps(x)[0].value, repeat_purchase_rate(x)[0].value, retention_rate(x)[0].value]
    if any(p is None for p in parts):
        return [Measure(None)]
    scores = [(parts[0] + 100) / 2, parts[1] * 100, parts[2] * 100]
    return [Measure(sum(scores) / 3, sum(scores), 3.0)]
