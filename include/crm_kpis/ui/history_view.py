"""The KPI history view in the Airflow UI: a FastAPI app that the plugin in `plugins/` mounts.

Why inside Airflow: ops and analysts already live in the Airflow UI, and the history is only
trustworthy next to the runs that wrote it, so each period links to its DAG run.

Why it is safe to expose: every route needs an authenticated Airflow user who may read the DAG of
the chosen grain (the same rule as the DAG pages), so anonymous requests get 401. Request values
are never put into SQL text: the KPI, grain, breakdown and member are checked against the
catalogue and the stored history, then passed to SQLAlchemy as bound parameters.

Nothing heavy is imported at module level: Airflow imports plugins in every component, and only
the API server serves this app.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm_kpis.config.settings import dag_id_for
from crm_kpis.periods import GRAINS, ReportPeriod

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crm_kpis.config.settings import Settings
    from crm_kpis.delivery.reports_store import ReportFile
    from crm_kpis.kpis.base import KpiDef

log = logging.getLogger(__name__)

#: Where the plugin mounts the app on the API server, and the UI route of its page.
URL_PREFIX = "/kpi-history"
UI_ROUTE = "kpi-history"
DEFAULT_PERIODS = {"daily": 60, "monthly": 24}
MAX_PERIODS = 400

# Request parameters: bounded before anything reads them (module level: FastAPI resolves the names).
Grain = Literal["daily", "monthly"]
Periods = Annotated[int | None, Query(ge=1, le=MAX_PERIODS)]
Kpi = Annotated[str, Query(max_length=80)]
Dimension = Annotated[str, Query(max_length=40)]
Member = Annotated[str, Query(max_length=120)]


class ViewError(Exception):
    """A request the view cannot answer; the message is shown to the user as it is."""

    def __init__(self, message: str, status_code: int = status.HTTP_404_NOT_FOUND) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class SeriesRow:
    period_start: date
    period_end: date | None
    value: float | None
    numerator: float | None
    denominator: float | None
    run_id: str | None  # None: the period has no stored history (never computed)
    computed_at: datetime | None

    @property
    def stored(self) -> bool:
        return self.run_id is not None


@dataclass
class Series:
    kpi: KpiDef
    grain: str
    dimension: str
    member: str
    rows: list[SeriesRow]  # oldest first; missing periods between stored ones included
    breakdowns: dict[str, list[str]] = field(default_factory=dict)

    @property
    def missing(self) -> list[date]:
        return [r.period_start for r in self.rows if not r.stored]


@dataclass(frozen=True)
class GapRange:
    """Consecutive periods with no stored history: one line and one backfill, not one per period."""

    first: date
    last: date
    periods: int

    def label(self, grain: str) -> str:
        first, last = ReportPeriod(grain, self.first).key, ReportPeriod(grain, self.last).key
        return first if self.periods == 1 else f"{first} .. {last}"


def gap_ranges(series: Series) -> list[GapRange]:
    """The missing periods of a series as ranges, oldest first."""
    ranges: list[GapRange] = []
    run: list[date] = []
    for row in [*series.rows, None]:
        if row is not None and not row.stored:
            run.append(row.period_start)
        elif run:
            ranges.append(GapRange(run[0], run[-1], len(run)))
            run = []
    return ranges


def backfill_body(grain: str, gap: GapRange, timezone: str) -> dict[str, Any]:
    """The body of `POST /api/v2/backfills` that computes exactly the gap's periods: logical dates
    are the periods' local starts (with their UTC offset), both ends inclusive; missing runs only,
    nobody emailed (a backfill run does not deliver unless asked)."""
    from crm_kpis.periods import logical_date

    return {"dag_id": dag_id_for(grain), "from_date": logical_date(ReportPeriod(grain, gap.first, timezone)),
            "to_date": logical_date(ReportPeriod(grain, gap.last, timezone)), "reprocess_behavior": "none",
            "max_active_runs": 2, "run_backwards": False, "dag_run_conf": {}}


def is_sum(series: Series) -> bool:
    """A KPI stored without a denominator is a sum (revenue, orders): its members add up to it, so
    a member's share is of the value; for a ratio (a rate, an average, a cost per customer) it is of
    the denominator, the member's part of the base."""
    return all(r.denominator is None for r in series.rows if r.stored)


@dataclass(frozen=True)
class MemberCell:
    value: float | None
    share: float | None  # of the company value (sums) or of its denominator (ratios)


