"""What changed: the headline KPIs that moved most, ranked by business impact, each with its driver.

Why a ranking of its own: sorting by relative change put a +3.9 pp win rate (+9.7 % of 40 %) ahead
of a −6.5 % revenue drop in the email's subject. An executive reads money first, then the rates
and scores he has targets for, measured by how much of the target moved, then the rest:

    tier 0  money totals (sums: revenue, MRR)   by the money moved, |now − previous|
    tier 1  KPIs with a target                  by |now − previous| / |target|
    tier 2  the others                          by |now / previous − 1|

A money *ratio* (a cost per customer, an average order) is not a total: $32 less per acquired
customer is not ranked above a $500,000 revenue drop; with a target it is judged against it.

A mover's driver is declared, not guessed: a KPI that is a product of others (`DECOMPOSITIONS`)
is split into their changes, and for a sum the breakdown member whose value moved most is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_kpis.kpis import REGISTRY
from crm_kpis.report.formatting import format_change

#: KPI = product of these KPIs (revenue = orders × average order value), for one-line drivers.
DECOMPOSITIONS: dict[str, tuple[str, ...]] = {"sales.revenue": ("sales.orders", "sales.aov")}


@dataclass(frozen=True)
class Mover:
    kpi_id: str
    name: str
    change: str  # as the headline shows it: % for money and counts, pp for rates, pts for scores
    value_text: str
    previous_text: str
    tone: str
    drivers: tuple[str, ...]

    @property
    def sentence(self) -> str:
        head = f"{self.name} {self.change} ({self.previous_text} → {self.value_text})"
        return head + (": " + "; ".join(self.drivers) if self.drivers else "")


def _move(now: float, before: float, unit: str, target: float | None, is_sum: bool) -> tuple[int, float] | None:
    if unit == "money" and is_sum:
        return 0, abs(now - before)
    if target:
        return 1, abs(now - before) / abs(target)
    return (2, abs(now / before - 1)) if before else None


def small_sample(line: Any, min_sample: float) -> bool:
    """A value computed on fewer answers, tickets or deals than `min_sample`, now or the period
    before (one unhappy answer of four is −25 pp): it never leads What changed or the subject."""
    return any(n is not None and n < min_sample for n in (line.sample, line.previous_sample))


def impact(line: Any, target: float | None, is_sum: bool = False, min_sample: float = 0) -> tuple[int, float] | None:
    """(tier, magnitude) of a headline line's move; None when it did not move, cannot be compared,
    rests on a small sample, or (a daily KPI) did not also move the same way against the same
    weekday a week earlier: a Monday against a Sunday is the week's rhythm, not news. A daily
    move's magnitude is the smaller of the two."""
    if line.value is None or line.previous is None or line.value == line.previous or small_sample(line, min_sample):
        return None
    rank = _move(line.value, line.previous, line.unit, target, is_sum)
    week_ago = getattr(line, "week_ago", None)
    if rank is None or not getattr(line, "daily", False):
        return rank
    if week_ago is None or (line.value - week_ago) * (line.value - line.previous) <= 0:
        return None
    weekly = _move(line.value, week_ago, line.unit, target, is_sum)
    return None if weekly is None else (rank[0], min(rank[1], weekly[1]))


def member_driver(kpi_id: str, rows_now: dict[tuple[str, str], float | None],
                  rows_before: dict[tuple[str, str], float | None], currency: str) -> str | None:
    """The breakdown member whose value moved most (members named 'unknown' are not a driver)."""
    unit = REGISTRY[kpi_id].unit
    moves = []  # the members of a sum: their moves add up to the company's
    for (dimension, member), now in rows_now.items():
        before = rows_before.get((dimension, member))
        if member == "unknown" or now is None or before is None or now == before:
            continue
        moves.append((abs(now - before), dimension, member, now, before))
    if not moves:
        return None
    _, dimension, member, now, before = max(moves, key=lambda m: (m[0], m[1], m[2]))
    change_abs, _ = format_change(now, before, unit, currency)
    return f"most in {dimension.replace('_', ' ')} {member} ({change_abs})"


def what_changed(headline: list[Any], lines_by_id: dict[str, Any], targets: dict[str, float | None],
                 breakdowns_now: dict[str, dict[tuple[str, str], float | None]],
                 breakdowns_before: dict[str, dict[tuple[str, str], float | None]], currency: str,
                 sums: frozenset[str] = frozenset(), limit: int = 5, min_sample: float = 0) -> list[Mover]:
    """The headline KPIs that moved, most important first (at most `limit`); `sums` are the KPIs
    stored without a denominator (totals); a KPI on fewer than `min_sample` answers, tickets or
    deals is not a mover (see `impact`)."""
    ranked = []
    for line in headline:
        rank = impact(line, targets.get(line.id), line.id in sums, min_sample)
        if rank is not None:
            ranked.append((rank[0], -rank[1], line.id, line))
    movers = []
    for _, _, _, line in sorted(ranked)[:limit]:
        drivers = []
        parts = [lines_by_id.get(k) for k in DECOMPOSITIONS.get(line.id, ())]
        if parts and all(p is not None and p.value is not None and p.previous for p in parts):
            drivers.append(", ".join(f"{p.name.lower()} {p.change_pct}" for p in parts))
        member = member_driver(line.id, breakdowns_now.get(line.id, {}), breakdowns_before.get(line.id, {}), currency)
        if member:
            drivers.append(member)
        if getattr(line, "daily", False):  # said with the same weekday's: the reader sees both
            drivers.insert(0, f"{line.week_change} on the same weekday a week earlier")
        movers.append(Mover(line.id, line.name, line.headline_change, line.value_text, line.previous_text,
                            line.tone, tuple(drivers)))
    return movers
