"""The KPI history in the warehouse: staging, the one-transaction period swap, and reads.

The tables are declared here for the queries; their schema is created and changed only by the
migrations (crm_kpis.history.migrate), and a test keeps the two equal.

Why staging: the three area tasks run in parallel (possibly on different workers), and no
DataFrame goes through XCom. Each area stages its values under the run id; the publish task then
replaces the period's history rows with the staged ones in one transaction, so readers see the
old period or the new one, never a mix, and a re-run writes no duplicates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError

from crm_kpis.compute import AreaResult
from crm_kpis.history import locks
from crm_kpis.history.migrate import upgrade
from crm_kpis.kpis import REGISTRY
from crm_kpis.periods import ReportPeriod

log = logging.getLogger(__name__)

metadata = MetaData()

kpi_history = Table(
    "kpi_history",
    metadata,
    Column("kpi_id", String(80), primary_key=True),
    Column("grain", String(10), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("dimension", String(40), primary_key=True),  # "" for the company-wide row
    Column("member", String(120), primary_key=True),
    Column("period_end", Date, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("value", Float(precision=53)),
    Column("numerator", Float(precision=53)),
    Column("denominator", Float(precision=53)),
    Column("run_id", String(250), nullable=False),
    Column("computed_at", DateTime, nullable=False),
    Column("note", Text),  # why there is no value ("not tracked: …"), or its coverage
    Column("coverage", Float(precision=53)),  # share of the period's rows that had the KPI's input
    Column("definition_version", String(16)),  # the KPI definition that computed it (kpi_catalogue)
)
Index("ix_kpi_history_period", kpi_history.c.grain, kpi_history.c.period_start)

#: the KPI catalogue, one row per KPI and grain it is computed for, kept in step with the code and
#: the reports configuration by the publish task (crm_kpis.history.catalogue)
kpi_catalogue = Table(
    "kpi_catalogue",
    metadata,
    Column("kpi_id", String(80), primary_key=True),
    Column("grain", String(10), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("area", String(20), nullable=False),
    Column("unit", String(20), nullable=False),
    Column("direction", String(10)),  # "up": higher is better, "down": lower is, NULL: neither
    Column("flow", Boolean, nullable=False),  # events summed over the period: its periods add up
    Column("breakdowns", String(200), nullable=False),  # comma-separated dimensions
    Column("formula", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("target", Float(precision=53)),  # the company-wide target of the grain, where set
    Column("at_risk", Float(precision=53)),
    Column("definition_version", String(16), nullable=False),
    Column("updated_at", DateTime, nullable=False),
)

#: every target set in the reports configuration, keyed like kpi_history (dimension "" company-wide)
kpi_targets = Table(
    "kpi_targets",
    metadata,
    Column("kpi_id", String(80), primary_key=True),
    Column("grain", String(10), primary_key=True),
    Column("dimension", String(40), primary_key=True),
    Column("member", String(120), primary_key=True),
    Column("target", Float(precision=53), nullable=False),
    Column("at_risk", Float(precision=53)),
    Column("updated_at", DateTime, nullable=False),
)

kpi_staging = Table(
    "kpi_staging",
    metadata,
    Column("run_id", String(250), primary_key=True),
    Column("area", String(20), primary_key=True),
    Column("grain", String(10), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("payload", Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"), nullable=False),  # JSON
    Column("staged_at", DateTime, nullable=False),
)

kpi_runs = Table(
    "kpi_runs",
    metadata,
    Column("grain", String(10), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("timezone", String(64), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("computed_at", DateTime, nullable=False),
    Column("kpis", Integer, nullable=False),
    Column("values_written", Integer, nullable=False),
    Column("rows_read", Text, nullable=False),  # JSON {area: {extract: rows}}
    Column("rows_rejected", Text, nullable=False),  # JSON {area: {extract: {rule: rows}}}
    Column("latest_source_ts", DateTime),
    Column("latest_sync_ts", DateTime),  # the stalest last sync of the sources that stamp their syncs
    Column("warnings", Text),  # JSON list of the quality gate's soft warnings
    Column("rows_excluded", Text),  # JSON {table: {rule: rows}}: each source row counted once
    Column("unreadable", Text),  # JSON {extract: {column: {unreadable, values, table}}}
    Column("not_tracked", Text),  # JSON {signal: what it says}: inputs the sources do not record
    Column("models", Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")),  # JSON: the fitted models
    Column("extremes", Text),  # JSON {"table.column": {max, median, rows, key}}: the largest rows (the gate's)
)

report_deliveries = Table(
    "report_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report_id", String(80), nullable=False),
    Column("variant", String(120), nullable=False, server_default=""),  # "" the company-wide report
    Column("grain", String(10), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("transport", String(10), nullable=False),  # smtp or outbox
    Column("recipients", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("message_id", String(250), nullable=False),
    Column("attachment_bytes", Integer, nullable=False),
    Column("sent_at", DateTime, nullable=False),
)
Index("ix_report_deliveries_period", report_deliveries.c.report_id, report_deliveries.c.period_start)

#: One row per recipient of each delivery attempt, written before the send (delivery/intents.py).
delivery_intents = Table(
    "delivery_intents",
    metadata,
    Column("report_id", String(80), primary_key=True),
    Column("grain", String(10), primary_key=True),
    Column("period_start", Date, primary_key=True),
    Column("variant", String(120), primary_key=True),  # "" for the company-wide report
    Column("attempt", Integer, primary_key=True),  # 0 the first delivery, n the n-th resend
    Column("recipient", String(320), primary_key=True),
    Column("channel", String(20), nullable=False),
    Column("message_id", String(250), nullable=False),
    Column("state", String(12), nullable=False),  # pending, sending, sent, refused, unknown
    Column("detail", Text),  # the server's answer, or why the outcome is unknown
    Column("claim", String(64)),  # the sender holding it while sending
    Column("transport", String(10)),  # smtp or outbox
    Column("created_by", String(250), nullable=False),  # the run that wrote the intent
    Column("run_id", String(250), nullable=False),  # the run that last acted on it
    Column("updated_at", DateTime, nullable=False),
)


class PublishError(RuntimeError):
    """The staged results are incomplete; the period's history was left as it was."""