def members_side_by_side(engine: Engine, series: Series) -> tuple[list[str], list[tuple[date, dict[str, MemberCell]]]]:
    """Every member of the series' breakdown per stored period (newest first), each with its share."""
    from crm_kpis.history.store import read_members

    members = series.breakdowns.get(series.dimension, [])
    starts = [r.period_start for r in series.rows if r.stored]
    rows = read_members(engine, series.kpi.id, series.grain, series.dimension, starts)
    company = {r["period_start"]: r for r in rows if r["dimension"] == ""}
    by_period: dict[date, list[dict[str, Any]]] = {}
    for r in rows:
        if r["dimension"] == series.dimension:
            by_period.setdefault(r["period_start"], []).append(r)
    basis = "value" if is_sum(series) else "denominator"  # what a share is of
    table = []
    for start in sorted(starts, reverse=True):
        base = (company.get(start) or {}).get(basis)
        cells = {}
        for r in by_period.get(start, []):
            part = r[basis]
            share = part / base if part is not None and base not in (None, 0) else None
            cells[r["member"]] = MemberCell(r["value"], share)
        table.append((start, cells))
    return members, table


# --- the series, without a web server -----------------------------------------------------------
def _with_gaps(stored: list[SeriesRow], grain: str) -> list[SeriesRow]:
    """Oldest first, with a row for every period between the first and last stored one."""
    by_start = {r.period_start: r for r in stored}
    if not by_start:
        return []
    rows, start, last = [], min(by_start), max(by_start)
    while start <= last:
        rows.append(by_start.get(start) or SeriesRow(start, None, None, None, None, None, None))
        start = ReportPeriod(grain, start).end_date
    return rows


def find_kpi(kpi_id: str, grain: str) -> KpiDef:
    from crm_kpis.kpis import REGISTRY

    kpi = REGISTRY.get(kpi_id)
    if kpi is None:
        raise ViewError(f"unknown KPI {kpi_id!r}; the catalogue has {len(REGISTRY)} KPIs (see /api/kpis)")
    if not kpi.applies_to(grain):
        raise ViewError(f"{kpi.name} ({kpi_id}) is computed monthly only, not {grain}")
    return kpi


def load_series(engine: Engine, kpi_id: str, grain: str, dimension: str = "", member: str = "",
                periods: int | None = None) -> Series:
    """The last `periods` periods of one KPI series, validated against the catalogue and history."""
    from sqlalchemy import inspect

    from crm_kpis.history.store import kpi_history, read_breakdowns, read_series

    if grain not in GRAINS:
        raise ViewError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}", status.HTTP_422_UNPROCESSABLE_CONTENT)
    kpi = find_kpi(kpi_id, grain)
    periods = periods or DEFAULT_PERIODS[grain]
    if not 1 <= periods <= MAX_PERIODS:
        raise ViewError(f"periods must be between 1 and {MAX_PERIODS}", status.HTTP_422_UNPROCESSABLE_CONTENT)
    if not inspect(engine).has_table(kpi_history.name):
        return Series(kpi, grain, dimension, member, [])
    breakdowns = read_breakdowns(engine, kpi_id, grain)
    if dimension and dimension not in breakdowns:
        raise ViewError(f"{kpi_id} has no stored {grain} breakdown by {dimension!r}"
                        f" (it has: {', '.join(breakdowns) or 'none'})")
    if dimension and not member:  # a breakdown chosen without a member: its first member
        member = breakdowns[dimension][0]
    if dimension and member not in breakdowns[dimension]:
        raise ViewError(f"{kpi_id} by {dimension} has no member {member!r}")
    if not dimension and member:
        raise ViewError("a member needs a breakdown dimension", status.HTTP_422_UNPROCESSABLE_CONTENT)
    stored = [SeriesRow(**row) for row in read_series(engine, kpi_id, grain, dimension, member, periods)]
    return Series(kpi, grain, dimension, member, _with_gaps(stored, grain), breakdowns)


def catalogue(grain: str | None = None) -> list[dict[str, Any]]:
    from crm_kpis.kpis import REGISTRY

    return [
        {"id": k.id, "name": k.name, "area": k.area, "unit": k.unit, "better": k.better,
         "grains": [g for g in GRAINS if k.applies_to(g)], "formula": k.formula, "breakdowns": list(k.breakdowns)}
        for k in REGISTRY.values() if grain is None or k.applies_to(grain)
    ]


def series_json(series: Series) -> dict[str, Any]:
    dag_id = dag_id_for(series.grain)
    return {
        "kpi": {"id": series.kpi.id, "name": series.kpi.name, "unit": series.kpi.unit, "formula": series.kpi.formula},
        "grain": series.grain, "dag_id": dag_id, "dimension": series.dimension, "member": series.member,
        "missing_periods": [d.isoformat() for d in series.missing],
        "periods": [
            {"period_start": r.period_start.isoformat(), "period_end": r.period_end and r.period_end.isoformat(),
             "value": r.value, "numerator": r.numerator, "denominator": r.denominator, "run_id": r.run_id,
             "computed_at": r.computed_at and r.computed_at.isoformat()}
            for r in reversed(series.rows)  # newest first, like the page's table
        ],
    }


