"""Year to date and quarter to date on the monthly report, for the KPIs whose months add up.

Only flows add up (revenue, orders, tickets solved: events of the period, summed; `flow=True` in
their declarations); a stock (MRR, open cases) or a ratio has no year to date. The sums are the
published monthly values of the report's timezone, January (or the quarter's first month) to the
period; a month without a value makes the sum n/a, never a smaller number, and says why: once
under the table when the whole column lacks the same months (the history does not go back that
far), else in the cell with the count of months missing. The comparison is the same months a year
earlier.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from crm_kpis.config.settings import Variant
from crm_kpis.history.store import read_history
from crm_kpis.kpis import REGISTRY, kpis_for
from crm_kpis.kpis.base import AREAS
from crm_kpis.periods import ReportPeriod
from crm_kpis.report.formatting import format_change, format_value, scale_of
from crm_kpis.report.scope import scoped_values


def _months(first: date, last: date) -> list[date]:
    out, month = [], first
    while month <= last:
        out.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return out


def _sum(values: dict[tuple[date, str], float | None], months: list[date], kpi_id: str) -> tuple[float | None, tuple[date, ...]]:
    """(the sum, the months without a value); the sum is None when any month has none."""
    missing = tuple(m for m in months if values.get((m, kpi_id)) is None)
    return (None if missing else sum(values[(m, kpi_id)] for m in months)), missing  # type: ignore[misc]


def month_ranges(months: tuple[date, ...]) -> str:
    """Months as runs: "Jan–Aug 2026", "Nov 2025–Feb 2026, Apr 2026", "Mar 2026"."""
    runs: list[list[date]] = []
    for month in sorted(months):
        if runs and _months(runs[-1][-1], month)[1:] == [month]:
            runs[-1].append(month)
        else:
            runs.append([month])

    def said(run: list[date]) -> str:
        first, last = run[0], run[-1]
        if first == last:
            return f"{first:%b %Y}"
        return f"{first:%b}–{last:%b %Y}" if first.year == last.year else f"{first:%b %Y}–{last:%b %Y}"

    return ", ".join(said(run) for run in runs)


def _not_in_history(column: str, missing: list[tuple[date, ...]], of: int) -> tuple[str, set[date]]:
    """The months no KPI of the table has (the history does not go back that far, or a month was
    not computed): said once under the table; a cell names only what its KPI lacks beyond them."""
    common = set.intersection(*(set(m) for m in missing)) if missing else set()
    if not common:
        return "", set()
    months = tuple(sorted(common))
    return (f"{column}: n/a, {len(months)} of its {of} months not in the history ({month_ranges(months)}); "
            f"`make backfill` computes past months"), common


def to_date(engine: Any, period: ReportPeriod, currency: str, variant: Variant | None = None) -> dict[str, Any] | None:
    """The table's rows (and its column labels, and why a column is n/a) for a monthly period; None
    for a daily one."""
    if period.grain != "monthly":
        return None
    start = period.start_date
    year = _months(date(start.year, 1, 1), start)
    quarter = _months(date(start.year, (start.month - 1) // 3 * 3 + 1, 1), start)
    last_year = [date(m.year - 1, m.month, 1) for m in year]
    rows = read_history(engine, "monthly", sorted(set(year) | set(last_year)),
                        dimensions=("", variant.dimension) if variant else ("",))
    values, broken = scoped_values(rows, variant)
    sums = [(area, d, _sum(values, year, d.id), _sum(values, last_year, d.id), _sum(values, quarter, d.id))
            for area in AREAS for d in kpis_for(area, "monthly") if d.flow]
    labels = {"ytd": f"{year[0]:%b}–{start:%b %Y}" if len(year) > 1 else f"{start:%b %Y}",
              "quarter": f"Q{(start.month - 1) // 3 + 1} {start.year}" + (
                  f" ({quarter[0]:%b}–{start:%b})" if len(quarter) > 1 else f" ({start:%b})"),
              "year_ago": f"{last_year[0]:%b}–{last_year[-1]:%b %Y}" if len(last_year) > 1 else f"{last_year[0]:%b %Y}"}
    notes, common = [], {}
    for key, index, months in (("ytd", 2, year), ("year_ago", 3, last_year), ("qtd", 4, quarter)):
        note, common[key] = _not_in_history(labels["quarter" if key == "qtd" else key],
                                            [row[index][1] for row in sums], len(months))
        notes += [note] if note else []

    def cell(key: str, total: float | None, missing: tuple[date, ...], of: int, unit: str, scale: float | None) -> str:
        if total is not None:
            return format_value(total, unit, currency, scale)
        own = [m for m in missing if m not in common[key]]  # beyond the months the note names
        return f"n/a ({len(missing)} of {of} months missing)" if own else "n/a"

    out = []
    for area, d, (ytd, missing), (before, before_missing), (qtd, q_missing) in sums:
        scale = scale_of(ytd, before, qtd)  # one precision for the row
        change_abs, change_pct = format_change(ytd, before, d.unit, currency, scale)
        out.append({
            "name": REGISTRY[d.id].name, "area": area,
            "scope": "company-wide" if variant is not None and d.id not in broken else "",
            "ytd": cell("ytd", ytd, missing, len(year), d.unit, scale),
            "year_ago": cell("year_ago", before, before_missing, len(last_year), d.unit, scale),
            "change": change_pct if change_pct != "n/a" else change_abs,
            "qtd": cell("qtd", qtd, q_missing, len(quarter), d.unit, scale),
        })
    return {"rows": out, "year_label": labels["ytd"], "quarter_label": labels["quarter"],
            "year_ago_label": labels["year_ago"], "notes": notes}