def _utcnow() -> datetime:
    """Wall-clock time for audit columns only (when something ran), never for KPI values."""
    return datetime.now(UTC).replace(tzinfo=None)


#: what a database says when another session created the same table, column or version row a moment earlier
_CREATED_MEANWHILE = ("already exists", "duplicate column", "duplicate key value", "unique constraint failed")


def ensure_schema(engine: Engine, tries: int = 6) -> None:
    """Bring the warehouse to the newest schema revision (crm_kpis.history.migrate).

    The three compute tasks of a run start at once and all call this. PostgreSQL and MariaDB
    serialise the migration with a lock; on SQLite one of them can lose the race between its check
    and its CREATE ("table kpi_runs already exists", seen in a backfill through the scheduler).
    Every revision is safe to retry, so a loser checks again, after a pause that doubles: on a busy
    machine the winner may not have committed its revision yet, and an immediate check finds the
    column it added but not the revision that says so (three immediate tries all lost that way in a
    full test run, and the task's retry came minutes later).
    """
    for attempt in range(tries):
        try:
            _create_schema(engine)
            return
        except DBAPIError as exc:
            if attempt == tries - 1 or not any(s in str(exc).lower() for s in _CREATED_MEANWHILE):
                raise
            log.info("the warehouse schema was being created by another task; checking again")
            time.sleep(0.25 * 2 ** attempt)


def _create_schema(engine: Engine) -> None:
    upgrade(engine)


