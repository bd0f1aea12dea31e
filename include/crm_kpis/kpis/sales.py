"""Sales KPIs (kpi-catalogue.md, Sales). Breakdowns: customer `segment` and rep `rep_team`."""

from __future__ import annotations

import pandas as pd

from crm_kpis.kpis.base import (
    Inputs,
    Measure,
    active_at,
    count,
    hours_between,
    in_period,
    kpi,
    mean,
    median,
    safe_div,
    share,
    total,
)

SEGMENT = ("segment",)
BY = ("segment", "rep_team")


def _completed(orders: pd.DataFrame) -> pd.DataFrame:
    return orders[orders["status"] == "completed"]


@kpi("sales.revenue", name="Revenue", unit="money", better="up", grain="D",
     formula="Σ total_amount of completed orders in period", inputs=["orders"], breakdowns=BY,
     description="Revenue of completed orders; refunded and cancelled orders are not revenue.")
def revenue(x: Inputs) -> list[Measure]:
    return total(_completed(x["orders"]), "total_amount", BY)


@kpi("sales.orders", name="Orders", unit="count", better="up", grain="D",
     formula="completed orders in period", inputs=["orders"], breakdowns=BY,
     description="Completed orders placed in the period.")
def orders(x: Inputs) -> list[Measure]:
    return count(_completed(x["orders"]), BY)


@kpi("sales.aov", name="Average order value", unit="money", better="up", grain="D",
     formula="revenue / orders", inputs=["orders"], breakdowns=BY,
     description="Revenue per completed order.")
def aov(x: Inputs) -> list[Measure]:
    return mean(_completed(x["orders"]), "total_amount", BY)


@kpi("sales.growth_rate", name="Sales growth rate", unit="rate", better="up", grain="D",
     formula="(revenue − revenue of the previous period of the same grain) / previous revenue",
     inputs=["orders", "orders_previous"], breakdowns=SEGMENT,
     description="Revenue change against the previous day or month; numerator is the change, "
                 "denominator the previous revenue.")
def growth_rate(x: Inputs) -> list[Measure]:
    now = _completed(x["orders"]).groupby("segment")["total_amount"].sum()
    before = _completed(x["orders_previous"]).groupby("segment")["total_amount"].sum()
    segments = sorted(set(now.index) | set(before.index))
    now, before = now.reindex(segments, fill_value=0.0), before.reindex(segments, fill_value=0.0)
    n_all = float(_completed(x["orders"])["total_amount"].sum())
    b_all = float(_completed(x["orders_previous"])["total_amount"].sum())
    out = [Measure(safe_div(n_all - b_all, b_all), n_all - b_all, b_all)]
    for s in segments:
        change, base = float(now[s] - before[s]), float(before[s])
        out.append(Measure(safe_div(change, base), change, base, "segment", str(s)))
    return out


def _customer_flags(x: Inputs) -> pd.DataFrame:
    c, p = x["customers"], x.period
    return c.assign(
        at_start=active_at(c, p.utc_start),
        at_end=active_at(c, p.utc_end),
        new=in_period(c["created_at"], p),
        churned=in_period(c["churned_at"], p),
    )


