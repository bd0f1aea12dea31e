"""The source contract checked against a database: missing tables and columns, wrong types, values
outside their allowed set, tracking signals, and what a synced database lacks for its adapter.

Why apart from the declaration: the contract and the adapters are data; these checks read them, and
name the KPIs each problem affects, so they sit above both and above the extracts' registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, column, func, inspect, literal, select, table, text, types

from crm_kpis.kpis import REGISTRY
from crm_kpis.sources.adapters import WHOLE_HISTORY
from crm_kpis.sources.contract import Signal, TableSpec, columns_read, load_contract
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.typed_read import FUTURE_TOLERANCE_HOURS, latest_possible


def affected_kpis(table_name: str, column_name: str | None = None) -> list[str]:
    """KPI ids whose extracts read the table (and, when given, mention the column)."""

    extracts = {e.name for e in EXTRACTS.values()
                if table_name in columns_read(e.sql)
                and (column_name is None or column_name in columns_read(e.sql)[table_name])}
    return sorted(k.id for k in REGISTRY.values() if extracts & set(k.inputs))


# --- the checks ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Problem:
    level: str  # "error": the runs cannot read the table; "warning": values will be excluded or kept
    table: str
    column: str | None
    message: str
    fix: str
    kpis: tuple[str, ...] = field(default=())

    def line(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        affected = f" Affects {len(self.kpis)} KPIs: {', '.join(self.kpis)}." if self.kpis else ""
        return f"{self.level.upper()} {where}: {self.message} Fix: {self.fix}{affected}"


#: SQLAlchemy type classes that can hold each contract type without loss of meaning.
_COMPATIBLE: dict[str, tuple[type, ...]] = {
    "timestamp": (types.DateTime, types.String, types.Text),  # SQLite keeps timestamps as text
    "date": (types.Date, types.DateTime, types.String, types.Text),
    "numeric": (types.Numeric, types.Integer, types.Float),
    "int": (types.Integer, types.Numeric),
    "bool": (types.Boolean, types.Integer),
    "text": (types.String, types.Text, types.Enum),
    "id": (types.Integer, types.String, types.Text, types.Numeric),
}


def _type_ok(expected: str, actual: Any) -> bool:
    if isinstance(actual, types.NullType):  # SQLite without a declared type: the values decide
        return True
    if expected == "timestamp" and isinstance(actual, types.Date) and not isinstance(actual, types.DateTime):
        return False  # a DATE loses the time of day
    return isinstance(actual, _COMPATIBLE[expected])


def _schema_problems(spec: TableSpec, present: dict[str, Any] | None, needed: Iterable[str]) -> list[Problem]:
    if present is None:
        return [Problem("error", spec.name, None, f"table {spec.name} is missing from {spec.database}.",
                        f"create it (DDL in include/sql/schema/<dialect>/{spec.database}.sql; it may stay empty "
                        "if the company does not use it) or point the connection at the right database/schema.",
                        tuple(affected_kpis(spec.name)))]
    out = []
    for name in needed:
        col = spec.columns[name]
        if name not in present:
            out.append(Problem("error", spec.name, name, f"column {name} ({col.type}) is missing.",
                               f"add it{' (it may be NULL everywhere if not tracked)' if col.nullable else ''}.",
                               tuple(affected_kpis(spec.name, name))))
        elif not _type_ok(col.type, present[name]):
            out.append(Problem("warning", spec.name, name,
                               f"stored as {present[name]}, expected {col.type}; values that cannot be read as "
                               f"{col.type} are excluded and counted, and a mostly unreadable column stops the run.",
                               f"store it as {col.type} or cast it in a view.",
                               tuple(affected_kpis(spec.name, name))))
    return out


def schema_problems(engine: Engine, tables: dict[str, Iterable[str]] | None = None,
                    conn_id: str | None = None) -> list[Problem]:
    """Missing tables and columns, and declared types that do not match (from the database's catalogue).

    `tables` limits the check to what some extracts read (table → columns); by default every table
    of the connection's database and every declared column.
    """
    contract = load_contract()
    if tables is None:
        tables = {t.name: tuple(t.columns) for t in contract.tables.values() if conn_id is None or t.conn_id == conn_id}
    inspector = inspect(engine)
    existing = set(inspector.get_table_names()) | set(inspector.get_view_names())
    problems: list[Problem] = []
    for name, needed in sorted(tables.items()):
        spec = contract.tables[name]
        present = ({c["name"]: c["type"] for c in inspector.get_columns(name)} if name in existing else None)
        problems.extend(_schema_problems(spec, present, needed))
    return problems


def value_problems(engine: Engine, spec: TableSpec, present: set[str],
                   tolerance_hours: float = FUTURE_TOLERANCE_HOURS) -> list[Problem]:
    """NULLs in NOT NULL columns, values outside `allowed`, and times that have not happened yet
    (whole table: for the check command)."""
    out: list[Problem] = []
    src = table(spec.name, *[column(c) for c in present])
    latest = latest_possible(None, tolerance_hours).to_pydatetime().replace(microsecond=0)
    bound = literal(latest, types.DateTime())  # typed: PostgreSQL compares no date with a varchar
    with engine.connect() as conn:
        for col in spec.columns.values():
            if col.name not in present:
                continue
            c = src.c[col.name]
            if col.type in ("timestamp", "date") and not col.planned:
                ahead = conn.execute(select(func.count()).select_from(src).where(c > bound)).scalar_one()
                if ahead:
                    out.append(Problem("warning", spec.name, col.name,
                                       f"{ahead:,} rows are later than {latest:%Y-%m-%d %H:%M} UTC (now plus {tolerance_hours:g} h): "
                                       "a time that has not happened yet; such rows are excluded and counted "
                                       f"(future_{col.name}).",
                                       "correct them in the source (a year typed wrong, a placeholder date); a "
                                       "source clock or zone ahead by hours: raise the connection's extra "
                                       "future_tolerance_hours.",
                                       tuple(affected_kpis(spec.name, col.name))))
            if not col.nullable:
                nulls = conn.execute(select(func.count()).select_from(src).where(c.is_(None))).scalar_one()
                if nulls:
                    out.append(Problem("warning", spec.name, col.name, f"{nulls:,} rows are NULL; it is declared NOT NULL.",
                                       "fill it in the source; such rows are excluded or counted as missing.",
                                       tuple(affected_kpis(spec.name, col.name))))
            if col.allowed:
                rows = conn.execute(select(c, func.count()).select_from(src).where(c.is_not(None)).group_by(c)).all()
                other = {str(v): n for v, n in rows if str(v) not in col.allowed}
                if other:
                    shown = ", ".join(f"{v!r} ({n:,})" for v, n in sorted(other.items(), key=lambda x: -x[1])[:8])
                    what = "excluded and counted" if col.exclude_unknown else "kept as their own breakdown members"
                    out.append(Problem("warning", spec.name, col.name,
                                       f"values outside {list(col.allowed)}: {shown}; such rows are {what}.",
                                       "map them to the allowed values in the source or in a view.",
                                       tuple(affected_kpis(spec.name, col.name))))
    return out


def check_database(engine: Engine, conn_id: str, tolerance_hours: float = FUTURE_TOLERANCE_HOURS) -> list[Problem]:
    """Everything the check command reports for one connection: schema, then values."""
    problems = schema_problems(engine, conn_id=conn_id)
    missing_tables = {p.table for p in problems if p.column is None}
    inspector = inspect(engine)
    for spec in load_contract().for_conn(conn_id):
        if spec.name in missing_tables:
            continue
        present = {c["name"] for c in inspector.get_columns(spec.name)} & set(spec.columns)
        problems.extend(value_problems(engine, spec, present, tolerance_hours))
    return problems


# --- tracking signals ----------------------------------------------------------------------------
def signal_present(engine: Engine, signal: Signal, params: dict[str, Any], source: Any = None) -> bool:
    """Whether the source has at least one row proving the signal before the period's end.

    A SQLAlchemy Core query over our own declared names, values bound; `LIMIT 1` (compiled for the
    dialect) stops at the first row, so a tracked input costs an index probe. Through the
    connection's stack of adapters (`source`), the table is their SELECT as a CTE of the same name.
    A SELECT that derives only what changed since the period's start (`:start`, crm_kpis.sources.adapters)
    is asked as the period's extracts ask it first: a row found there is a real one, and found so
    at the cost of the period; only if none is, all of history is derived (WHOLE_HISTORY).
    """
    spec = load_contract().tables[signal.table]
    names = [n for n in dict.fromkeys((signal.column, signal.before)) if n]
    sql = source.stack.select(signal.table, engine) if source is not None and source.stack is not None else None
    windows: list[dict[str, Any]] = [{}]
    if sql is not None and re.search(r"(?<!:):start\b", sql):
        windows = [*([{"start": params["start"]}] if "start" in params else []), WHOLE_HISTORY]
    for window in windows:
        src: Any = table(signal.table, *[column(n) for n in names]) if sql is None else \
            text(sql).bindparams(**window).columns(*[column(n) for n in names]).cte(signal.table)
        query = select(literal(1)).select_from(src)
        if signal.column:
            query = query.where(src.c[signal.column].is_not(None))
            if signal.value is not None:
                query = query.where(src.c[signal.column] == signal.value)
        if signal.before:
            bound = params["end_date"] if spec.columns[signal.before].type == "date" else params["end"]
            query = query.where(src.c[signal.before] < bound)
        with engine.connect() as conn:
            if conn.execute(query.limit(1)).first() is not None:
                return True
    return False