def stage_area(engine: Engine, run_id: str, result: AreaResult) -> None:
    """Stage one area's values under the run id (replacing an earlier try of the same task)."""
    payload = {
        "values": [v.as_dict() for v in result.values],
        "rows_read": result.rows_read,
        "rejected": result.rejected,
        "latest_source_ts": result.latest_source_ts.isoformat() if result.latest_source_ts else None,
        "latest_sync_ts": result.latest_sync_ts.isoformat() if result.latest_sync_ts else None,
        "latest_unsynced_ts": result.latest_unsynced_ts.isoformat() if result.latest_unsynced_ts else None,
        "unreadable": result.unreadable,
        "excluded": result.excluded,
        "untracked": result.untracked,
        "extremes": result.extremes,
        "repeats": result.repeats,
        "models": result.models,
        "broken": result.broken,
        # the definitions that computed the values (the compute task's code, not the publisher's)
        "definitions": {v.kpi_id: REGISTRY[v.kpi_id].definition_version for v in result.values if v.kpi_id in REGISTRY},
    }
    with engine.begin() as conn:
        conn.execute(delete(kpi_staging).where(and_(kpi_staging.c.run_id == run_id,
                                                    kpi_staging.c.area == result.area)))
        conn.execute(insert(kpi_staging).values(
            run_id=run_id, area=result.area, grain=result.period.grain,
            period_start=result.period.start_date, payload=json.dumps(payload), staged_at=_utcnow(),
        ))


@dataclass(frozen=True)
class PublishSummary:
    period: str
    kpis: int
    rows_written: int
    rows_replaced: int
    rows_rejected: int

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _period_lock(period: ReportPeriod) -> str:
    """The lock that serialises publishes of one period (different periods never wait for each other).

    Without it, two runs of one period at the same time could both delete, then both insert:
    the second would fail on the primary key. With it, the second waits and then replaces the
    first's rows, so the period ends with exactly one copy. SQLite serialises writers already.
    """
    return f"kpi_history:{period.grain}:{period.start_date.isoformat()}"


def publish_period(engine: Engine, period: ReportPeriod, run_id: str, areas: tuple[str, ...],
                   warnings: list[str] | None = None) -> PublishSummary:
    """Replace the period's history with this run's staged values, in one transaction."""
    with engine.connect() as conn:
        try:
            with conn.begin():
                if not locks.take(conn, _period_lock(period)):
                    raise PublishError(f"could not lock {period} for publishing within {locks.TIMEOUT_S} s")
                summary = _publish_locked(conn, period, run_id, areas, warnings or [])
        finally:
            locks.release(conn, _period_lock(period))
            conn.commit()
    return summary


