"""The KPI history view in the Airflow UI: a FastAPI app that the plugin in `plugins/` mounts.

Why inside Airflow: ops and analysts already live in the Airflow UI, and the history is only
trustworthy next to the runs that wrote it, so each period links to its DAG run.

Why it is safe to expose: every route needs an authenticated Airflow user who may read the DAG of
the chosen grain (the same rule as the DAG pages), so anonymous requests get 401; the one exception,
`/shared/report.pdf`, serves one PDF to whoever holds a link signed for that file and not yet
expired (crm_kpis.delivery.shared_links): the link is the permission. Request values
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

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, status
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
    """The last periods of the calendar for one KPI: `rows` has every period of the window, oldest
    first, the stored ones and the missing ones (never computed, or failed), leading and trailing
    included. A breakdown chosen without a member (`member` empty) is every member's series:
    `rows` are then the company-wide values, which say which periods were computed, and `lines`
    each member's stored rows by period start."""

    kpi: KpiDef
    grain: str
    dimension: str
    member: str
    rows: list[SeriesRow]
    breakdowns: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, dict[date, SeriesRow]] = field(default_factory=dict)

    @property
    def missing(self) -> list[date]:
        return [r.period_start for r in self.rows if not r.stored]

    @property
    def all_members(self) -> bool:
        return bool(self.dimension) and not self.member


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
def last_ended(grain: str, today: date) -> date:
    """The start of the newest period that has ended by `today`: yesterday, or last month."""
    current = ReportPeriod(grain, today if grain == "daily" else today.replace(day=1))
    return current.previous().start_date


def calendar_window(grain: str, periods: int, today: date, newest_stored: date | None,
                    until: date | None = None) -> list[date]:
    """The starts of the last `periods` periods of the calendar, oldest first: up to `until`, or
    else the newest period that has ended (or a newer one already stored), whatever the history
    holds, so that the periods missing at either end of the history are in it too."""
    last = until or last_ended(grain, today)
    if until is None and newest_stored is not None and newest_stored > last:
        last = newest_stored
    first = ReportPeriod(grain, last).shift(-(periods - 1))
    starts, period = [], first
    while period.start_date <= last:
        starts.append(period.start_date)
        period = period.shift(1)
    return starts


def _today() -> date:
    """Today in the product's time zone (the periods' calendar)."""
    from zoneinfo import ZoneInfo

    from crm_kpis.config.settings import load_settings

    return datetime.now(ZoneInfo(load_settings().timezone)).date()


def _row(stored: dict[str, Any]) -> SeriesRow:
    return SeriesRow(**{k: v for k, v in stored.items() if k != "member"})


def find_kpi(kpi_id: str, grain: str) -> KpiDef:
    from crm_kpis.kpis import REGISTRY

    kpi = REGISTRY.get(kpi_id)
    if kpi is None:
        raise ViewError(f"unknown KPI {kpi_id!r}; the catalogue has {len(REGISTRY)} KPIs (see /api/kpis)")
    if not kpi.applies_to(grain):
        raise ViewError(f"{kpi.name} ({kpi_id}) is computed monthly only, not {grain}")
    return kpi


