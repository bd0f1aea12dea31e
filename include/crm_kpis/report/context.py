"""The report's content, read from the history: values, comparisons, trends, targets, definitions.

Why from the history and not from the computation: a report can then be re-rendered without
touching the sources, and a backfilled earlier period improves every later report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pandas as pd
from markupsafe import Markup
from sqlalchemy import Engine

from crm_kpis.compute import UNKNOWN_MEMBER
from crm_kpis.config.settings import (
    DIMENSION_DECLARATIONS,
    DIMENSION_TITLES,
    UNKNOWN_MEMBER_LABELS,
    ReportConfig,
    Settings,
    Variant,
)
from crm_kpis.history.store import read_history, read_run, rejected_by_extract
from crm_kpis.kpis import REGISTRY, kpis_for
from crm_kpis.kpis.base import AREAS, NOT_TRACKED, UNDEFINED
from crm_kpis.periods import ReportPeriod
from crm_kpis.quality.gate import headline_of
from crm_kpis.report.charts import Series, line_chart, sparkline
from crm_kpis.report.formatting import change_tone, format_change, format_value, scale_of
from crm_kpis.report.messages import CHECK_SAYS
from crm_kpis.report.models_appendix import models_appendix
from crm_kpis.report.scope import scoped_values, value_of
from crm_kpis.report.status import LABELS, status
from crm_kpis.report.to_date import to_date
from crm_kpis.report.what_changed import what_changed

AREA_TITLES = {"marketing": "Marketing", "sales": "Sales", "operations": "Operations"}
#: Periods in a sparkline or trend chart, current one included.
TREND_PERIODS = {"monthly": 12, "daily": 30}
BREAKDOWN_COLUMNS = 6


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
    target_text: str = ""
    status: str | None = None
    series: tuple[float | None, ...] = field(default=(), repr=False)
    spark: Markup = field(default=Markup(""), repr=False)
    #: why the value is n/a ("not tracked: no tickets.first_response_at") or its coverage
    note: str = ""
    #: in a variant: "company-wide" (the KPI has no breakdown by the variant's member) or its rank
    scope: str = ""
    #: the target the status is judged against (the member's in a variant), for the charts' line
    target: float | None = None
    #: a daily KPI's value on the same weekday a week earlier (a Monday is compared with a Monday
    #: too), and the change against it as the headline says changes
    daily: bool = False
    week_ago: float | None = None
    week_change: str = ""
    #: what the value was computed on (its denominator: answers, tickets, closed deals), now and the
    #: period before; None for a total, which has none
    sample: float | None = None
    previous_sample: float | None = None
    #: the sample as said beside a value computed on few of them: "3 of 4" (a rate), "n = 4"
    sample_text: str = ""

    @property
    def status_label(self) -> str:
        return LABELS.get(self.status or "", "")

    @property
    def headline_change(self) -> str:
        """Rates move in percentage points and scores in points; the rest in per cent."""
        return _as_headline(self.change_abs, self.change_pct, self.unit)

    @property
    def relative_change(self) -> str:
        """The table's % column: empty for rates, scores and ratios, whose relative change misleads
        (a growth rate from −0.5 % to +1.2 % "rose 345 %"); their change is in pp or pts."""
        return "" if self.unit in ("rate", "score", "ratio") else self.change_pct

    @property
    def headline_yoy(self) -> str:
        return self.yoy_abs if self.unit in ("rate", "score") or self.yoy_pct == "n/a" else self.yoy_pct


class _History:
    """Values by (period start, KPI) over the trend window and the year-ago period: company-wide,
    or for a variant its member's, where the KPI is broken down by the variant's dimension.

    A variant's KPI without that breakdown keeps the company's figure and is marked company-wide;
    one with it (`broken`) gets the member's value, target and rank among its peers.
    """

    def __init__(self, engine: Engine, period: ReportPeriod, variant: Variant | None = None) -> None:
        self.period = period
        self.variant = variant
        self.window = [period.shift(-n) for n in range(TREND_PERIODS[period.grain] - 1, -1, -1)]
        starts = sorted({p.start_date for p in self.window} | {period.year_ago().start_date})
        rows = read_history(engine, period.grain, starts, dimensions=("", variant.dimension) if variant else ("",))
        # in a variant, `broken`: the KPIs with its dimension's breakdown, shown as its member's
        self.values, self.broken = scoped_values(rows, variant)
        self.stored = set(rows["period_start"])  # the periods the history has at all
        self.numerators, _ = scoped_values(rows, variant, "numerator")
        self.denominators, _ = scoped_values(rows, variant, "denominator")
        company = rows[rows["dimension"] == ""]
        self.notes = {r.kpi_id: r.note for r in company.itertuples(index=False)
                      if r.period_start == period.start_date and isinstance(r.note, str) and r.note
                      and r.kpi_id not in self.broken}
        self.ranks: dict[str, str] = {}
        if variant is None:
            return
        part = rows[rows["dimension"] == variant.dimension]
        current = part[part["period_start"] == period.start_date]
        for kpi_id, peers in current.groupby("kpi_id"):
            self.ranks[str(kpi_id)] = _rank(str(kpi_id), variant.member, peers)

    def get(self, period: ReportPeriod, kpi_id: str) -> float | None:
        return self.values.get((period.start_date, kpi_id))

    def sample(self, period: ReportPeriod, kpi_id: str) -> tuple[float | None, float | None]:
        """(numerator, denominator) of a KPI's value in a period."""
        key = (period.start_date, kpi_id)
        return self.numerators.get(key), self.denominators.get(key)

    def series(self, kpi_id: str) -> tuple[float | None, ...]:
        return tuple(self.get(p, kpi_id) for p in self.window)

    def scope(self, kpi_id: str) -> str:
        """What a variant's line is: "company-wide" (no breakdown), or its rank among its peers."""
        if self.variant is None:
            return ""
        return self.ranks.get(kpi_id, "") if kpi_id in self.broken else "company-wide"


