"""'What changed': ranked by business impact (money, then against target, then the rest), each
mover with its declared driver; the email subject names the first two. Expectations by hand."""

from __future__ import annotations

from crm_kpis.kpis import REGISTRY
from crm_kpis.orchestration.tasks import _movers
from crm_kpis.report.context import KpiLine
from crm_kpis.report.formatting import change_tone, format_change, format_value
from crm_kpis.report.what_changed import impact, what_changed


def line(kpi_id: str, now: float | None, before: float | None) -> KpiLine:
    d = REGISTRY[kpi_id]
    change_abs, change_pct = format_change(now, before, d.unit, "USD")
    return KpiLine(d.id, d.name, d.unit, d.better, now, before, None, format_value(now, d.unit, "USD"),
                   format_value(before, d.unit, "USD"), "n/a", change_abs, change_pct,
                   change_tone(now, before, d.better, d.unit), "n/a", "neutral", "n/a")


# revenue 1,000 -> 935 (-6.5 %) from 100 -> 96 orders (-4.0 %) at an average of 10.00 -> 935/96 = 9.7396 (-2.6 %)
LINES = {k.id: k for k in [
    line("sales.revenue", 935.0, 1000.0),
    line("sales.orders", 96.0, 100.0),
    line("sales.aov", 935.0 / 96, 10.0),
    line("sales.win_rate", 0.439, 0.40),       # +3.9 pp, +9.75 % relative: ranked by the target instead
    line("marketing.nps", 48.0, 41.0),         # +7 pts, +17 %: no target, after those with one
    line("operations.csat", 0.8, 0.8),         # did not move
    line("sales.churn_rate", None, 0.03),      # n/a now: cannot be compared
]}
HEADLINE = [LINES[k] for k in ("marketing.nps", "sales.win_rate", "operations.csat", "sales.churn_rate",
                               "sales.revenue")]
TARGETS = {"sales.win_rate": 0.45, "operations.csat": 0.8}
SUMS = frozenset({"sales.revenue", "sales.orders"})  # stored without a denominator
SEGMENT_NOW = {"sales.revenue": {("segment", "enterprise"): 540.0, ("segment", "smb"): 395.0,
                                 ("segment", "unknown"): 0.0}}
SEGMENT_BEFORE = {"sales.revenue": {("segment", "enterprise"): 600.0, ("segment", "smb"): 330.0,
                                    ("segment", "unknown"): 70.0}}


def test_money_first_then_against_target_then_the_rest():
    assert impact(LINES["sales.revenue"], None, is_sum=True) == (0, 65.0)  # the money moved
    assert impact(LINES["sales.aov"], None) == (2, abs((935 / 96) / 10 - 1))  # a money ratio is not a total
    tier, moved = impact(LINES["sales.win_rate"], 0.45)
    assert tier == 1 and abs(moved - 0.039 / 0.45) < 1e-12  # 8.7 % of the target
    tier, moved = impact(LINES["marketing.nps"], None)
    assert tier == 2 and abs(moved - 7 / 41) < 1e-12
    assert impact(LINES["operations.csat"], 0.8) is None and impact(LINES["sales.churn_rate"], 0.03) is None
    movers = what_changed(HEADLINE, LINES, TARGETS, SEGMENT_NOW, SEGMENT_BEFORE, "USD", SUMS)
    assert [m.kpi_id for m in movers] == ["sales.revenue", "sales.win_rate", "marketing.nps"]


def test_a_cost_per_customer_is_judged_against_its_target_not_ranked_as_money():
    # CAC $471.55 -> $439.20 (-6.9 %, target $450: 7.2 % of it) against revenue -6.5 % ($500k)
    cac, revenue = line("marketing.cac", 439.20, 471.55), line("sales.revenue", 7_003_027.0, 7_503_468.0)
    lines = {"marketing.cac": cac, "sales.revenue": revenue}
    movers = what_changed([cac, revenue], lines, {"marketing.cac": 450.0}, {}, {}, "USD", frozenset({"sales.revenue"}))
    assert [m.kpi_id for m in movers] == ["sales.revenue", "marketing.cac"]


