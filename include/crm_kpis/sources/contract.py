"""The source contract: what the extracts need of the reference tables, and which tables and columns
each SQL file reads. A declaration; crm_kpis.sources.contract_checks checks it against a database.

Why a declaration (`source_contract.yaml`) and one mechanism: a company's synced CRM lacks a
column, stores a timestamp as an integer, or writes "Completed " for completed. Each of those must
either be read correctly or be said plainly, naming table and column, with the KPIs it affects.
The same declaration drives the check command, the check at the start of every run, and the
typed reading of each extract, so they cannot disagree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from crm_kpis.paths import SQL_DIR

CONTRACT_FILE = Path(__file__).with_name("source_contract.yaml")
TYPES = ("id", "text", "timestamp", "date", "numeric", "int", "bool")


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    nullable: bool = False
    allowed: tuple[str, ...] = ()
    exclude_unknown: bool = True  # a value outside `allowed` excludes the row (else it is kept)
    #: a planned date (a term's end, a campaign's scheduled end) may lie in the future; any other
    #: timestamp records something that happened, so one later than its reading is excluded
    planned: bool = False


@dataclass(frozen=True)
class TableSpec:
    name: str
    database: str  # crm or helpdesk
    conn_id: str
    key: str | None
    columns: dict[str, ColumnSpec]


@dataclass(frozen=True)
class Signal:
    """Rows proving that the source records an input: in `table`, `column` not NULL (= `value`)."""

    name: str
    table: str
    says: str
    column: str | None = None
    value: str | None = None
    before: str | None = None  # only rows before the period's end count (a re-run sees the same)


@dataclass(frozen=True)
class Contract:
    tables: dict[str, TableSpec]
    signals: dict[str, Signal]

    def for_conn(self, conn_id: str) -> list[TableSpec]:
        return [t for t in self.tables.values() if t.conn_id == conn_id]

    def of_database(self, database: str) -> list[str]:
        """The reference tables of a database (crm, helpdesk), in the declaration's order."""
        return [t.name for t in self.tables.values() if t.database == database]


def _column(table_name: str, name: str, raw: Any) -> ColumnSpec:
    spec = raw if isinstance(raw, dict) else {"type": raw}
    type_text = str(spec["type"])
    nullable = type_text.endswith("?")
    type_name = type_text.rstrip("?")
    if type_name not in TYPES:
        raise ValueError(f"{CONTRACT_FILE.name}: column {table_name}.{name}: unknown type {type_name!r} (one of {TYPES})")
    allowed = tuple(str(v) for v in spec.get("allowed", ()))
    planned = bool(spec.get("planned", False))
    if planned and type_name not in ("timestamp", "date"):
        raise ValueError(f"{CONTRACT_FILE.name}: column {table_name}.{name}: `planned` is for timestamps and dates")
    return ColumnSpec(name, type_name, nullable, allowed, spec.get("unknown", "exclude") == "exclude", planned)


@lru_cache(maxsize=1)
def load_contract() -> Contract:
    raw = yaml.safe_load(CONTRACT_FILE.read_text(encoding="utf-8"))
    tables: dict[str, TableSpec] = {}
    for database, spec in raw["databases"].items():
        for name, tspec in spec["tables"].items():
            columns = {c: _column(name, c, v) for c, v in tspec["columns"].items()}
            tables[name] = TableSpec(name, database, spec["conn_id"], tspec.get("key"), columns)
    signals = {name: Signal(name=name, **spec) for name, spec in raw.get("tracking", {}).items()}
    for signal in signals.values():
        if signal.table not in tables:
            raise ValueError(f"{CONTRACT_FILE.name}: signal {signal.name} names unknown table {signal.table}")
    return Contract(tables, signals)


# --- which SQL reads which tables and columns ---------------------------------------------------
_FROM = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@lru_cache(maxsize=128)
def _sql_text(sql_name: str) -> str:
    """A SQL file's text without its `--` comments (read once per process)."""
    from crm_kpis.sources.sql_files import without_comments

    return without_comments((SQL_DIR / sql_name).read_text(encoding="utf-8"))


@lru_cache(maxsize=128)
def main_table(sql_name: str) -> str | None:
    """The table of a SQL file's outermost FROM (subqueries skipped): where its rows come from."""
    sql = _sql_text(sql_name)
    for match in re.finditer(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)", sql, re.IGNORECASE):
        before = sql[:match.start()]
        if before.count("(") == before.count(")"):
            return match.group(1)
    return None


_LEFT_JOIN = re.compile(r"\bLEFT\s+(?:OUTER\s+)?JOIN\s+([A-Za-z_]\w*)\s+(?:AS\s+)?([A-Za-z_]\w*)", re.IGNORECASE)
_QUALIFIED = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)(?:\s+AS\s+([A-Za-z_]\w*))?", re.IGNORECASE)


def outer_select_list(sql: str) -> str:
    """The select list of a SQL file's outermost SELECT (the one whose FROM is at depth 0)."""
    for match in re.finditer(r"\bFROM\b", sql, re.IGNORECASE):
        before = sql[:match.start()]
        if before.count("(") == before.count(")"):
            start = max((m.end() for m in re.finditer(r"\bSELECT\b", before, re.IGNORECASE)
                         if before[:m.start()].count("(") == before[:m.start()].count(")")), default=0)
            return before[start:]
    return ""


def select_items(select_list: str) -> list[str]:
    """A select list's items: split at the commas where no parenthesis is open."""
    items, depth, current = [], 0, []
    for char in select_list:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    return [*items, "".join(current)]


@lru_cache(maxsize=128)  # the coverage asks it per KPI of every run: callers must not change the dict
def lookups(sql_name: str) -> dict[str, frozenset[str]]:
    """The tables a SQL file only LEFT JOINs (never reads otherwise), each with the output columns it
    gives (`r.team AS rep_team` -> sales_reps: {rep_team}): a lookup whose outputs are only a KPI's
    breakdown dimensions is not an input the KPI needs, only its breakdown's labels."""
    sql = _sql_text(sql_name)
    aliases = {alias: table for table, alias in _LEFT_JOIN.findall(sql)}
    only_joined = {t for t in aliases.values()
                   if len([n for n in _FROM.findall(sql) if n == t]) == len([a for a, x in aliases.items() if x == t])}
    outputs: dict[str, set[str]] = {t: set() for t in only_joined}
    for alias, column, name in _QUALIFIED.findall(outer_select_list(sql)):
        if aliases.get(alias) in outputs:
            outputs[aliases[alias]].add(name or column)
    return {t: frozenset(o) for t, o in outputs.items()}


def breakdown_lookups(sql_name: str, dimensions: tuple[str, ...]) -> dict[str, frozenset[str]]:
    """The lookups of a SQL file that give only breakdown labels (table -> the dimensions it gives)."""
    return {t: out for t, out in lookups(sql_name).items() if out and out <= set(dimensions)}


@lru_cache(maxsize=128)
def tables_read(sql_name: str) -> tuple[str, ...]:
    """The reference tables a SQL file reads (its FROM and JOIN names that the contract knows)."""
    text = _sql_text(sql_name)
    known = load_contract().tables
    return tuple(sorted({name for name in _FROM.findall(text) if name in known}))


@lru_cache(maxsize=128)
def columns_read(sql_name: str) -> dict[str, tuple[str, ...]]:
    """Per table read, the contract columns the SQL file mentions (by name)."""
    words = set(_WORD.findall(_sql_text(sql_name)))
    contract = load_contract()
    return {t: tuple(c for c in contract.tables[t].columns if c in words) for t in tables_read(sql_name)}