def _publish_locked(conn: Connection, period: ReportPeriod, run_id: str, areas: tuple[str, ...],
                    warnings: list[str]) -> PublishSummary:
    staged = conn.execute(
        select(kpi_staging.c.area, kpi_staging.c.payload, kpi_staging.c.period_start, kpi_staging.c.grain)
        .where(kpi_staging.c.run_id == run_id)
    ).all()
    found = {row.area: row for row in staged}
    missing = [a for a in areas if a not in found]
    if missing:
        raise PublishError(f"run {run_id}: no staged results for {missing}; history of {period} unchanged")
    for row in staged:
        if row.grain != period.grain or row.period_start != period.start_date:
            raise PublishError(f"run {run_id}: staged {row.area} is for {row.grain} {row.period_start}, "
                               f"not {period}")
    computed_at = _utcnow()
    rows: list[dict[str, Any]] = []
    rows_read: dict[str, Any] = {}
    rejected: dict[str, Any] = {}
    latest: list[str] = []
    syncs: list[str] = []
    excluded: list[dict[str, Any]] = []
    unreadable: dict[str, Any] = {}
    untracked: dict[str, str] = {}
    models: dict[str, Any] = {}
    extremes: dict[str, Any] = {}
    for area in areas:
        payload = json.loads(found[area].payload)
        extremes.update(payload.get("extremes") or {})
        rows_read[area] = payload["rows_read"]
        rejected[area] = payload["rejected"]
        excluded.append(payload.get("excluded") or {})
        unreadable.update(payload.get("unreadable") or {})
        untracked.update(payload.get("untracked") or {})
        models.update(payload.get("models") or {})
        if payload["latest_source_ts"]:
            latest.append(payload["latest_source_ts"])
        if payload.get("latest_sync_ts"):
            syncs.append(payload["latest_sync_ts"])
        versions = payload.get("definitions") or {}
        for value in payload["values"]:
            rows.append({
                **value, "grain": period.grain, "period_start": period.start_date,
                "period_end": period.end_date, "timezone": period.tz, "run_id": run_id,
                "computed_at": computed_at, "definition_version": versions.get(value["kpi_id"]),
            })
    period_filter = and_(kpi_history.c.grain == period.grain, kpi_history.c.period_start == period.start_date)
    replaced = conn.execute(delete(kpi_history).where(period_filter)).rowcount
    if rows:
        conn.execute(insert(kpi_history), rows)
    conn.execute(delete(kpi_runs).where(and_(kpi_runs.c.grain == period.grain,
                                             kpi_runs.c.period_start == period.start_date)))
    kpis = len({r["kpi_id"] for r in rows})
    exclusions = merged_exclusions(excluded)
    conn.execute(insert(kpi_runs).values(
        grain=period.grain, period_start=period.start_date, timezone=period.tz, run_id=run_id,
        computed_at=computed_at, kpis=kpis, values_written=len(rows), rows_read=json.dumps(rows_read),
        rows_rejected=json.dumps(rejected),
        latest_source_ts=datetime.fromisoformat(max(latest)) if latest else None,
        latest_sync_ts=datetime.fromisoformat(min(syncs)) if syncs else None,
        warnings=json.dumps(warnings),
        rows_excluded=json.dumps(exclusions),
        unreadable=json.dumps(unreadable),
        not_tracked=json.dumps(untracked),
        models=json.dumps(models),
        extremes=json.dumps(extremes),
    ))
    conn.execute(delete(kpi_staging).where(kpi_staging.c.run_id == run_id))
    n_rejected = sum(n for rules in exclusions.values() for n in rules.values())
    summary = PublishSummary(period.key, kpis, len(rows), replaced or 0, n_rejected)
    log.info("published %s: %d KPIs, %d rows written, %d rows replaced", period, kpis, len(rows), replaced or 0)
    return summary


def merged_exclusions(parts: list[dict[str, dict[str, dict[str, Any]]]]) -> dict[str, dict[str, int]]:
    """Excluded source rows per table and rule, each row counted once however many extracts read it.

    Each part (an area's extracts) gives, per table and rule, the excluded keys with their row
    counts, or only a row count; keys are merged taking the most rows any extract excluded for a
    key, counts by their maximum.
    """
    keys: dict[tuple[str, str], dict[str, int]] = {}
    counts: dict[tuple[str, str], int] = {}
    for part in parts:
        for table, rules in part.items():
            for rule, slot in rules.items():
                if "keys" in slot:
                    merged = keys.setdefault((table, rule), {})
                    for key, n in slot["keys"].items():
                        merged[key] = max(merged.get(key, 0), int(n))
                if "rows" in slot:
                    counts[(table, rule)] = max(counts.get((table, rule), 0), int(slot["rows"]))
    out: dict[str, dict[str, int]] = {}
    for table, rule in sorted(set(keys) | set(counts)):
        n = max(sum(keys.get((table, rule), {}).values()), counts.get((table, rule), 0))
        if n:
            out.setdefault(table, {})[rule] = n
    return out