def load_series(engine: Engine, kpi_id: str, grain: str, dimension: str = "", member: str = "",
                periods: int | None = None, until: date | None = None, today: date | None = None) -> Series:
    """The last `periods` periods of the calendar of one KPI series, up to the period starting on
    `until` (default: the newest that has ended), every member's series when a breakdown is chosen
    without a member; validated against the catalogue and the history."""
    from sqlalchemy import inspect

    from crm_kpis.history.store import kpi_history, newest_period, read_breakdowns, read_series

    if grain not in GRAINS:
        raise ViewError(f"grain must be one of {', '.join(GRAINS)}, not {grain!r}", status.HTTP_422_UNPROCESSABLE_CONTENT)
    kpi = find_kpi(kpi_id, grain)
    periods = periods or DEFAULT_PERIODS[grain]
    if not 1 <= periods <= MAX_PERIODS:
        raise ViewError(f"periods must be between 1 and {MAX_PERIODS}", status.HTTP_422_UNPROCESSABLE_CONTENT)
    if until is not None and grain == "monthly" and until.day != 1:
        raise ViewError(f"until is the start of the last period shown: a month's first day (e.g. "
                        f"{until.replace(day=1)}), not {until}", status.HTTP_422_UNPROCESSABLE_CONTENT)
    if not inspect(engine).has_table(kpi_history.name):
        return Series(kpi, grain, dimension, member, [])
    breakdowns = read_breakdowns(engine, kpi_id, grain)
    if dimension and dimension not in breakdowns:
        raise ViewError(f"{kpi_id} has no stored {grain} breakdown by {dimension!r}"
                        f" (it has: {', '.join(breakdowns) or 'none'})")
    if dimension and member and member not in breakdowns[dimension]:
        raise ViewError(f"{kpi_id} by {dimension} has no member {member!r}")
    if not dimension and member:
        raise ViewError("a member needs a breakdown dimension", status.HTTP_422_UNPROCESSABLE_CONTENT)
    newest = newest_period(engine, kpi_id, grain)
    if newest is None:
        return Series(kpi, grain, dimension, member, [], breakdowns)
    window = calendar_window(grain, periods, today or _today(), newest, until)
    first, last = window[0], window[-1]
    lines: dict[str, dict[date, SeriesRow]] = {}
    if dimension and not member:  # every member: the company-wide rows say which periods were computed
        company = read_series(engine, kpi_id, grain, first, last)
        for stored in read_series(engine, kpi_id, grain, first, last, dimension, None):
            lines.setdefault(stored["member"], {})[stored["period_start"]] = _row(stored)
    else:
        company = read_series(engine, kpi_id, grain, first, last, dimension, member)
    by_start = {r["period_start"]: _row(r) for r in company}
    rows = [by_start.get(start) or SeriesRow(start, None, None, None, None, None, None) for start in window]
    return Series(kpi, grain, dimension, member, rows, breakdowns, dict(sorted(lines.items())))


def catalogue(grain: str | None = None) -> list[dict[str, Any]]:
    from crm_kpis.kpis import REGISTRY

    return [
        {"id": k.id, "name": k.name, "area": k.area, "unit": k.unit, "better": k.better,
         "grains": [g for g in GRAINS if k.applies_to(g)], "formula": k.formula, "breakdowns": list(k.breakdowns),
         "description": k.description, "flow": k.flow, "definition_version": k.definition_version}
        for k in REGISTRY.values() if grain is None or k.applies_to(grain)
    ]


def without_float_noise(number: float | None) -> float | None:
    """The number to the 15 significant digits a float holds exactly in decimal: a sum of money
    stored as 1351651.1199999999 (binary rounding in the sum) reaches a BI tool as 1351651.12.
    The history keeps the value unrounded; this only drops digits no decimal input had."""
    return None if number is None else float(f"{number:.15g}")


def _row_json(r: SeriesRow) -> dict[str, Any]:
    return {"period_start": r.period_start.isoformat(), "period_end": r.period_end and r.period_end.isoformat(),
            "value": without_float_noise(r.value), "numerator": without_float_noise(r.numerator),
            "denominator": without_float_noise(r.denominator), "run_id": r.run_id,
            "computed_at": r.computed_at and r.computed_at.isoformat()}