def _rank(kpi_id: str, member: str, peers: pd.DataFrame) -> str:
    """"2nd of 3" in the KPI's own direction (members without a value and "unknown" not counted)."""
    better = REGISTRY[kpi_id].better
    known = {r.member: value_of(r.value) for r in peers.itertuples(index=False) if r.member != UNKNOWN_MEMBER}
    known = {m: v for m, v in known.items() if v is not None}
    if not better or member not in known or len(known) < 2:
        return ""
    mine = known[member]
    place = 1 + sum(1 for v in known.values() if (v > mine if better == "up" else v < mine))
    return f"{_ordinal(place)} of {len(known)}"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _line(kpi_id: str, history: _History, settings: Settings) -> KpiLine:
    d, period, currency = REGISTRY[kpi_id], history.period, settings.currency
    now, prev, ago = history.get(period, kpi_id), history.get(period.previous(), kpi_id), history.get(period.year_ago(), kpi_id)
    scope = history.scope(kpi_id)
    variant = history.variant
    if variant is not None and scope != "company-wide":  # a member's line: the member's target only
        target = settings.target_for(period.grain, kpi_id, variant.dimension, variant.member)
    else:
        target = settings.target_for(period.grain, kpi_id)
    # one precision and one time unit for the whole row: value, previous, year ago, changes, target
    row = scale_of(now, prev, ago, target.target if target else None)
    change_abs, change_pct = format_change(now, prev, d.unit, currency, row)
    yoy_abs, yoy_pct = format_change(now, ago, d.unit, currency, row)
    series = history.series(kpi_id)
    # a sample is what the value was computed on (answers, tickets, deals), where the KPI's
    # denominator counts it (KpiDef.sample) and there is a value: an n/a says its own reason
    numerator, sample = history.sample(period, kpi_id) if d.sample and now is not None else (None, None)
    week_ago = history.get(period.shift(-7), kpi_id) if period.grain == "daily" else None
    _, previous_sample = history.sample(period.previous(), kpi_id) if d.sample else (None, None)
    return KpiLine(
        d.id, d.name, d.unit, d.better, now, prev, ago,
        format_value(now, d.unit, currency, row), format_value(prev, d.unit, currency, row),
        format_value(ago, d.unit, currency, row), change_abs, change_pct, change_tone(now, prev, d.better, d.unit),
        yoy_pct, change_tone(now, ago, d.better, d.unit), yoy_abs,
        target_text=format_value(target.target, d.unit, currency, row) if target else "",
        status=status(now, target, d.better),
        series=series,
        spark=sparkline(series) if any(v is not None for v in series) else Markup(""),
        note=history.notes.get(kpi_id, ""),
        scope=scope,
        target=target.target if target else None,
        daily=period.grain == "daily", week_ago=week_ago, week_change=_headline_change(now, week_ago, d.unit, currency),
        sample=sample, previous_sample=previous_sample,
        sample_text=_sample_text(numerator, sample, d.unit),
    )


def _headline_change(now: float | None, before: float | None, unit: str, currency: str) -> str:
    """A change as the headline says it: pp for rates, pts for scores, % for the rest."""
    return _as_headline(*format_change(now, before, unit, currency), unit)


