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
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crm_kpis.config import dag_id_for
from crm_kpis.periods import GRAINS, ReportPeriod

if TYPE_CHECKING:
    from sqlalchemy import Engine

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

    from crm_kpis.history import kpi_history, read_breakdowns, read_series

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


def render_page(series: Series | None, grain: str, periods: int | None = None, error: str | None = None) -> str:
    from crm_kpis.config import load_settings
    from crm_kpis.report.charts import trend_chart
    from crm_kpis.report.formatting import format_value
    from crm_kpis.report.render import render_template

    currency = load_settings().currency
    chart = None
    rows: list[dict[str, Any]] = []
    if series is not None and series.rows:
        unit = series.kpi.unit
        labels = [_label(r.period_start, grain) for r in series.rows]
        values = [r.value for r in series.rows]
        chart = trend_chart(series.kpi.name, labels, values,
                            [format_value(v, unit, currency) for v in values], width=520, height=170)
        dag_id = dag_id_for(grain)
        for r in reversed(series.rows):
            rows.append({
                "period": _label(r.period_start, grain), "stored": r.stored,
                "value": format_value(r.value, unit, currency) if r.stored else "",
                "numerator": _number(r.numerator), "denominator": _number(r.denominator),
                "run_id": r.run_id, "run_url": r.run_id and f"/dags/{dag_id}/runs/{r.run_id}",
                "computed_at": r.computed_at and r.computed_at.strftime("%Y-%m-%d %H:%M:%S"),
            })
    return render_template("kpi_history.html.j2", {
        "series": series, "grain": grain, "grains": GRAINS, "error": error, "chart": chart, "rows": rows,
        "kpis": catalogue(grain), "dag_id": dag_id_for(grain), "max_periods": MAX_PERIODS,
        "periods": periods or DEFAULT_PERIODS[grain], "prefix": URL_PREFIX,
    })


# --- the app ----------------------------------------------------------------------------------------
def _warehouse() -> Engine:
    from crm_kpis.sources import WAREHOUSE_CONN_ID, engine_for

    return engine_for(WAREHOUSE_CONN_ID)


_bearer = HTTPBearer(auto_error=False)


async def authorized_user(request: Request, grain: Grain = "monthly",
                          credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Any:  # noqa: B008
    """Airflow's own login check (Bearer token or the UI's cookie), then DAG read permission.

    401 without a valid login; 403 when the user may not read the grain's DAG. Airflow's security
    module is imported on the first request, not when the plugin loads: every Airflow component
    imports plugins, and only the API server serves this app.
    """
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import get_auth_manager, get_user

    user = await get_user(request, None, credentials)
    dag_id = dag_id_for(grain)
    if not get_auth_manager().is_authorized_dag(method="GET", user=user, details=DagDetails(id=dag_id)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not read DAG {dag_id}")
    return user


def create_app() -> FastAPI:
    app = FastAPI(title="CRM KPI history", description=__doc__, dependencies=[Depends(authorized_user)])

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

    @app.get("/", response_class=HTMLResponse)
    def page(grain: Grain = "monthly", kpi: Kpi = "", dimension: Dimension = "", member: Member = "",
             periods: Periods = None) -> HTMLResponse:
        """The page shown inside the Airflow UI (Browse → KPI history)."""
        kpi = kpi or catalogue(grain)[0]["id"]
        try:
            series = load_series(_warehouse(), kpi, grain, dimension, member, periods)
        except ViewError as exc:
            return HTMLResponse(render_page(None, grain, periods, str(exc)), status_code=exc.status_code)
        return HTMLResponse(render_page(series, grain, periods))

    return app