def read_history(engine: Engine, grain: str, starts: list[date], company_only: bool = False,
                 dimensions: tuple[str, ...] | None = None) -> pd.DataFrame:
    """History rows of the given periods (value, numerator, denominator, run); only the company-wide
    rows with `company_only`, only those dimensions' rows ("" the company's) with `dimensions`."""
    query = select(
        kpi_history.c.kpi_id, kpi_history.c.period_start, kpi_history.c.dimension, kpi_history.c.member,
        kpi_history.c.value, kpi_history.c.numerator, kpi_history.c.denominator, kpi_history.c.run_id,
        kpi_history.c.computed_at, kpi_history.c.note, kpi_history.c.coverage,
    ).where(and_(kpi_history.c.grain == grain, kpi_history.c.period_start.in_(starts)))
    if company_only:
        query = query.where(kpi_history.c.dimension == "")
    if dimensions is not None:
        query = query.where(kpi_history.c.dimension.in_(dimensions))
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).mappings().all())
    if frame.empty:
        frame = pd.DataFrame(columns=["kpi_id", "period_start", "dimension", "member", "value", "numerator",
                                      "denominator", "run_id", "computed_at", "note", "coverage"])
    return frame


def read_run(engine: Engine, period: ReportPeriod) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(kpi_runs).where(and_(
            kpi_runs.c.grain == period.grain, kpi_runs.c.period_start == period.start_date))).mappings().first()
    if row is None:
        return None
    out = dict(row)
    out["rows_read"] = json.loads(out["rows_read"])
    out["rows_rejected"] = json.loads(out["rows_rejected"])
    out["warnings"] = json.loads(out["warnings"] or "[]")
    for name in ("rows_excluded", "unreadable", "not_tracked", "models"):
        out[name] = json.loads(out.get(name) or "{}")
    return out


def _previous_starts(period: ReportPeriod, periods: int, step: int = 1) -> list[date]:
    """The start dates of the `periods` periods before this one, every `step`-th period back."""
    return [period.shift(-n * step).start_date for n in range(1, periods + 1)]


def recent_values(engine: Engine, period: ReportPeriod, periods: int) -> dict[str, list[float]]:
    """Company-wide values of each KPI in the `periods` periods before this one, oldest first."""
    frame = read_history(engine, period.grain, _previous_starts(period, periods), company_only=True)
    out: dict[str, list[float]] = {}
    for row in frame.sort_values("period_start").itertuples(index=False):
        if row.value is not None and not pd.isna(row.value):
            out.setdefault(row.kpi_id, []).append(float(row.value))
    return out


def read_staged(engine: Engine, run_id: str) -> dict[str, dict[str, Any]]:
    """The staged payloads of a run, by area."""
    with engine.connect() as conn:
        rows = conn.execute(select(kpi_staging.c.area, kpi_staging.c.payload)
                            .where(kpi_staging.c.run_id == run_id)).all()
    return {row.area: json.loads(row.payload) for row in rows}


def _same_slot_starts(period: ReportPeriod, periods: int) -> list[date]:
    """The start dates of the `periods` earlier periods a volume is compared with: the previous
    months for a month, the same weekday of the previous weeks for a day (a Saturday's usual is
    other Saturdays', not the week's)."""
    return _previous_starts(period, periods, step=7 if period.grain == "daily" else 1)


def recent_rows_read(engine: Engine, period: ReportPeriod, periods: int) -> list[dict[str, int]]:
    """Rows read per extract by the runs of the `periods` comparable periods before this one (those
    that exist): the previous months, or the same weekday of the previous weeks."""
    starts = _same_slot_starts(period, periods)
    with engine.connect() as conn:
        rows = conn.execute(select(kpi_runs.c.rows_read).where(and_(
            kpi_runs.c.grain == period.grain, kpi_runs.c.period_start.in_(starts)))).all()
    out = []
    for row in rows:
        merged: dict[str, int] = {}
        for area_counts in json.loads(row.rows_read).values():
            merged.update(area_counts)
        out.append(merged)
    return out


def recent_extremes(engine: Engine, period: ReportPeriod, periods: int) -> list[dict[str, dict[str, Any]]]:
    """The largest rows ("table.column" -> {max, median, rows, key}) of the runs of the `periods`
    periods before this one (those that exist and recorded them)."""
    starts = _previous_starts(period, periods)
    with engine.connect() as conn:
        rows = conn.execute(select(kpi_runs.c.extremes).where(and_(
            kpi_runs.c.grain == period.grain, kpi_runs.c.period_start.in_(starts)))).all()
    return [json.loads(row.extremes) for row in rows if row.extremes]