def _as_headline(change_abs: str, change_pct: str, unit: str) -> str:
    return change_abs if unit in ("rate", "score") or change_pct == "n/a" else change_pct


def _sample_text(numerator: float | None, denominator: float | None, unit: str) -> str:
    """"3 of 4" for a rate (its numerator of its denominator), "n = 4" for an average; "" for a total."""
    if denominator is None:
        return ""
    if unit == "rate" and numerator is not None:
        return f"{numerator:,.0f} of {denominator:,.0f}"
    return f"n = {denominator:,.0f}"


def _cell(kpi_id: str, dimension: str, member: str, value: float | None, marks: dict[tuple[str, str], str],
          grain: str, settings: Settings, scale: float | None = None) -> dict[str, Any]:
    target = settings.target_for(grain, kpi_id, dimension, member)
    return {"text": format_value(value, REGISTRY[kpi_id].unit, settings.currency, scale),
            "mark": marks.get((kpi_id, member), ""),
            "status": status(value, target, REGISTRY[kpi_id].better) or ""}


def _breakdowns(rows: pd.DataFrame, area: str, grain: str, settings: Settings,
                variant: Variant | None = None) -> list[dict[str, Any]]:
    """Per dimension, a compact table: members as rows, the area's broken-down KPIs as columns,
    with each column's best and worst member marked (by the KPI's direction) where members compare
    like for like (not for totals); a variant's member row is marked as its own."""
    tables = []
    area_rows = rows[rows["kpi_id"].str.startswith(area + ".") & ~rows["dimension"].isin(["", "statistic"])]
    tracked = {r.kpi_id for r in rows.itertuples(index=False) if r.dimension == "" and value_of(r.value) is not None}
    totals = _sums(rows) if "denominator" in rows.columns else frozenset()  # no like-for-like marks
    for dimension in sorted(area_rows["dimension"].unique()):
        part = area_rows[area_rows["dimension"] == dimension]
        kpi_ids = [k.id for k in kpis_for(area, grain) if k.id in set(part["kpi_id"])][:BREAKDOWN_COLUMNS]
        # the members the shown KPIs have rows for: a member only another KPI of the dimension has
        # (opportunities without a segment) is not a row of zeros and n/a here
        members = sorted(part.loc[part["kpi_id"].isin(kpi_ids), "member"].unique())
        lookup = {(r.kpi_id, r.member): value_of(r.value) for r in part.itertuples(index=False)}
        # a count with no row for a member of the period (no open social cases) is a real 0, not n/a,
        # when the KPI has a company-wide value (it is tracked); rates and means stay undefined
        for kpi_id in kpi_ids:
            if REGISTRY[kpi_id].unit == "count" and kpi_id in tracked:
                for member in members:
                    lookup.setdefault((kpi_id, member), 0.0)
        marks: dict[tuple[str, str], str] = {}
        # best and worst only where members compare like for like (rates, averages, ratios): the
        # smallest segment's revenue is not its "worst", nor is a team's cost "best" for being small;
        # and only among peers (teams, segments), not between the steps of one pipeline
        for kpi_id in kpi_ids if DIMENSION_DECLARATIONS[dimension].peers else ():
            better = REGISTRY[kpi_id].better if kpi_id not in totals else None
            known = [(m, lookup.get((kpi_id, m))) for m in members if m != "unknown"]
            known = [(m, v) for m, v in known if v is not None]
            if better and len(known) >= 2 and len({v for _, v in known}) > 1:
                best = (max if better == "up" else min)(known, key=lambda mv: mv[1])[0]
                worst = (min if better == "up" else max)(known, key=lambda mv: mv[1])[0]
                marks[(kpi_id, best)], marks[(kpi_id, worst)] = "best", "worst"
        # one precision and one time unit per column: "$2,537" and "$898", not "$898.05"
        scales = {k: scale_of(*(lookup.get((k, m)) for m in members)) for k in kpi_ids}
        table_rows = [{"member": _member_label(dimension, member), "own": variant is not None and member == variant.member,
                       "cells": [_cell(k, dimension, member, lookup.get((k, member)), marks, grain, settings,
                                       scales[k]) for k in kpi_ids]}
                      for member in members
                      if any(lookup.get((k, member)) is not None for k in kpi_ids)]  # no all-n/a rows
        tables.append({"dimension": DIMENSION_TITLES.get(dimension, dimension),
                       "columns": [REGISTRY[k].name for k in kpi_ids], "rows": table_rows})
    return tables


def _member_label(dimension: str, member: str) -> str:
    """A member as the tables name it; "unknown" says what it is (rows without that value)."""
    if member == UNKNOWN_MEMBER:
        return f"unknown ({UNKNOWN_MEMBER_LABELS.get(dimension, 'not recorded')})"
    return member.replace("_", " ")


