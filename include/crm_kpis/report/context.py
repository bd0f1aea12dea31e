"""The report's content, read from the history: values, previous period, year ago, definitions.

Why from the history and not from the computation: a report can then be re-rendered without
touching the sources, and a backfilled earlier period improves every later report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from crm_kpis.config import ReportConfig, Settings
from crm_kpis.history import read_history, read_run, rejected_by_extract
from crm_kpis.kpis import REGISTRY, kpis_for
from crm_kpis.kpis.base import AREAS
from crm_kpis.periods import ReportPeriod
from crm_kpis.report.formatting import change_tone, format_change, format_value

AREA_TITLES = {"marketing": "Marketing", "sales": "Sales", "operations": "Operations"}
DIMENSION_TITLES = {
    "channel": "Channel", "segment": "Customer segment", "rep_team": "Sales team",
    "ticket_channel": "Ticket channel", "agent_team": "Support team",
}


class ReportDataMissing(RuntimeError):
    """The period has no history yet: compute it before rendering its report."""


@dataclass(frozen=True)
class KpiLine:
    id: str
    name: str
    unit: str
    better: str | None
    value: float | None
    previous: float | None
    year_ago: float | None
    value_text: str
    previous_text: str
    year_ago_text: str
    change_abs: str
    change_pct: str
    tone: str
    yoy_pct: str
    yoy_tone: str
    yoy_abs: str

    @property
    def headline_change(self) -> str:
        """Rates move in percentage points and scores in points; the rest in per cent."""
        return self.change_abs if self.unit in ("rate", "score") or self.change_pct == "n/a" else self.change_pct

    @property
    def headline_yoy(self) -> str:
        return self.yoy_abs if self.unit in ("rate", "score") or self.yoy_pct == "n/a" else self.yoy_pct


def _lookup(frame: pd.DataFrame) -> dict[tuple[Any, str], float | None]:
    out: dict[tuple[Any, str], float | None] = {}
    for row in frame.itertuples(index=False):
        value = row.value
        out[(row.period_start, row.kpi_id)] = None if value is None or pd.isna(value) else float(value)
    return out


def _line(kpi_id: str, values: dict, period: ReportPeriod, currency: str) -> KpiLine:
    d = REGISTRY[kpi_id]
    now = values.get((period.start_date, kpi_id))
    prev = values.get((period.previous().start_date, kpi_id))
    ago = values.get((period.year_ago().start_date, kpi_id))
    change_abs, change_pct = format_change(now, prev, d.unit, currency)
    yoy_abs, yoy_pct = format_change(now, ago, d.unit, currency)
    return KpiLine(
        d.id, d.name, d.unit, d.better, now, prev, ago,
        format_value(now, d.unit, currency), format_value(prev, d.unit, currency),
        format_value(ago, d.unit, currency), change_abs, change_pct, change_tone(now, prev, d.better, d.unit),
        yoy_pct, change_tone(now, ago, d.better, d.unit), yoy_abs,
    )


def _breakdowns(rows: pd.DataFrame, area: str, grain: str, currency: str) -> list[dict[str, Any]]:
    """Per dimension, a compact table: members as rows, the area's broken-down KPIs as columns."""
    tables = []
    area_rows = rows[rows["kpi_id"].str.startswith(area + ".") & ~rows["dimension"].isin(["", "statistic"])]
    for dimension in sorted(area_rows["dimension"].unique()):
        part = area_rows[area_rows["dimension"] == dimension]
        kpi_ids = [k.id for k in kpis_for(area, grain) if k.id in set(part["kpi_id"])][:6]
        members = sorted(part["member"].unique())
        table_rows = []
        for member in members:
            cells = []
            for kpi_id in kpi_ids:
                hit = part[(part["kpi_id"] == kpi_id) & (part["member"] == member)]["value"]
                value = None if hit.empty or pd.isna(hit.iloc[0]) else float(hit.iloc[0])
                cells.append(format_value(value, REGISTRY[kpi_id].unit, currency))
            table_rows.append({"member": member.replace("_", " "), "cells": cells})
        tables.append({
            "dimension": DIMENSION_TITLES.get(dimension, dimension),
            "columns": [REGISTRY[k].name for k in kpi_ids],
            "rows": table_rows,
        })
    return tables


def build_context(engine: Engine, period: ReportPeriod, settings: Settings, report: ReportConfig,
                  rendered_at: datetime) -> dict[str, Any]:
    run = read_run(engine, period)
    if run is None:
        raise ReportDataMissing(f"no KPI history for {period}: run the computation for it first")
    starts = [period.start_date, period.previous().start_date, period.year_ago().start_date]
    history = read_history(engine, period.grain, starts)
    company = history[history["dimension"] == ""]
    values = _lookup(company)
    current_rows = history[history["period_start"] == period.start_date]
    areas = []
    for area in AREAS:
        lines = [_line(k.id, values, period, settings.currency) for k in kpis_for(area, period.grain)]
        areas.append({
            "id": area, "title": AREA_TITLES[area], "kpis": lines,
            "breakdowns": _breakdowns(current_rows, area, period.grain, settings.currency),
        })
    headline = [_line(k, values, period, settings.currency) for k in report.headline
                if k in REGISTRY and REGISTRY[k].applies_to(period.grain)]
    rejected = rejected_by_extract(run)
    return {
        "report": report,
        "company": settings.company,
        "currency": settings.currency,
        "period": period,
        "previous_period": period.previous(),
        "year_ago_period": period.year_ago(),
        "headline": headline,
        "areas": areas,
        "run": run,
        "rejected": rejected,
        "rejected_total": sum(n for rules in rejected.values() for n in rules.values()),
        "rendered_at": rendered_at,
        "definitions": [REGISTRY[k.id] for area in AREAS for k in kpis_for(area, period.grain)],
    }