def rejected_by_extract(run: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Rejections per extract and rule; an extract read by two areas is counted once."""
    merged: dict[str, dict[str, int]] = {}
    for area_rejections in run["rows_rejected"].values():
        for extract, rules in area_rejections.items():
            for rule, n in rules.items():
                merged.setdefault(extract, {})[rule] = max(merged.get(extract, {}).get(rule, 0), n)
    return merged


def read_series(engine: Engine, kpi_id: str, grain: str, first: date, last: date, dimension: str = "",
                member: str | None = "") -> list[dict[str, Any]]:
    """One KPI's stored history for a grain and breakdown member, periods starting in [first, last],
    oldest first; `member=None` reads every member of the dimension (each row names its member).

    Each row carries the run that last wrote the period (the swap replaces a period's rows as a
    whole, so the row's run id is that run's). Every value is a bound parameter.
    """
    conditions = [kpi_history.c.kpi_id == kpi_id, kpi_history.c.grain == grain,
                  kpi_history.c.dimension == dimension, kpi_history.c.period_start >= first,
                  kpi_history.c.period_start <= last]
    if member is not None:
        conditions.append(kpi_history.c.member == member)
    query = (
        select(kpi_history.c.period_start, kpi_history.c.period_end, kpi_history.c.member, kpi_history.c.value,
               kpi_history.c.numerator, kpi_history.c.denominator, kpi_history.c.run_id,
               kpi_history.c.computed_at)
        .where(and_(*conditions))
        .order_by(kpi_history.c.period_start, kpi_history.c.member)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def newest_period(engine: Engine, kpi_id: str, grain: str) -> date | None:
    """The start of the newest period a KPI has stored for a grain (None: none yet)."""
    query = select(func.max(kpi_history.c.period_start)).where(
        and_(kpi_history.c.kpi_id == kpi_id, kpi_history.c.grain == grain, kpi_history.c.dimension == ""))
    with engine.connect() as conn:
        newest = conn.execute(query).scalar_one_or_none()
    return date.fromisoformat(newest) if isinstance(newest, str) else newest


def read_breakdowns(engine: Engine, kpi_id: str, grain: str) -> dict[str, list[str]]:
    """The breakdown dimensions and members a KPI has had in the stored history, sorted."""
    query = (
        select(kpi_history.c.dimension, kpi_history.c.member).distinct()
        .where(and_(kpi_history.c.kpi_id == kpi_id, kpi_history.c.grain == grain, kpi_history.c.dimension != ""))
        .order_by(kpi_history.c.dimension, kpi_history.c.member)
    )
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(query):
            out.setdefault(row.dimension, []).append(row.member)
    return out


def period_members(engine: Engine, period: ReportPeriod, dimension: str) -> list[str]:
    """The members one breakdown has in a period's stored history (any KPI), sorted."""
    query = (
        select(kpi_history.c.member).distinct()
        .where(and_(kpi_history.c.grain == period.grain, kpi_history.c.period_start == period.start_date,
                    kpi_history.c.dimension == dimension))
        .order_by(kpi_history.c.member)
    )
    with engine.connect() as conn:
        return [row.member for row in conn.execute(query)]


def read_members(engine: Engine, kpi_id: str, grain: str, dimension: str, starts: list[date]) -> list[dict[str, Any]]:
    """Every member's row of one breakdown, and the company-wide row (member ''), for the given
    periods: the side-by-side table of the history view. Every value is a bound parameter."""
    query = (
        select(kpi_history.c.period_start, kpi_history.c.dimension, kpi_history.c.member, kpi_history.c.value,
               kpi_history.c.numerator, kpi_history.c.denominator)
        .where(and_(kpi_history.c.kpi_id == kpi_id, kpi_history.c.grain == grain,
                    kpi_history.c.dimension.in_(["", dimension]), kpi_history.c.period_start.in_(starts)))
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]
