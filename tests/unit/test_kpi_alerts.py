"""KPI alert rules, by hand: thresholds, changes in % / pp / pts against the previous period and a
year earlier, the robust usual range, and the cases that must not fire (n/a, no reference, too
little history)."""

from __future__ import annotations

from datetime import date

import pytest

from crm_kpis.config.settings import AlertRule, settings_from
from crm_kpis.periods import ReportPeriod
from crm_kpis.report.kpi_alerts import describe, evaluate

OCT = ReportPeriod.parse("monthly", "2026-10")
SEP, OCT_2025 = date(2026, 9, 1), date(2025, 10, 1)


def rule(kind: str, threshold: float | None = None, **kw) -> AlertRule:
    return AlertRule("r", "sales.revenue", "monthly", kind, threshold, **kw)


def test_thresholds():
    assert evaluate(rule("above", 100.0), {OCT.start_date: 101.0}, OCT, "money").says == "101.0, above 100.0"
    assert evaluate(rule("above", 100.0), {OCT.start_date: 100.0}, OCT, "money") is None  # not above
    assert evaluate(rule("below", 0.5), {OCT.start_date: 0.4}, OCT, "rate").value == 0.4
    assert evaluate(rule("below", 0.5), {OCT.start_date: None}, OCT, "rate") is None  # n/a never fires


def test_changes_are_in_the_reports_units():
    # money: 1000 → 940 is (940 / 1000 − 1) × 100 = −6.0 %: below −5 % fires
    hit = evaluate(rule("change_below", -5.0), {OCT.start_date: 940.0, SEP: 1000.0}, OCT, "money")
    assert hit.change == pytest.approx(-6.0) and hit.says == "940.0, −6.0 % against the previous period (1000.0)"
    assert evaluate(rule("change_below", -5.0), {OCT.start_date: 960.0, SEP: 1000.0}, OCT, "money") is None  # −4 %
    # a rate: 3.1 % → 3.6 % is (0.036 − 0.031) × 100 = +0.5 pp: above +0.4 pp fires
    hit = evaluate(rule("change_above", 0.4), {OCT.start_date: 0.036, SEP: 0.031}, OCT, "rate")
    assert hit.change == pytest.approx(0.5) and "+0.5 pp" in hit.says
    # a score moves in points: 40 → 47 is +7 pts
    assert evaluate(rule("change_above", 5.0), {OCT.start_date: 47.0, SEP: 40.0}, OCT, "score").change == 7.0
    # against a year earlier: 1200 → 900 is −25 %; the previous month is not read
    hit = evaluate(rule("change_below", -20.0, against="year_ago"), {OCT.start_date: 900.0, OCT_2025: 1200.0},
                   OCT, "money")
    assert hit.change == pytest.approx(-25.0) and "a year earlier" in hit.says
    # no reference, or a % change from 0: nothing to judge
    assert evaluate(rule("change_below", -5.0), {OCT.start_date: 940.0}, OCT, "money") is None
    assert evaluate(rule("change_above", 5.0), {OCT.start_date: 10.0, SEP: 0.0}, OCT, "money") is None


def test_outside_the_usual_range():
    """Earlier values 10, 12, 11, 13, 12: median 12; |deviations| 2, 0, 1, 1, 0 → their median 1,
    × 1.4826 = 1.4826 (more than 5 % of 12 = 0.6); 3 deviations: 12 ± 4.4478 = [7.5522, 16.4478]."""
    earlier = dict(zip([OCT.shift(-n).start_date for n in range(1, 6)], [10.0, 12.0, 11.0, 13.0, 12.0], strict=True))
    usual = rule("outside_usual", periods=5, mads=3.0)
    assert evaluate(usual, {**earlier, OCT.start_date: 16.4}, OCT, "count") is None
    hit = evaluate(usual, {**earlier, OCT.start_date: 17.0}, OCT, "count")
    assert hit.reference == 12.0 and "outside its usual 7.5522" in hit.says and "median 12.0 of the last 5" in hit.says
    assert evaluate(usual, {**earlier, OCT.start_date: 7.5}, OCT, "count") is not None
    # a flat history has no spread: 5 % of the median stands in for it (5 ± 3 × 0.25)
    flat = dict(zip([OCT.shift(-n).start_date for n in range(1, 5)], [5.0] * 4, strict=True))
    assert evaluate(rule("outside_usual", periods=4), {**flat, OCT.start_date: 5.7}, OCT, "count") is None
    assert evaluate(rule("outside_usual", periods=4), {**flat, OCT.start_date: 5.8}, OCT, "count") is not None
    # fewer than three earlier values: no usual range, no alert
    two = dict(list(earlier.items())[:2])
    assert evaluate(usual, {**two, OCT.start_date: 1000.0}, OCT, "count") is None


def test_rules_in_the_configuration_are_checked():
    (r,) = rules([{"kpi": "sales.revenue", "grain": "monthly", "change_below": -5, "to": "cfo@example.com",
                              "dimension": "segment", "member": "smb"}])
    assert (r.rule_id, r.kind, r.threshold, r.to) == ("sales-revenue-smb-change-below", "change_below", -5.0,
                                                       ("cfo@example.com",))
    assert describe(r, "money") == "a change below −5 % against the previous period"
    # every kind is described from its own fields only (an outside_usual rule has no threshold)
    (usual,) = rules([{"kpi": "operations.first_response_hours", "grain": "daily",
                       "outside_usual": {"periods": 30, "mads": 4}, "to": ["ops@example.com"]}])
    assert usual.threshold is None
    assert describe(usual, "hours") == "outside its usual range (median ± 4 robust deviations of the last 30 periods)"
    (above,) = rules([{"kpi": "sales.churn_rate", "grain": "monthly", "above": 0.035, "to": ["c@example.com"]}])
    assert describe(above, "rate") == "above 0.035"
    for bad, message in (
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": 1, "below": 0, "to": ["a@example.com"]}], "one condition"),
        ([{"kpi": "sales.revenue", "grain": "weekly", "above": 1, "to": ["a@example.com"]}],
         r"kpi_alerts\[0\]\.grain: Input should be 'daily' or 'monthly' \(it says 'weekly'\)"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": "high", "to": ["a@example.com"]}],
         r"kpi_alerts\[0\]\.above: Input should be a valid number \(it says 'high'\)"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": True, "to": ["a@example.com"]}], "valid number"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": None, "to": ["a@example.com"]}], "above needs a number"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": 1}], "needs owners"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": 1, "to": ["a@x.com"], "against": "last_week"}], "against"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "outside_usual": {"periods": 2}, "to": ["a@x.com"]}],
         r"kpi_alerts\[0\]\.outside_usual\.periods: Input should be greater than or equal to 3"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": 1, "to": ["a@x.com"], "treshold": 2}],
         r"kpi_alerts\[0\]\.treshold: not a setting this file knows"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": 1, "to": ["a@x.com"], "dimension": "segment"}],
         "needs both"),
        ([{"kpi": "sales.revenue", "grain": "monthly", "above": 1, "to": ["a@x.com"]}] * 2, "used twice"),
    ):
        with pytest.raises(ValueError, match=message):
            rules(bad)
    (usual,) = rules([{"kpi": "sales.revenue", "grain": "monthly", "outside_usual": None, "to": "a@x.com"}])
    assert (usual.kind, usual.periods, usual.mads, usual.threshold) == ("outside_usual", 12, 3.0, None)


def rules(raw: list) -> tuple[AlertRule, ...]:
    return settings_from({"kpi_alerts": raw}).kpi_alerts