def series_json(series: Series) -> dict[str, Any]:
    """Newest first, like the page's table. Every member's series (a breakdown without a member):
    `periods` are the company-wide values and `members` each member's stored periods."""
    out = {
        "kpi": {"id": series.kpi.id, "name": series.kpi.name, "unit": series.kpi.unit, "formula": series.kpi.formula},
        "grain": series.grain, "dag_id": dag_id_for(series.grain), "dimension": series.dimension,
        "member": series.member, "missing_periods": [d.isoformat() for d in series.missing],
        "periods": [_row_json(r) for r in reversed(series.rows)],
    }
    if series.all_members:
        out["members"] = [{"member": member, "periods": [_row_json(r) for r in sorted(
            rows.values(), key=lambda r: r.period_start, reverse=True)]} for member, rows in series.lines.items()]
    return out


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
    until: date | None = None


def series_csv(series: Series) -> str:
    """The series as CSV, oldest first: one line per period (per period and member, for every
    member of a breakdown), a period never computed with an empty value and its status."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["period", "period_start", "kpi_id", "grain", "dimension", "member", "value", "numerator",
                     "denominator", "status", "run_id", "computed_at_utc"])
    members = list(series.lines) if series.all_members else [series.member]
    for period in series.rows:
        for member in members:
            r, status_text = period, "stored" if period.stored else "not computed"
            if series.all_members and period.stored:
                r = series.lines[member].get(period.period_start) or SeriesRow(
                    period.period_start, period.period_end, None, None, None, period.run_id, period.computed_at)
                status_text = "stored" if period.period_start in series.lines[member] else "no rows for this member"
            writer.writerow([_label(r.period_start, series.grain), r.period_start.isoformat(), series.kpi.id,
                             series.grain, series.dimension, member,
                             *("" if x is None else repr(without_float_noise(x))
                               for x in (r.value, r.numerator, r.denominator)), status_text, r.run_id or "",
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
        if series.all_members:  # one line per member, named in the legend
            lines = [Series(member, [by_start[r.period_start].value if r.period_start in by_start else None
                                     for r in series.rows]) for member, by_start in series.lines.items()]
        else:
            lines = [Series(series.kpi.name, [r.value for r in series.rows])]
        chart = line_chart(labels, lines, unit, currency, target=target, title=series.kpi.name)
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
        "periods": choice.periods or DEFAULT_PERIODS[grain], "prefix": URL_PREFIX, "query": _query(series, choice),
    })


def _query(series: Series | None, choice: Choice) -> str:
    """The query string of the shown series, for its CSV and JSON links (`until` only when chosen)."""
    from urllib.parse import urlencode

    if series is None:
        return ""
    params: dict[str, Any] = {"kpi": series.kpi.id, "grain": series.grain, "dimension": series.dimension,
                              "member": series.member, "periods": choice.periods or DEFAULT_PERIODS[series.grain]}
    if choice.until:
        params["until"] = choice.until.isoformat()
    return urlencode(params)


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


def _choice(grain: str, kpi: str, dimension: str, member: str, periods: str,
            until: str = "") -> tuple[Choice, str | None]:
    """The page's request values as the user typed them, and what is wrong with them (or None)."""
    number = None
    problem = None
    last = None
    if until.strip():
        try:
            last = date.fromisoformat(until.strip())
        except ValueError:
            problem = f"until must be a date (YYYY-MM-DD), the start of the last period shown, not {until!r}"
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
    return Choice(grain, kpi, dimension, member, number, last), problem


def shared_report(grain: Annotated[str, Query(max_length=20)] = "", period: Annotated[str, Query(max_length=10)] = "",
                  variant: Annotated[str, Query(max_length=80)] = "", expires: Annotated[str, Query(max_length=12)] = "",
                  sig: Annotated[str, Query(max_length=64)] = "") -> Response:
    """A rendered PDF through a signed, expiring link (crm_kpis.delivery.shared_links), without an
    Airflow login: the link is the permission, for that one file until it expires. Refused in
    words: a link changed in any part (403), expired (410), or a server without the secret (503)."""
    from crm_kpis.delivery.shared_links import LinkRefused, link_secret, verify

    try:
        start = verify(link_secret(), grain, period, variant, expires, sig)
    except LinkRefused as exc:
        return HTMLResponse(_refused_page(str(exc)), status_code=exc.status_code)
    pdf = report_pdf(grain, start, variant=variant) if grain in GRAINS else None
    if pdf is None:
        return HTMLResponse(_refused_page("This report is no longer stored on the server; ask the sender for it."),
                            status_code=status.HTTP_404_NOT_FOUND)
    stem = pdf.name.removesuffix(".pdf")
    return Response(pdf.read_bytes(), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{grain}-kpi-report-{stem}.pdf"',
                             "Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"})