def _members(rows: pd.DataFrame) -> dict[str, dict[tuple[str, str], float | None]]:
    """Breakdown values by KPI, then (dimension, member), of one period's history rows, for the KPIs
    that are sums (stored without a denominator): only their members' moves add up to the company's.
    A ratio's member moving most may be a member with three responses, so it names no driver."""
    out: dict[str, dict[tuple[str, str], float | None]] = {}
    for r in rows.itertuples(index=False):
        if r.dimension not in ("", "statistic") and value_of(r.denominator) is None:
            out.setdefault(r.kpi_id, {})[(r.dimension, r.member)] = value_of(r.value)
    return out


def _sums(rows: pd.DataFrame) -> frozenset[str]:
    """The KPIs whose company-wide row has no denominator: totals, not ratios."""
    return frozenset(r.kpi_id for r in rows.itertuples(index=False)
                     if r.dimension == "" and value_of(r.value) is not None and value_of(r.denominator) is None)


def _trend_charts(lines: list[KpiLine], history: _History, currency: str) -> list[Markup]:
    """Each featured KPI's last periods on a value axis of round numbers (the axis states the scale:
    a rate from 2.8 % to 3.3 % is drawn on 2.6–3.4 %, labelled, not as a cliff), with its target as
    a dashed line and the last value and the target written in the margin, never on the line."""
    # short labels (Nov, or 30 for a day) so that a small chart's axis stays readable
    labels = [p.start_date.strftime("%b" if p.grain == "monthly" else "%d") for p in history.window]
    charts = []
    for line in lines:
        if sum(v is not None for v in line.series) >= 2:
            title = line.name + (" (company-wide)" if line.scope == "company-wide" else "")
            chart = line_chart(labels, [Series(line.name, list(line.series))], line.unit, currency,
                               target=line.target, title=title, width=320, height=150, max_labels=4)
            charts.append(Markup('<div class="chart-title">{}</div>').format(title) + chart)
    return charts


