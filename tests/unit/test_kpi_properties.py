"""Property tests (hypothesis): rates stay fractions, order of rows never matters, members add up."""

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_kpis.compute import prepare_frames
from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import Inputs
from tests.unit.kpi_fixture import OCTOBER

START = pd.Timestamp("2026-10-01")
seconds = st.integers(min_value=-3 * 86400, max_value=34 * 86400)  # around and across October's bounds

orders = st.lists(st.tuples(
    st.sampled_from(["completed", "refunded", "cancelled"]),
    st.decimals(min_value=0, max_value=100_000, places=2).map(float),
    st.sampled_from(["smb", "mid_market", "enterprise", None]),
    st.sampled_from(["A", "B", None]),
    seconds,
), max_size=40)

tickets = st.lists(st.tuples(
    st.integers(0, 20_000), st.integers(0, 200_000), st.integers(0, 3), st.integers(0, 3),
    st.sampled_from(["email", "chat", None]), st.sampled_from(["T1", "T2", None]),
), max_size=40)


def order_frame(rows):
    return pd.DataFrame(
        [(i, status, amount, seg, team, START + pd.Timedelta(seconds=s)) for i, (status, amount, seg, team, s)
         in enumerate(rows)],
        columns=["order_id", "status", "total_amount", "segment", "rep_team", "ordered_at"],
    ).astype({"ordered_at": "datetime64[ns]", "total_amount": float})


def ticket_frame(rows):
    created = START + pd.Timedelta(days=2)
    return pd.DataFrame(
        [(i, created, created + pd.Timedelta(seconds=fr), created + pd.Timedelta(seconds=fr + res), msgs, reopen,
          ch, team, "normal", 240, 1440, "question")
         for i, (fr, res, msgs, reopen, ch, team) in enumerate(rows)],
        columns=["ticket_id", "created_at", "first_response_at", "resolved_at", "public_agent_messages", "reopen_count",
                 "ticket_channel", "agent_team", "priority", "sla_first_response_minutes", "sla_resolution_minutes",
                 "category"],
    ).astype({"created_at": "datetime64[ns]", "first_response_at": "datetime64[ns]",
              "resolved_at": "datetime64[ns]"})  # as the extracts type them, also when empty


def values(kpi_id, frames):
    return {(v.dimension, v.member): v.value for v in REGISTRY[kpi_id].evaluate(Inputs(OCTOBER, prepare_frames(frames)))}


@settings(max_examples=60, deadline=None)
@given(orders)
def test_order_kpis(rows):
    f = order_frame(rows)
    period_rows = f[(f["ordered_at"] >= START) & (f["ordered_at"] < pd.Timestamp("2026-11-01"))]
    frames = {"orders": period_rows}
    revenue = values("sales.revenue", frames)
    assert all(v >= 0 for v in revenue.values())
    for dimension in ("segment", "rep_team"):
        members = sum(v for (d, _), v in revenue.items() if d == dimension)
        assert abs(members - revenue[("", "")]) <= 1e-6 * max(1.0, revenue[("", "")])
    shuffled = {"orders": period_rows.sample(frac=1.0, random_state=1)}
    assert values("sales.revenue", shuffled) == revenue
    aov = values("sales.aov", frames)[("", "")]
    completed = (period_rows["status"] == "completed").sum()
    assert (aov is None) == (completed == 0)


@settings(max_examples=60, deadline=None)
@given(tickets)
def test_ticket_rates_are_fractions_and_order_free(rows):
    frames = {"tickets_resolved": ticket_frame(rows)}
    shuffled = {"tickets_resolved": frames["tickets_resolved"].sample(frac=1.0, random_state=3)}
    for kpi_id in ("operations.fcr_rate", "operations.reopen_rate", "operations.sla_compliance_rate",
                   "operations.solved_same_day_rate"):
        v = values(kpi_id, frames)
        assert all(x is None or 0.0 <= x <= 1.0 for x in v.values()), kpi_id
        assert v == values(kpi_id, shuffled), kpi_id
        assert (v[("", "")] is None) == (len(rows) == 0)