@kpi("sales.new_customers", name="New customers", unit="count", better="up", grain="D",
     formula="customers created in period", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers who became paying customers in the period.")
def new_customers(x: Inputs) -> list[Measure]:
    c = _customer_flags(x)
    return count(c[c["new"]], SEGMENT)


@kpi("sales.active_customers", name="Active customers", unit="count", better="up", grain="D",
     formula="customers active at end", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers created before the end of the period and not churned by then.")
def active_customers(x: Inputs) -> list[Measure]:
    c = _customer_flags(x)
    return count(c[c["at_end"]], SEGMENT)


@kpi("sales.retained_customers", name="Retained customers", unit="count", better="up", grain="D",
     formula="active at start and active at end", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers active both when the period began and when it ended.")
def retained_customers(x: Inputs) -> list[Measure]:
    c = _customer_flags(x)
    return count(c[c["at_start"] & c["at_end"]], SEGMENT)


def _by_segment(c: pd.DataFrame, reduce) -> list[Measure]:  # noqa: ANN001 - small local helper
    out = [reduce(c, "", "")]
    for member, part in c.groupby("segment", sort=True):
        out.append(reduce(part, "segment", str(member)))
    return out


@kpi("sales.retention_rate", name="Customer retention rate", unit="rate", better="up", grain="M",
     formula="(active at end − new in period) / active at start", inputs=["customers"], breakdowns=SEGMENT,
     description="The classic retention rate: customers kept from the start of the period, "
                 "not counting those won during it.")
def retention_rate(x: Inputs) -> list[Measure]:
    def reduce(c: pd.DataFrame, dim: str, member: str) -> Measure:
        kept = float(c["at_end"].sum() - c["new"].sum())
        base = float(c["at_start"].sum())
        return Measure(safe_div(kept, base), kept, base, dim, member)

    return _by_segment(_customer_flags(x), reduce)


@kpi("sales.churn_rate", name="Customer churn rate", unit="rate", better="down", grain="M",
     formula="customers with churned_at in period / active at start", inputs=["customers"], breakdowns=SEGMENT,
     description="Customers lost in the period over the customers at its start.")
def churn_rate(x: Inputs) -> list[Measure]:
    def reduce(c: pd.DataFrame, dim: str, member: str) -> Measure:
        lost, base = float(c["churned"].sum()), float(c["at_start"].sum())
        return Measure(safe_div(lost, base), lost, base, dim, member)

    return _by_segment(_customer_flags(x), reduce)


@kpi("sales.mrr", name="Monthly recurring revenue", unit="money", better="up", grain="D",
     formula="Σ mrr of subscriptions started before end, not ended (cancelled or past term without renewal) before end",
     inputs=["subscriptions_active"], breakdowns=SEGMENT,
     description="Recurring revenue running at the end of the period.")
def mrr(x: Inputs) -> list[Measure]:
    return total(x["subscriptions_active"], "mrr", SEGMENT)


@kpi("sales.win_rate", name="Win rate", unit="rate", better="up", grain="D",
     formula="opportunities closed won in period / closed (won or lost) in period",
     inputs=["opportunities_closed"], breakdowns=BY, description="Share of decided opportunities that were won.")
def win_rate(x: Inputs) -> list[Measure]:
    o = x["opportunities_closed"]
    return share(o.assign(won=o["outcome"] == "won"), "won", BY)


@kpi("sales.open_opportunities", name="Open opportunities", unit="count", better=None, grain="D",
     formula="created before end, not closed before end", inputs=["opportunities_open"], breakdowns=BY,
     description="Opportunities still open at the end of the period.")
def open_opportunities(x: Inputs) -> list[Measure]:
    return count(x["opportunities_open"], BY)


@kpi("sales.pipeline_value", name="Pipeline value", unit="money", better="up", grain="D",
     formula="Σ amount of open opportunities", inputs=["opportunities_open"], breakdowns=BY,
     description="Amount of the opportunities open at the end of the period.")
def pipeline_value(x: Inputs) -> list[Measure]:
    return total(x["opportunities_open"], "amount", BY)


@kpi("sales.proposals_sent", name="Proposals sent", unit="count", better="up", grain="D",
     formula="opportunities with proposal_sent_at in period", inputs=["proposals"], breakdowns=BY,
     description="Proposals sent to prospects and customers.")
def proposals_sent(x: Inputs) -> list[Measure]:
    return count(x["proposals"], BY)


@kpi("sales.calls", name="Sales calls", unit="count", better="up", grain="D",
     formula="sales_activities of kind call in period", inputs=["sales_calls"], breakdowns=("rep_team",),
     description="Calls logged by the sales reps.")
def calls(x: Inputs) -> list[Measure]:
    return count(x["sales_calls"], ("rep_team",))


@kpi("sales.cycle_days", name="Sales cycle length", unit="days", better="down", grain="M",
     formula="mean (closed_at − created_at) in days of opportunities won in period",
     inputs=["opportunities_closed"], breakdowns=BY, description="Days from opportunity to won deal.")
def cycle_days(x: Inputs) -> list[Measure]:
    o = x["opportunities_closed"]
    won = o[o["outcome"] == "won"]
    return mean(won.assign(days=hours_between(won["closed_at"], won["created_at"]) / 24.0), "days", BY)


@kpi("sales.lead_response_hours", name="Lead response time", unit="hours", better="down", grain="D",
     formula="median (first_contacted_at − created_at) in hours of leads first contacted in period",
     inputs=["leads"], description="How fast a new lead hears from sales (median, so one slow lead does not dominate).")
def lead_response_hours(x: Inputs) -> list[Measure]:
    leads = x["leads"]
    contacted = leads[in_period(leads["first_contacted_at"], x.period)]
    return median(contacted.assign(h=hours_between(contacted["first_contacted_at"], contacted["created_at"])), "h")


@kpi("sales.repeat_purchase_rate", name="Repeat purchase rate", unit="rate", better="up", grain="M",
     formula="customers with a completed order in period who had a completed order before start / "
             "customers with a completed order in period",
     inputs=["order_customers"], breakdowns=SEGMENT, description="Share of buyers who had bought before.")
def repeat_purchase_rate(x: Inputs) -> list[Measure]:
    c = x["order_customers"]
    return share(c.assign(repeat=c["had_prior_order"].astype(int) == 1), "repeat", SEGMENT)
