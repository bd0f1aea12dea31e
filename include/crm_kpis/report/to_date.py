"""Year to date and quarter to date on the monthly report, for the KPIs whose months add up.

Only flows add up (revenue, orders, tickets solved: events of the period, summed; `flow=True` in
their declarations); a stock (MRR, open cases) or a ratio has no year to date. The sums are the
published monthly values of the report's timezone, January (or the quarter's first month) to the
period; a month without a value makes the sum n/a with the count of months missing, never a
smaller number. The comparison is the same months a year earlier.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from crm_kpis.config.settings import Variant
from crm_kpis.history.store import read_history
from crm_kpis.kpis import REGISTRY, kpis_for
from crm_kpis.kpis.base import AREAS
from crm_kpis.periods import ReportPeriod
from crm_kpis.report.formatting import format_change, format_value
from crm_kpis.report.scope import scoped_values


def _months(first: date, last: date) -> list[date]:
    out, month = [], first
    while month <= last:
        out.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return out


def _sum(values: dict[tuple[date, str], float | None], months: list[date], kpi_id: str) -> tuple[float | None, int]:
    """(the sum, months missing); the sum is None when any month has no value."""
    known = [values.get((m, kpi_id)) for m in months]
    missing = sum(v is None for v in known)
    return (None if missing else sum(v for v in known if v is not None)), missing


def to_date(engine: Any, period: ReportPeriod, currency: str, variant: Variant | None = None) -> dict[str, Any] | None:
    """The table's rows (and its column labels) for a monthly period; None for a daily one."""
    if period.grain != "monthly":
        return None
    start = period.start_date
    year = _months(date(start.year, 1, 1), start)
    quarter = _months(date(start.year, (start.month - 1) // 3 * 3 + 1, 1), start)
    last_year = [date(m.year - 1, m.month, 1) for m in year]
    rows = read_history(engine, "monthly", sorted(set(year) | set(last_year)),
                        dimensions=("", variant.dimension) if variant else ("",))
    values, broken = scoped_values(rows, variant)
    out = []
    for area in AREAS:
        for d in kpis_for(area, "monthly"):
            if not d.flow:
                continue
            ytd, missing = _sum(values, year, d.id)
            before, _ = _sum(values, last_year, d.id)
            qtd, q_missing = _sum(values, quarter, d.id)
            change_abs, change_pct = format_change(ytd, before, d.unit, currency)
            out.append({
                "name": REGISTRY[d.id].name, "area": area,
                "scope": "company-wide" if variant is not None and d.id not in broken else "",
                "ytd": format_value(ytd, d.unit, currency) if ytd is not None else f"n/a ({missing} month(s) missing)",
                "year_ago": format_value(before, d.unit, currency),
                "change": change_pct if change_pct != "n/a" else change_abs,
                "qtd": format_value(qtd, d.unit, currency) if qtd is not None else f"n/a ({q_missing} month(s) missing)",
            })
    return {"rows": out, "year_label": f"{year[0]:%b}–{start:%b %Y}" if len(year) > 1 else f"{start:%b %Y}",
            "quarter_label": f"Q{(start.month - 1) // 3 + 1} {start.year}" + (
                f" ({quarter[0]:%b}–{start:%b})" if len(quarter) > 1 else f" ({start:%b})"),
            "year_ago_label": f"{last_year[0]:%b}–{last_year[-1]:%b %Y}" if len(last_year) > 1 else f"{last_year[0]:%b %Y}"}