def test_revenue_is_split_into_orders_and_average_order_value_and_its_segment():
    revenue = what_changed(HEADLINE, LINES, TARGETS, SEGMENT_NOW, SEGMENT_BEFORE, "USD", SUMS)[0]
    # enterprise moved -60 (600 -> 540), smb +65 (330 -> 395) is bigger; 'unknown' (-70) is not a driver
    assert revenue.drivers == ("orders −4.0 %, average order value −2.6 %", "most in segment smb (+$65.00)")
    assert revenue.sentence == ("Revenue −6.5 % ($1,000 → $935.00): orders −4.0 %, average order value −2.6 %; "
                                "most in segment smb (+$65.00)")


def test_the_subject_names_the_revenue_drop_before_the_win_rate():
    movers = what_changed(HEADLINE, LINES, TARGETS, {}, {}, "USD", SUMS)
    assert _movers(movers) == "Revenue −6.5 %, Win rate +3.9 pp"
    assert _movers([]) == ""


def test_only_sums_name_a_member():
    """A ratio's biggest member move may be a member with three responses: no driver is named."""
    import pandas as pd

    from crm_kpis.report.context import _members

    rows = pd.DataFrame([
        {"kpi_id": "sales.revenue", "dimension": "segment", "member": "smb", "value": 395.0, "denominator": None},
        {"kpi_id": "sales.revenue", "dimension": "", "member": "", "value": 935.0, "denominator": None},
        {"kpi_id": "marketing.nps", "dimension": "channel", "member": "email", "value": -100.0, "denominator": 3.0},
    ])
    assert _members(rows) == {"sales.revenue": {("segment", "smb"): 395.0}}


def test_the_tables_percent_column_is_empty_for_rates_scores_and_ratios():
    # a rate from 40 % to 43.9 % is +3.9 pp, not "+9.8 %"; a revenue's % stays
    assert LINES["sales.win_rate"].relative_change == "" and LINES["marketing.nps"].relative_change == ""
    assert line("marketing.roi", 1.19, -0.48).relative_change == ""
    assert LINES["sales.revenue"].relative_change == "−6.5 %"


def test_a_small_sample_never_leads_and_says_its_size():
    from dataclasses import replace

    # the daily report: satisfaction 3 of 4 answers (75 %) against 5 of 5 (100 %), −25 pp
    csat = replace(line("operations.csat", 0.75, 1.0), sample=4.0, previous_sample=5.0, sample_text="3 of 4")
    revenue = line("sales.revenue", 935.0, 1000.0)
    lines = {"operations.csat": csat, "sales.revenue": revenue}
    assert impact(csat, 0.8, min_sample=20) is None
    tier, moved = impact(csat, 0.8, min_sample=4)  # 4 and 5 answers are enough when the floor is 4
    assert tier == 1 and abs(moved - 0.25 / 0.8) < 1e-12
    movers = what_changed([csat, revenue], lines, {"operations.csat": 0.8}, {}, {}, "USD",
                          frozenset({"sales.revenue"}), min_sample=20)
    assert [m.kpi_id for m in movers] == ["sales.revenue"]
    # 25 answers now against 19 before: the period before is the small one, still not a lead
    assert impact(replace(csat, sample=25.0, previous_sample=19.0), 0.8, min_sample=20) is None
    # a total has no denominator: never a small sample
    assert impact(revenue, None, is_sum=True, min_sample=20) == (0, 65.0)


def test_a_daily_move_must_also_hold_against_the_same_weekday_a_week_earlier():
    from dataclasses import replace

    # Monday revenue 1,876 against Sunday 1,000 (+87.6 %) but against last Monday 1,820 (+3.1 %)
    monday = replace(line("sales.revenue", 1876.0, 1000.0), daily=True, week_ago=1820.0, week_change="+3.1 %")
    assert impact(monday, None, is_sum=True) == (0, 56.0)  # ranked by the smaller move: 1,876 − 1,820
    # up on Sunday but down on last Monday: the week's rhythm, not a move
    assert impact(replace(monday, week_ago=1900.0), None, is_sum=True) is None
    # no same weekday in the history yet: not a mover either (a day against a Sunday says nothing)
    assert impact(replace(monday, week_ago=None), None, is_sum=True) is None
    (mover,) = what_changed([monday], {"sales.revenue": monday}, {}, {}, {}, "USD", frozenset({"sales.revenue"}))
    assert mover.drivers[0] == "+3.1 % on the same weekday a week earlier"
    assert mover.sentence == "Revenue +87.6 % ($1,000 → $1,876): +3.1 % on the same weekday a week earlier"
