"""Operations KPIs (kpi-catalogue.md, Operations). Breakdowns: `ticket_channel`, `agent_team`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd

from crm_kpis.kpis.base import (
    Inputs,
    Measure,
    count,
    exact_sum,
    hours_between,
    kpi,
    mean,
    median,
    member_ratios,
    safe_div,
    share,
    sum_by,
    total,
)

BY = ("ticket_channel", "agent_team")
TEAM = ("agent_team",)


def _local_date(series: pd.Series, tz: str) -> pd.Series:
    return series.dt.tz_localize("UTC").dt.tz_convert(ZoneInfo(tz)).dt.date


@kpi("operations.tickets_created", flow=True, tracked=("tickets",), name="Cases opened", unit="count", better=None, grain="D",
     formula="tickets created in period", inputs=["tickets_created"], breakdowns=BY,
     description="New support cases.")
def tickets_created(x: Inputs) -> list[Measure]:
    return count(x["tickets_created"], BY)


@kpi("operations.tickets_solved", flow=True, tracked=("tickets",), name="Cases handled", unit="count", better="up", grain="D",
     formula="tickets with resolved_at in period", inputs=["tickets_resolved"], breakdowns=BY,
     description="Support cases resolved.")
def tickets_solved(x: Inputs) -> list[Measure]:
    return count(x["tickets_resolved"], BY)


@kpi("operations.backlog", tracked=("tickets",), name="Open cases", unit="count", better="down", grain="D",
     formula="tickets created before end, not resolved before end", inputs=["tickets_open"], breakdowns=BY,
     description="Cases still open at the end of the period.")
def backlog(x: Inputs) -> list[Measure]:
    return count(x["tickets_open"], BY)


@kpi("operations.solved_same_day_rate", tracked=("tickets",), name="Closed the same day", unit="rate", better="up", grain="D",
     formula="tickets resolved in period on the calendar day (report timezone) they were created / "
             "tickets resolved in period",
     inputs=["tickets_resolved"], breakdowns=BY,
     description="Share of resolved cases that were resolved on the local day they came in.")
def solved_same_day_rate(x: Inputs) -> list[Measure]:
    t = x["tickets_resolved"]
    tz = x.period.tz
    same = _local_date(t["created_at"], tz) == _local_date(t["resolved_at"], tz)
    return share(t.assign(same_day=same.astype(bool)), "same_day", BY)


@kpi("operations.first_response_hours", tracked=("first_responses",), name="First response time", unit="hours", better="down", grain="D",
     formula="median (first_response_at − created_at) in hours, tickets first answered in period",
     inputs=["tickets_first_response"], breakdowns=BY, description="Median wait for the first agent reply.")
def first_response_hours(x: Inputs) -> list[Measure]:
    t = x["tickets_first_response"]
    return median(t.assign(h=hours_between(t["first_response_at"], t["created_at"])), "h", BY)


def _resolution(t: pd.DataFrame) -> list[Measure]:
    """Mean hours per breakdown, plus the company-wide median as dimension `statistic`."""
    t = t.assign(h=hours_between(t["resolved_at"], t["created_at"]))
    out = mean(t, "h", BY)
    med = median(t, "h")[0]
    out.append(Measure(med.value, None, med.denominator, "statistic", "median"))
    return out


@kpi("operations.resolution_hours", tracked=("tickets",), name="Average resolution time", unit="hours", better="down", grain="D",
     formula="mean (resolved_at − created_at) in hours, tickets resolved in period (also the median, kept beside it)",
     inputs=["tickets_resolved"], breakdowns=BY,
     description="Hours from case opened to resolved; the median is stored as dimension 'statistic'.")
def resolution_hours(x: Inputs) -> list[Measure]:
    return _resolution(x["tickets_resolved"])


@kpi("operations.complaint_resolution_hours", tracked=("tickets",), name="Complaint resolution time", unit="hours", better="down",
     grain="D", formula="mean (resolved_at − created_at) in hours, complaints resolved in period",
     inputs=["tickets_resolved"], breakdowns=BY, description="As the resolution time, for complaints only.")
def complaint_resolution_hours(x: Inputs) -> list[Measure]:
    t = x["tickets_resolved"]
    return _resolution(t[t["category"] == "complaint"])


@kpi("operations.complaint_resolution_rate", tracked=("tickets",), name="Complaint resolution rate", unit="rate", better="up",
     grain="M", formula="complaints created in period and resolved before end / complaints created in period",
     inputs=["tickets_created"], breakdowns=BY, description="Share of the period's complaints already resolved.")
def complaint_resolution_rate(x: Inputs) -> list[Measure]:
    t = x["tickets_created"]
    t = t[t["category"] == "complaint"]
    return share(t.assign(done=(t["resolved_at"] < x.period.utc_end).fillna(False).astype(bool)), "done", BY)


@kpi("operations.fcr_rate", tracked=("tickets", "ticket_messages"), name="First contact resolution", unit="rate", better="up", grain="D",
     formula="tickets resolved in period with exactly one public agent message and reopen_count = 0 / "
             "tickets resolved in period",
     inputs=["tickets_resolved"], breakdowns=BY, description="Cases solved by the first reply.")
def fcr_rate(x: Inputs) -> list[Measure]:
    t = x["tickets_resolved"]
    first = (t["public_agent_messages"] == 1) & (t["reopen_count"] == 0)
    return share(t.assign(fcr=first.astype(bool)), "fcr", BY)


@kpi("operations.reopen_rate", tracked=("tickets",), name="Reopen rate", unit="rate", better="down", grain="D",
     formula="tickets resolved in period with reopen_count > 0 / tickets resolved in period",
     inputs=["tickets_resolved"], breakdowns=BY, description="Resolved cases that had been reopened.")
def reopen_rate(x: Inputs) -> list[Measure]:
    t = x["tickets_resolved"]
    return share(t.assign(reopened=(t["reopen_count"] > 0).astype(bool)), "reopened", BY)


@kpi("operations.sla_compliance_rate", tracked=("first_responses", "sla_policies"), coverage=("tickets_resolved", "first_response_at"), name="SLA compliance", unit="rate", better="up", grain="D",
     formula="tickets resolved in period whose first response and resolution both met their priority's "
             "sla_policies / tickets resolved in period",
     inputs=["tickets_resolved"], breakdowns=BY,
     description="A case without a first response, or whose priority has no policy, did not meet its SLA.")
def sla_compliance_rate(x: Inputs) -> list[Measure]:
    t = x["tickets_resolved"]
    fr_min = hours_between(t["first_response_at"], t["created_at"]) * 60
    res_min = hours_between(t["resolved_at"], t["created_at"]) * 60
    met = (fr_min <= t["sla_first_response_minutes"]) & (res_min <= t["sla_resolution_minutes"])
    return share(t.assign(met=met.fillna(False).astype(bool)), "met", BY)


def _inbound(x: Inputs) -> pd.DataFrame:
    c = x["calls"]
    return c[c["direction"] == "inbound"]


def _answered(c: pd.DataFrame) -> pd.DataFrame:
    return c[(c["outcome"] == "answered") & c["answered_at"].notna()]


@kpi("operations.inbound_calls", flow=True, tracked=("calls",), name="Service calls", unit="count", better=None, grain="D",
     formula="inbound calls queued in period", inputs=["calls"], description="Calls into the service line.")
def inbound_calls(x: Inputs) -> list[Measure]:
    return count(_inbound(x))


@kpi("operations.calls_per_day", sample=False, tracked=("calls",), name="Service calls per day", unit="count", better=None, grain="D",
     formula="answered inbound calls / days in period", inputs=["calls"],
     description="Answered inbound calls per calendar day of the period.")
def calls_per_day(x: Inputs) -> list[Measure]:
    answered, days = float(len(_answered(_inbound(x)))), float(x.period.days)
    return [Measure(safe_div(answered, days), answered, days)]


@kpi("operations.abandoned_calls", flow=True, tracked=("calls",), name="Calls abandoned", unit="count", better="down", grain="D",
     formula="inbound calls in period with outcome abandoned", inputs=["calls"],
     description="Callers who hung up before an agent answered.")
def abandoned_calls(x: Inputs) -> list[Measure]:
    c = _inbound(x)
    return count(c[c["outcome"] == "abandoned"])


@kpi("operations.abandonment_rate", tracked=("calls",), name="Abandonment rate", unit="rate", better="down", grain="D",
     formula="abandoned / inbound calls in period", inputs=["calls"], description="Share of inbound calls abandoned.")
def abandonment_rate(x: Inputs) -> list[Measure]:
    c = _inbound(x)
    return share(c.assign(abandoned=(c["outcome"] == "abandoned").astype(bool)), "abandoned")


@kpi("operations.speed_of_answer_seconds", tracked=("calls",), name="Average speed of answer", unit="seconds", better="down",
     grain="D", formula="mean (answered_at − queued_at) in seconds, answered inbound calls in period",
     inputs=["calls"], breakdowns=TEAM, description="Seconds a caller waits for an agent.")
def speed_of_answer_seconds(x: Inputs) -> list[Measure]:
    c = _answered(_inbound(x))
    return mean(c.assign(s=hours_between(c["answered_at"], c["queued_at"]) * 3600), "s", TEAM)


@kpi("operations.handle_minutes", tracked=("calls",), name="Average call handling time", unit="minutes", better="down", grain="D",
     formula="mean (ended_at − answered_at) in minutes, answered calls in period", inputs=["calls"],
     breakdowns=TEAM, description="Minutes an agent spends on an answered call, inbound or outbound.")
def handle_minutes(x: Inputs) -> list[Measure]:
    c = _answered(x["calls"])
    return mean(c.assign(m=hours_between(c["ended_at"], c["answered_at"]) * 60), "m", TEAM)


@kpi("operations.callbacks", flow=True, tracked=("calls",), name="Customer callbacks", unit="count", better=None, grain="D",
     formula="calls in period with is_callback", inputs=["calls"], description="Calls that returned a customer's call.")
def callbacks(x: Inputs) -> list[Measure]:
    c = x["calls"]
    return count(c[c["is_callback"].fillna(0).astype(bool)])


def _survey(x: Inputs, kind: str) -> pd.DataFrame:
    r = x["survey_responses"]
    return r[r["survey"] == kind]


@kpi("operations.csat", tracked=("csat_surveys",), name="Customer satisfaction (CSAT)", unit="rate", better="up", grain="D",
     formula="CSAT responses in period scoring 4–5 / CSAT responses in period", inputs=["survey_responses"],
     description="Share of satisfied answers (4 or 5 out of 5).")
def csat(x: Inputs) -> list[Measure]:
    r = _survey(x, "csat")
    return share(r.assign(happy=(r["score"] >= 4).astype(bool)), "happy")


@kpi("operations.ces", tracked=("ces_surveys",), name="Customer effort score", unit="score", better="down", grain="D",
     formula="mean CES score in period (1 = very easy … 7 = very hard)", inputs=["survey_responses"],
     description="Mean effort score; lower is easier.")
def ces(x: Inputs) -> list[Measure]:
    return mean(_survey(x, "ces"), "score")


@kpi("operations.feedback_volume", flow=True, tracked=("surveys",), name="Customer feedback volume", unit="count", better="up", grain="D",
     formula="survey responses of any kind in period", inputs=["survey_responses"],
     description="NPS, CSAT and CES answers received.")
def feedback_volume(x: Inputs) -> list[Measure]:
    return count(x["survey_responses"])


def _cost(x: Inputs) -> pd.DataFrame:
    t = x["agent_time"]
    return t.assign(cost=t["hours_logged"] * t["hourly_cost"])


@kpi("operations.service_cost", flow=True, tracked=("agent_time",), name="Customer service cost", unit="money", better="down", grain="D",
     formula="Σ hours_logged × hourly_cost in period", inputs=["agent_time"], breakdowns=TEAM,
     description="Cost of the agents' logged hours.")
def service_cost(x: Inputs) -> list[Measure]:
    return total(_cost(x), "cost", TEAM)


@kpi("operations.cost_per_ticket", tracked=("agent_time", "tickets"), name="Cost per case", unit="money", better="down", grain="D",
     formula="service cost / tickets solved", inputs=["agent_time", "tickets_resolved"], breakdowns=TEAM,
     description="Service cost per resolved case; per team, its cost over the cases it resolved.")
def cost_per_ticket(x: Inputs) -> list[Measure]:
    cost = sum_by(_cost(x), "agent_team", "cost")
    solved = x["tickets_resolved"].groupby("agent_team").size().astype(float)
    return member_ratios("agent_team", cost, solved, exact_sum(_cost(x)["cost"]), float(len(x["tickets_resolved"])))


@kpi("operations.revenue_per_interaction", tracked=("orders", "tickets"), partial=("calls",), name="Revenue per service interaction", unit="money", better="up",
     grain="M", formula="revenue in period / (tickets solved + answered calls) in period",
     inputs=["orders", "tickets_resolved", "calls"], description="Revenue per resolved case or answered call.")
def revenue_per_interaction(x: Inputs) -> list[Measure]:
    o = x["orders"]
    revenue = exact_sum(o.loc[o["status"] == "completed", "total_amount"])
    interactions = float(len(x["tickets_resolved"]) + len(_answered(x["calls"])))
    return [Measure(safe_div(revenue, interactions), revenue, interactions)]
