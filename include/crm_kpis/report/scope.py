"""Which values a report (or one variant's edition of it) shows, from history rows.

One rule, read by the KPI lines, the year-to-date table and anything else that reads values for
an edition: the company-wide row of each KPI, except that a variant shows its member's row for
every KPI the history breaks down by the variant's dimension (the others stay the company's, and
the report marks them company-wide).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd

from crm_kpis.config.settings import Variant


def value_of(x: Any) -> float | None:
    """A stored value as a number, or None where there is none (NULL, NaN)."""
    return None if x is None or pd.isna(x) else float(x)


def scoped_values(rows: pd.DataFrame, variant: Variant | None, column: str = "value") -> tuple[
        dict[tuple[date, str], float | None], frozenset[str]]:
    """Values (or another column: "numerator", "denominator") by (period start, KPI) for the
    edition, and (for a variant) the KPIs shown as its member's: those with a row of the variant's
    dimension in `rows`."""
    company = rows[rows["dimension"] == ""]
    values = {(r.period_start, r.kpi_id): value_of(getattr(r, column)) for r in company.itertuples(index=False)}
    if variant is None:
        return values, frozenset()
    part = rows[rows["dimension"] == variant.dimension]
    broken = frozenset(part["kpi_id"])
    values = {key: v for key, v in values.items() if key[1] not in broken}
    values.update({(r.period_start, r.kpi_id): value_of(getattr(r, column)) for r in part.itertuples(index=False)
                   if r.member == variant.member})
    return values, broken