def _refused_page(message: str) -> str:
    from html import escape

    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
            "content=\"width=device-width, initial-scale=1\"><title>Report link</title></head>"
            "<body style=\"font:16px/1.5 system-ui,sans-serif;margin:24px;max-width:36em\">"
            f"<h1 style=\"font-size:20px\">The report cannot be opened</h1><p role=\"alert\">{escape(message)}</p>"
            "</body></html>")


def create_app() -> FastAPI:
    # no /docs, /redoc or /openapi.json: they would answer anonymous visitors (FastAPI serves them
    # outside the app's dependencies), and the Airflow REST API documents itself
    app = FastAPI(title="CRM KPI history", description=__doc__, openapi_url=None, docs_url=None, redoc_url=None)
    # every route but the shared link needs an Airflow user allowed to read the grain's DAG
    secured = APIRouter(dependencies=[Depends(authorized_user)])
    app.get("/shared/report.pdf")(shared_report)

    @secured.get("/api/kpis")
    def kpis(grain: Grain | None = None) -> list[dict[str, Any]]:
        """The KPI catalogue (optionally of one grain)."""
        return catalogue(grain)

    @secured.get("/api/history")
    def history(kpi: Kpi, grain: Grain = "monthly", dimension: Dimension = "", member: Member = "",
                periods: Periods = None, until: date | None = None) -> dict[str, Any]:
        """One KPI's last periods of the calendar (up to `until`), newest first, with numerator,
        denominator and the writing run; every member's series for a dimension without a member."""
        try:
            return series_json(load_series(_warehouse(), kpi, grain, dimension, member, periods, until))
        except ViewError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc

    @secured.get("/api/history.csv")
    def history_csv(kpi: Kpi, grain: Grain = "monthly", dimension: Dimension = "", member: Member = "",
                    periods: Periods = None, until: date | None = None) -> Response:
        """The same series as a CSV download, oldest first, missing periods included."""
        try:
            series = load_series(_warehouse(), kpi, grain, dimension, member, periods, until)
        except ViewError as exc:
            raise HTTPException(exc.status_code, str(exc)) from exc
        name = "_".join(p for p in (kpi, grain, dimension, member) if p)
        return Response(series_csv(series), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{_safe_name(name)}.csv"'})

    @secured.get("/report.pdf")
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

    @secured.get("/", response_class=HTMLResponse)
    def page(grain: Annotated[str, Query(max_length=20)] = "monthly", kpi: Kpi = "", dimension: Dimension = "",
             member: Member = "", periods: Annotated[str, Query(max_length=10)] = "",
             until: Annotated[str, Query(max_length=10)] = "") -> HTMLResponse:
        """The page shown inside the Airflow UI (Browse → KPI history); bad values get this page
        with the reason and the user's choices kept, not an API error."""
        choice, problem = _choice(grain, kpi, dimension, member, periods, until)
        if problem:
            return HTMLResponse(render_page(None, choice, problem), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
        engine = _warehouse()
        try:
            series = load_series(engine, kpi or catalogue(choice.grain)[0]["id"], choice.grain, dimension, member,
                                 choice.periods, choice.until)
        except ViewError as exc:
            return HTMLResponse(render_page(None, choice, str(exc)), status_code=exc.status_code)
        return HTMLResponse(render_page(series, choice, engine=engine))

    app.include_router(secured)
    return app


def _safe_name(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:120]
