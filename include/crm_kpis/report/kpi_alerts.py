"""KPI alerts: told when it matters, not on a schedule.

A rule (reports.yaml, `kpi_alerts:`) watches one KPI at one grain, company-wide or for one breakdown
member, and fires for a period when its value crosses a threshold, moves more than x against the
previous period or a year earlier (in % for amounts, in pp for rates, in pts for scores), or lies
outside its own history's usual range (median ± k robust deviations of the last N periods: the
MAD × 1.4826, at least 5 % of the median, so that a few quiet periods do not make every move an
outlier). Rules are data; `evaluate` reads the KPI's published history only, so the same period
always gives the same verdict, and a period without a value (n/a) never fires: there is nothing to
judge, and saying so is the report's job.

Fired alerts are sent after the quality gate passed and the history was published, once per
(rule, period), to the rule's owners on their channels (email, Slack, Teams), through the same
exactly-once delivery as the reports (orchestration/tasks.send_kpi_alerts).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from crm_kpis.config.settings import AlertRule
from crm_kpis.periods import ReportPeriod

MAD_TO_SIGMA = 1.4826
MIN_SPREAD = 0.05
MIN_HISTORY = 3


@dataclass(frozen=True)
class Fired:
    rule: AlertRule
    value: float
    reference: float | None  # the value compared with: the threshold, the earlier value or the median
    change: float | None  # in the rule's change unit (% / pp / pts), for change rules
    says: str  # one sentence: what happened, against what


def _signed(x: float, pattern: str) -> str:
    """+5 or −6.5 with a real minus sign, as the reports write changes."""
    return ("+" if x >= 0 else "−") + pattern % abs(x)


def change_in_unit(value: float, before: float, unit: str) -> float | None:
    """The move as the reports show it: pp for rates, pts for scores, % for the rest (n/a from 0)."""
    if unit == "rate":
        return (value - before) * 100
    if unit == "score":
        return value - before
    return None if before == 0 else (value / before - 1) * 100


def usual_range(history: list[float], mads: float) -> tuple[float, float, float] | None:
    """(median, low, high) of the earlier values, or None with fewer than MIN_HISTORY of them."""
    if len(history) < MIN_HISTORY:
        return None
    median = statistics.median(history)
    spread = max(statistics.median(abs(v - median) for v in history) * MAD_TO_SIGMA, abs(median) * MIN_SPREAD)
    return median, median - mads * spread, median + mads * spread


def evaluate(rule: AlertRule, values: dict[date, float | None], period: ReportPeriod, unit: str,
             fmt: Any = str) -> Fired | None:
    """Whether the rule fires for the period, from the KPI's values by period start; `fmt` writes a
    value as the reports do."""
    starts = starts_needed(rule, period)
    value = values.get(starts[0])
    if value is None:
        return None
    if rule.kind in ("above", "below"):
        assert rule.threshold is not None
        hit = value > rule.threshold if rule.kind == "above" else value < rule.threshold
        return Fired(rule, value, rule.threshold, None, f"{fmt(value)}, {rule.kind} {fmt(rule.threshold)}") \
            if hit else None
    if rule.kind.startswith("change"):
        before = values.get(starts[1])
        move = None if before is None else change_in_unit(value, before, unit)
        if move is None:
            return None
        assert rule.threshold is not None
        hit = move > rule.threshold if rule.kind == "change_above" else move < rule.threshold
        suffix = {"rate": " pp", "score": " pts"}.get(unit, " %")
        against = "the previous period" if rule.against == "previous" else "a year earlier"
        return Fired(rule, value, before, move, f"{fmt(value)}, {_signed(move, '%.1f')}{suffix} against {against} "
                                                f"({fmt(before)})") if hit else None
    earlier = [v for s in starts[1:] if (v := values.get(s)) is not None]
    usual = usual_range(earlier, rule.mads)
    if usual is None:
        return None
    median, low, high = usual
    if low <= value <= high:
        return None
    return Fired(rule, value, median, None, f"{fmt(value)}, outside its usual {fmt(low)} … {fmt(high)} "
                                            f"(median {fmt(median)} of the last {len(earlier)} periods)")


def describe(rule: AlertRule, unit: str) -> str:
    """The rule in words, as the alert states it."""
    change_unit = {"rate": " pp", "score": " pts"}.get(unit, " %")
    against = "the previous period" if rule.against == "previous" else "a year earlier"
    # each kind's words built only for its own kind: another kind's fields may be unset (None)
    words: dict[str, Callable[[], str]] = {
        "above": lambda: f"above {rule.threshold:g}",
        "below": lambda: f"below {rule.threshold:g}",
        "change_above": lambda: f"a change above {_signed(rule.threshold or 0.0, '%g')}{change_unit} against {against}",
        "change_below": lambda: f"a change below {_signed(rule.threshold or 0.0, '%g')}{change_unit} against {against}",
        "outside_usual": lambda: f"outside its usual range (median ± {rule.mads:g} robust deviations of the last "
                                 f"{rule.periods} periods)",
    }
    return words[rule.kind]()

def starts_needed(rule: AlertRule, period: ReportPeriod) -> list[date]:
    """The periods whose values the rule reads, the period's own first."""
    if rule.kind == "outside_usual":
        return [period.start_date, *(period.shift(-n).start_date for n in range(1, rule.periods + 1))]
    if rule.kind.startswith("change"):
        other = period.previous() if rule.against == "previous" else period.year_ago()
        return [period.start_date, other.start_date]
    return [period.start_date]