def check_config(settings: Settings, report: ReportConfig) -> None:
    """A mistyped KPI id in the targets or headline would silently drop a status or a tile: refuse it."""
    unknown = [f"targets.{grain}.{k}" for grain, targets in settings.targets.items() for k in targets
               if k not in REGISTRY]
    unknown += [f"reports.{report.report_id}.headline: {k}" for entry in report.headline
                for k in alternatives(entry) if k not in REGISTRY]
    unknown += [f"kpi_alerts.{r.rule_id}: {r.kpi_id}" for r in settings.kpi_alerts if r.kpi_id not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown KPI ids in the reports configuration: {', '.join(unknown)}")


def alternatives(entry: str) -> list[str]:
    """A headline entry's KPI ids: `sales.revenue or sales.bookings` names revenue and, where revenue
    is n/a (a company whose billing is not among its sources), the KPI shown in its place."""
    return [k.strip() for k in entry.split(" or ") if k.strip()]


def _headline_tile(entry: str, lines_by_id: dict[str, KpiLine]) -> KpiLine | None:
    """The line a headline entry shows: its first KPI with a value, else its first; an alternative
    says what it stands in for, and why, on the tile."""
    lines = [lines_by_id[k] for k in alternatives(entry) if k in lines_by_id]
    if not lines:
        return None
    chosen = next((line for line in lines if line.value is not None), lines[0])
    if chosen is lines[0]:
        return chosen
    instead = f"in place of {lines[0].name} ({lines[0].note or 'n/a'})"
    return replace(chosen, note=f"{instead}; {chosen.note}" if chosen.note else instead)


def approximations_in_use() -> dict[str, str]:
    """Per KPI, how the sources' adapters approximate its definition (said under the definition)."""
    from crm_kpis.sources.coverage import approximations_in_use as in_use

    return in_use()


def headline_first(checks: list[str], names: list[str]) -> list[str]:
    """The gate's checks with those about the headline KPIs first, in the headline's order (the
    subject has room for two: "Revenue 9.8× its usual" before "Campaign revenue 10× its usual")."""
    def rank(check: str) -> int:
        for i, name in enumerate(names):
            rest = check[len(name) + 1:] if check.startswith(name + " ") else ""
            if rest[:1].isdigit() or rest.startswith(("1/", "far ")):
                return i
        return len(names)
    return sorted(checks, key=rank)


def build_context(engine: Engine, period: ReportPeriod, settings: Settings, report: ReportConfig,
                  rendered_at: datetime) -> dict[str, Any]:
    check_config(settings, report)
    run = read_run(engine, period)
    if run is None:
        raise ReportDataMissing(f"no KPI history for {period}: run the computation for it first")
    variant = report.variant
    history = _History(engine, period, variant)
    current_rows = read_history(engine, period.grain, [period.start_date])
    # a variant's breakdown tables are its own dimension's: the member among its peers
    table_rows = current_rows[current_rows["dimension"].isin(["", variant.dimension])] if variant else current_rows
    entries = [e for e in report.headline
               if any(k in REGISTRY and REGISTRY[k].applies_to(period.grain) for k in alternatives(e))]
    # every KPI a headline entry names is featured in its area's charts; the tile shows one of them
    headline_ids = [k for e in entries for k in alternatives(e) if k in REGISTRY and REGISTRY[k].applies_to(period.grain)]
    areas = []
    lines_by_id: dict[str, KpiLine] = {}
    for area in AREAS:
        lines = [_line(k.id, history, settings) for k in kpis_for(area, period.grain)]
        lines_by_id.update((line.id, line) for line in lines)
        featured = [line for line in lines if line.id in headline_ids] or lines[:2]
        # an area with no KPI broken down by the variant's dimension says so once, not on every line
        # (in the area's table only: the headline tiles and the movers still know each line's scope)
        company_wide = variant is not None and all(line.scope == "company-wide" for line in lines)
        areas.append({
            "id": area, "title": AREA_TITLES[area], "company_wide": company_wide,
            "kpis": [replace(line, scope="") for line in lines] if company_wide else lines,
            "charts": _trend_charts(featured[:3], history, settings.currency),
            "breakdowns": _breakdowns(table_rows, area, period.grain, settings, variant),
        })
    # the same lines as in the area tables (an alternative's with what it stands in for)
    headline = [tile for e in entries if (tile := _headline_tile(e, lines_by_id)) is not None]
    previous_rows = read_history(engine, period.grain, [period.previous().start_date])
    # a variant's movers have no driver member: the history holds no breakdown within a member
    # a variant's movers are its member's: a company-wide figure is the company's story, not his
    movers = what_changed(
        [line for line in headline if line.scope != "company-wide"], lines_by_id,
        {line.id: lines_by_id[line.id].target for line in headline},
        {} if variant else _members(current_rows), {} if variant else _members(previous_rows),
        settings.currency, _sums(current_rows), min_sample=report.min_sample)
    # each excluded source row once, by table (runs published before that count: per extract)
    rejected = run.get("rows_excluded") or rejected_by_extract(run)
    not_tracked = [line for line in lines_by_id.values() if line.note.startswith(NOT_TRACKED)]
    partial = [line for line in lines_by_id.values()
               if line.note and not line.note.startswith((NOT_TRACKED, UNDEFINED))]
    return {
        "report": report,
        # the PDF's link for readers without an Airflow account: the render task sets it (delivery
        # makes it, above this layer); None renders no link
        "pdf_link": None,
        "title": report.edition_title,
        "variant": variant,
        "company": settings.company,
        "currency": settings.currency,
        "period": period,
        "previous_period": period.previous(),
        "year_ago_period": period.year_ago(),
        # the whole year-ago column is n/a when the history does not reach back that far: said once
        "year_ago_missing": period.year_ago().start_date not in history.stored,
        "trend_periods": len(history.window),
        "headline": headline,
        "movers": movers,
        "areas": areas,
        "run": run,
        # sources that could not be read this run (the gate's unreadable_source warnings): said first
        "incomplete": [w.split(": ", 1)[1] for w in run.get("warnings") or [] if w.startswith("unreadable_source: ")],
        # the other warnings, for page one's box (an unreadable source is said once, in its own box)
        "other_warnings": [w for w in run.get("warnings") or [] if not w.startswith("unreadable_source: ")],
        # magnitudes the gate found far from their history, in the reader's words: said in the subject,
        # the email's first lines and the chat post, where the reader looks
        "checks": headline_first([h for w in run.get("warnings") or [] if (h := headline_of(w))],
                                 [k.name for k in headline]),
        "check_says": CHECK_SAYS,
        "rejected": rejected,
        "rejected_total": sum(n for rules in rejected.values() for n in rules.values()),
        "not_tracked": not_tracked,
        "partial": partial,
        "unreadable": run.get("unreadable") or {},
        "rendered_at": rendered_at,
        "appendix": report.appendix,
        "definitions": [REGISTRY[k.id] for area in AREAS for k in kpis_for(area, period.grain)],
        "approximations": approximations_in_use(),
        "models": models_appendix(run.get("models")),
        "to_date": to_date(engine, period, settings.currency, variant),
    }