# --- the page -------------------------------------------------------------------------------------
def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _label(start: date, grain: str) -> str:
    return ReportPeriod(grain, start).key


@dataclass(frozen=True)
class Choice:
    """What the user asked for, kept in the selectors even when the request was refused."""

    grain: str = "monthly"
    kpi: str = ""
    dimension: str = ""
    member: str = ""
    periods: int | None = None


def series_csv(series: Series) -> str:
    """The series as CSV, oldest first: one line per period, a missing one with an empty value."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "period_start", "kpi_id", "grain", "dimension", "member", "value", "numerator",
                     "denominator", "status", "run_id", "computed_at_utc"])
    for r in series.rows:
        writer.writerow([_label(r.period_start, series.grain), r.period_start.isoformat(), series.kpi.id,
                         series.grain, series.dimension, series.member,
                         "" if r.value is None else repr(r.value), "" if r.numerator is None else r.numerator,
                         "" if r.denominator is None else r.denominator,
                         "stored" if r.stored else "not computed", r.run_id or "",
                         r.computed_at.isoformat(sep=" ") if r.computed_at else ""])
    return out.getvalue()


def report_pdf(grain: str, start: date, settings: Settings | None = None, variant: str = "") -> ReportFile | None:
    """The rendered report of a period (or a variant's edition of it), when there is one in the
    reports' store (`reports_url`: the API server reads what any worker wrote)."""
    from crm_kpis.config.settings import load_settings
    from crm_kpis.delivery.reports_store import report_files

    settings = settings or load_settings()
    try:
        edition = settings.report_for_grain(grain).edition(variant)
    except KeyError:
        return None
    pdf = report_files(edition, ReportPeriod(grain, start, settings.timezone))["pdf"]
    return pdf if pdf.exists() else None


def render_page(series: Series | None, choice: Choice, error: str | None = None,
                engine: Engine | None = None) -> str:
    from crm_kpis.config.settings import load_settings
    from crm_kpis.report.charts import Series, line_chart
    from crm_kpis.report.formatting import format_value
    from crm_kpis.report.render import render_template

    settings = load_settings()
    grain = choice.grain if choice.grain in GRAINS else "monthly"
    chart, rows, gaps, members, side_by_side = None, [], [], [], []
    target = None
    if series is not None and series.rows:
        unit, currency = series.kpi.unit, settings.currency
        target_def = settings.target_for(grain, series.kpi.id, series.dimension, series.member)
        target = target_def.target if target_def else None
        labels = [_label(r.period_start, grain) for r in series.rows]
        chart = line_chart(labels, [Series(series.kpi.name, [r.value for r in series.rows])], unit, currency,
                           target=target, title=series.kpi.name)
        dag_id = dag_id_for(grain)
        gap_by_last = {g.last: {"label": g.label(grain), "periods": g.periods,
                                "body": backfill_body(grain, g, settings.timezone)} for g in gap_ranges(series)}
        gaps = list(gap_by_last.values())
        for r in reversed(series.rows):  # newest first; a run of missing periods is one row
            if not r.stored:
                if r.period_start in gap_by_last:
                    rows.append({"gap": gap_by_last[r.period_start]})
                continue
            rows.append({
                "gap": None, "period": _label(r.period_start, grain), "start": r.period_start.isoformat(),
                "value": format_value(r.value, unit, currency),
                "numerator": _number(r.numerator), "denominator": _number(r.denominator),
                "run_id": r.run_id, "run_url": f"/dags/{dag_id}/runs/{r.run_id}",
                "computed_at": r.computed_at and r.computed_at.strftime("%Y-%m-%d %H:%M:%S"),
                "pdf": report_pdf(grain, r.period_start, settings) is not None,
            })
        if series.dimension and engine is not None:
            members, table = members_side_by_side(engine, series)
            side_by_side = [{"period": _label(start, grain), "cells": [
                (format_value(cells[m].value, unit, currency), "" if cells[m].share is None else f"{cells[m].share:.1%}")
                if m in cells else ("", "") for m in members]} for start, cells in table]
    return render_template("kpi_history.html.j2", {
        "series": series, "choice": choice, "grain": grain, "grains": GRAINS, "error": error, "chart": chart,
        "rows": rows, "gaps": gaps, "members": members, "side_by_side": side_by_side,
        "share_of": "value" if series is not None and is_sum(series) else "denominator",
        "target": target, "kpis": catalogue(grain), "dag_id": dag_id_for(grain), "max_periods": MAX_PERIODS,
        "periods": choice.periods or DEFAULT_PERIODS[grain], "prefix": URL_PREFIX,
    })


# --- the app ----------------------------------------------------------------------------------------
def _warehouse() -> Engine:
    from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

    return engine_for(WAREHOUSE_CONN_ID)


_bearer = HTTPBearer(auto_error=False)


async def authorized_user(request: Request, grain: Annotated[str, Query(max_length=20)] = "monthly",
                          credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Any:  # noqa: B008
    """Airflow's own login check (Bearer token or the UI's cookie), then DAG read permission.

    401 without a valid login; 403 when the user may not read the grain's DAG. Airflow's security
    module is imported on the first request, not when the plugin loads: every Airflow component
    imports plugins, and only the API server serves this app.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import get_auth_manager, get_user

    user = await get_user(request, None, credentials)
    # a grain that does not exist is the page's to explain; reading it needs both DAGs' permission
    for dag_id in [dag_id_for(grain)] if grain in GRAINS else [dag_id_for(g) for g in GRAINS]:
        if not get_auth_manager().is_authorized_dag(method="GET", user=user, details=DagDetails(id=dag_id)):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not read DAG {dag_id}")
    return user


def _choice(grain: str, kpi: str, dimension: str, member: str, periods: str) -> tuple[Choice, str | None]:
    """The page's request values as the user typed them, and what is wrong with them (or None)."""
    number = None
    problem = None
    if periods.strip():
        try:
            number = int(periods)
        except ValueError:
            problem = f"periods must be a whole number between 1 and {MAX_PERIODS}, not {periods!r}"
        else:
            if not 1 <= number <= MAX_PERIODS:
                problem = f"periods must be between 1 and {MAX_PERIODS}, not {number}"
    if grain not in GRAINS:
        problem = f"grain must be one of {', '.join(GRAINS)}, not {grain!r}"
    return Choice(grain, kpi, dimension, member, number), problem


def create_app() -> FastAPI:
    # no /docs, /redoc or /openapi.json: they would answer anonymous visitors (FastAPI serves them
    # outside the app's dependencies), and the Airflow REST API documents itself
    app = FastAPI(title="CRM KPI history", description=__doc__, dependencies=[Depends(authorized_user)],
                  openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/api/kpis")
    def kpis(grain: Grain | None = None) -> list[dict[str, Any]]:
        """The KPI catalogue (optionally of one grain)."""
        return catalogue(grain)

    @app.get("/api/history")
    def history(kpi: Kpi, grain: Grain = "monthly", dimension: Dimension = "", member: Member = "",
                periods: Periods = None) -> dict[str, Any]:
        """One KPI's stored history, newest first, with numerator, denominator and the writing run."""
        try:
            return series_json(load_series(_warehouse(), kpi, grain, dimension, member, periods))
        except ViewError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc

    @app.get("/api/history.csv")
    def history_csv(kpi: Kpi, grain: Grain = "monthly", dimension: Dimension = "", member: Member = "",
                    periods: Periods = None) -> Response:
        """The same series as a CSV download, oldest first, missing periods included."""
        try:
            series = load_series(_warehouse(), kpi, grain, dimension, member, periods)
        except ViewError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        name = "_".join(p for p in (kpi, grain, dimension, member) if p)
        return Response(series_csv(series), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{_safe_name(name)}.csv"'})

    @app.get("/report.pdf")
    def report(period: date, grain: Grain = "monthly",
               variant: Annotated[str, Query(max_length=80, pattern=r"^[a-z0-9_-]*$")] = "") -> Response:
        """The period's rendered PDF report (or a variant's), as emailed and linked from Slack and
        Teams (grain in the query, so that the login check reads the same DAG permission as every
        other route)."""
        pdf = report_pdf(grain, period, variant=variant) if grain == "daily" or period.day == 1 else None
        if pdf is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no rendered {grain} report for {period}"
                                + (f" (variant {variant})" if variant else ""))
        stem = pdf.name.removesuffix(".pdf")
        return Response(pdf.read_bytes(), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{grain}-kpi-report-{stem}.pdf"'})

    @app.get("/", response_class=HTMLResponse)
    def page(grain: Annotated[str, Query(max_length=20)] = "monthly", kpi: Kpi = "", dimension: Dimension = "",
             member: Member = "", periods: Annotated[str, Query(max_length=10)] = "") -> HTMLResponse:
        """The page shown inside the Airflow UI (Browse → KPI history); bad values get this page
        with the reason and the user's choices kept, not an API error."""
        choice, problem = _choice(grain, kpi, dimension, member, periods)
        if problem:
            return HTMLResponse(render_page(None, choice, problem), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
        engine = _warehouse()
        try:
            series = load_series(engine, kpi or catalogue(choice.grain)[0]["id"], choice.grain, dimension, member,
                                 choice.periods)
        except ViewError as exc:
            return HTMLResponse(render_page(None, choice, str(exc)), status_code=exc.status_code)
        return HTMLResponse(render_page(series, choice, engine=engine))

    return app


def _safe_name(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:120]
