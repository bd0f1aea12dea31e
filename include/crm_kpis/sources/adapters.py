"""Adapters: a synced SaaS schema (Zendesk, HubSpot, Salesforce as Fivetran writes them) read as the
reference tables, so that the extracts, the KPIs, the history and the reports do not change.

Why SQL files and one mechanism: an adapter is a declaration (`include/sql/adapters/<name>/adapter.yaml`)
and one `SELECT` per reference table over the synced tables. An extract that reads reference
tables is run with those SELECTs as CTEs of the same names in front of it (`WITH tickets AS (…)`),
so nothing is created in the source and the period's filter still runs in the database. Jinja is
used for structure only: `{{ src.ticket }}` becomes the synced table's quoted, schema-qualified name;
values are always bound parameters.

What Fivetran's own packages treat as optional is optional here (`optional_columns`,
`optional_tables`): the SELECTs name the synced table as always, and where the database lacks an
optional column or table, `{{ src.<table> }}` becomes a derived table that supplies it as declared
(`(SELECT s.*, FALSE AS _fivetran_deleted FROM ticket s)`, or a typed empty table), so the SQL
files do not branch and only the KPIs that need what is absent lose their input. `synced_at` names
the stamp the connector writes on every row, for the freshness check (crm_kpis.sources.sync_progress);
`history_mode` the column that marks a row's current version where Fivetran keeps every version
(`_fivetran_active`): a table that has it is read as its current rows, as Fivetran's packages do.

The declaration also says what the layout cannot give: reference tables, columns and breakdowns it
never records (`not_recorded_tables`, `columns_not_recorded`, `breakdowns_not_recorded`), KPIs it
cannot compute (`kpis_not_recorded`), what a missing signal means in its terms (`signal_says`), and
the definitions it approximates (`approximations`, printed in the report's appendix when the
adapter is in use).

A SELECT that derives a table from a history (Zendesk's resolution from its status changes) may
bound what it derives, and the rows it returns, by the period's start, `:start`, the one parameter
every period extract binds: what has not changed since then looks the same to every extract of
that period, derived or not, or is wanted by none (tickets.sql says why for Zendesk). A reader that asks about all of history (a tracking signal)
binds `:start` to `WHOLE_HISTORY`, so that everything is derived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined
from sqlalchemy import inspect

from crm_kpis.paths import SQL_DIR
from crm_kpis.sources.contract import load_contract
from crm_kpis.sources.errors import AdapterError
from crm_kpis.sources.sql_files import without_comments

REFERENCE = "reference"
ADAPTERS_DIR = SQL_DIR / "adapters"
#: `:start` for a reader of all of history: before anything a source records, so nothing is left underived
WHOLE_HISTORY = {"start": datetime(1900, 1, 1)}


@dataclass(frozen=True)
class OptionalTable:
    """A synced table Fivetran's package treats as optional: absent, it reads as an empty table of
    these columns (contract types), and `why` says what that means for the report."""

    why: str
    columns: dict[str, str]
    #: breakdowns that need it: absent, they are left out (every row would be "unknown")
    breakdowns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncedAt:
    """Where the connector stamps each row it writes (crm_kpis.sources.sync_progress)."""

    column: str
    tables: tuple[str, ...]


class Layout(dict):
    """What a database holds of an adapter's synced tables: table -> its columns (a table absent:
    no key), both as the adapter's SQL names them. `tables` and `renamed` keep the database's own
    names where they differ (Salesforce synced with its original API names: `Opportunity`,
    `CreatedDate`)."""

    def __init__(self, columns: dict[str, frozenset[str]] | None = None) -> None:
        super().__init__(columns or {})
        self.tables: dict[str, str] = {}  # table -> the database's name for it, where it differs
        self.renamed: dict[str, dict[str, str]] = {}  # table -> column -> the database's name for it


def snake_case(name: str) -> str:
    """An API name as Fivetran's default naming writes it: `CreatedDate` -> `created_date`
    (`_fivetran_active` and names already in snake case stay as they are)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def api_case(name: str) -> str:
    """The original API name of a snake-case name: `created_date` -> `CreatedDate`."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


@dataclass(frozen=True)
class Adapter:
    name: str
    title: str
    database: str  # crm or helpdesk: the reference database it fills
    synced: dict[str, tuple[str, ...]]  # synced table -> the columns its SELECTs need
    tables: dict[str, str]  # reference table -> the SELECT's file name
    #: reference tables the synced layout does not have -> why: read as empty, their KPIs n/a
    not_recorded_tables: dict[str, str] = field(default_factory=dict)
    #: "table.column" of reference columns the layout never records -> why (the column reads as NULL,
    #: a tracking signal on it is untracked with that reason)
    columns_not_recorded: dict[str, str] = field(default_factory=dict)
    ids: str = "bigint"  # how the synced layout types its ids (an empty table's ids must join alike)
    #: breakdowns the layout cannot give (dimension -> why): their rows are left out
    breakdowns_not_recorded: dict[str, str] = field(default_factory=dict)
    #: value maps the SELECTs use through `{{ case(column, mappings.<name>) }}` (stage labels, types)
    mappings: dict[str, dict[str, str]] = field(default_factory=dict)
    signal_says: dict[str, str] = field(default_factory=dict)
    kpis_not_recorded: dict[str, str] = field(default_factory=dict)
    approximations: dict[str, str] = field(default_factory=dict)
    #: synced table -> column -> the SQL it reads as where the database lacks the column
    optional_columns: dict[str, dict[str, str]] = field(default_factory=dict)
    #: synced tables the database may lack: read as empty, with their columns' contract types
    optional_tables: dict[str, OptionalTable] = field(default_factory=dict)
    #: the sync's own stamp, for freshness (None: the layout has none)
    synced_at: SyncedAt | None = None
    #: Fivetran's history mode: a synced table with this column keeps every version of a row, and
    #: only the rows where it is true (or null: synced before history mode) are current
    history_mode: str | None = None
    #: the connector may keep the source's own API names (`Opportunity.CreatedDate`) instead of
    #: snake case: such a table is read under the snake-case names the SQL uses
    original_names: bool = False
    #: reference tables its SELECTs derive at a cost (a history aggregated): the extracts of one task
    #: that read one are run as one statement, so that the database derives it once (read_together)
    read_together: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        return ADAPTERS_DIR / self.name

    def reason(self, table: str) -> str:
        return f"not recorded by {self.name} ({self.not_recorded_tables[table]})"

    def signal_not_recorded(self, signal: Any) -> str | None:
        """Why the layout can never satisfy a tracking signal (its table or column is not recorded)."""
        if signal.table in self.not_recorded_tables:
            return self.reason(signal.table)
        where = f"{signal.table}.{signal.column}"
        if signal.column and where in self.columns_not_recorded:
            return f"not recorded by {self.name} ({self.columns_not_recorded[where]})"
        return None

    def select(self, table: str, dialect: Any, schema: str | None = None, layout: Layout | None = None) -> str:
        """The reference table's SELECT with the synced tables' names quoted for the dialect (an
        empty SELECT of the table's columns, typed for the dialect, where the layout has none).

        `layout` is what the database holds (`synced_layout`): an optional table or column it lacks
        is supplied as declared. Without it, every synced table and column is taken as present.
        """
        if table in self.not_recorded_tables:
            return empty_select(table, dialect, self.ids)
        context: dict[str, Any] = {
            "src": self._sources(dialect, schema, layout), "mappings": self.mappings,
            "null": lambda kind: typed_null(kind, dialect, self.ids), "day": lambda column: day_of(column, dialect),
            "case": case_of, "segment": segment_of, "as_id": lambda column: as_id(column, dialect, self.ids),
            "as_text": lambda column: as_text(column, dialect),
            "concat": lambda *parts: concat_of(parts, dialect), "number": number_of,
        }
        # `{{ part('engagement_times') }}`: a SELECT that several files share, from `_<name>.sql`
        context["part"] = lambda name: self._render(f"_{name}.sql", context)
        return self._render(self.tables[table], context)

    def _render(self, file: str, context: dict[str, Any]) -> str:
        body = without_comments((self.folder / file).read_text(encoding="utf-8"))
        return _jinja().from_string(body).render(**context)

    def _value(self, sql: str, dialect: Any) -> str:
        """An optional column's declared value (`FALSE`, `{{ null('timestamp') }}`) for the dialect."""
        return _jinja().from_string(sql).render(null=lambda kind: typed_null(kind, dialect, self.ids))

    @property
    def every_synced_table(self) -> tuple[str, ...]:
        return (*self.synced, *(t for t in self.optional_tables if t not in self.synced))

    @property
    def inspected_tables(self) -> tuple[str, ...]:
        """The synced tables a layout looks for: those the SELECTs read, and those the sync stamp is
        read from (which need not be read otherwise: Google Ads' account_history)."""
        stamped = self.synced_at.tables if self.synced_at else ()
        return (*self.every_synced_table, *(t for t in stamped if t not in self.every_synced_table))

    def hidden_breakdowns(self, layout: Layout | None) -> dict[str, str]:
        """The breakdowns this layout cannot give (dimension -> why): those it never records, and
        those whose optional table the database lacks (all of them where `layout` is None: the
        declaration alone)."""
        out = dict(self.breakdowns_not_recorded)
        unusable = self.unusable_tables(layout) if layout is not None else {
            t: o.why for t, o in self.optional_tables.items()}
        out.update({dim: why for t, why in unusable.items() for dim in self.optional_tables[t].breakdowns
                    if t in self.optional_tables})
        return out

    def unusable_tables(self, layout: Layout) -> dict[str, str]:
        """The optional tables the database does not have in the declared shape, with why: absent,
        or a table of that name without the declared columns (Salesforce's `opportunity_history`
        is the stage history in one sync and the history-mode copy of `opportunity` in another)."""
        out = {}
        for name, table in self.optional_tables.items():
            if name not in layout:
                out[name] = table.why
                continue
            needed = [c for c in table.columns if c not in self.optional_columns.get(name, {})]
            if lacking := [c for c in needed if c not in layout[name]]:
                out[name] = f"{table.why}; the synced {name} has no {', '.join(lacking)}, so it is another table"
        return out

    def missing_optional(self, layout: Layout) -> dict[str, str]:
        """What of the optional part the database lacks, each with what it reads as instead:
        {"group_member": why, "ticket._fivetran_deleted": "read as FALSE"}."""
        out = self.unusable_tables(layout)
        for t, columns in self.optional_columns.items():
            if t in layout and t not in out:
                out.update({f"{t}.{c}": f"read as {_jinja().from_string(v).render(null=lambda _: 'NULL')}"
                            for c, v in columns.items() if c not in layout[t]})
        return out

    def _sources(self, dialect: Any, schema: str | None, layout: Layout | None) -> dict[str, str]:
        """`src.<table>` for each synced table: its quoted name, or a derived table where the
        database lacks the optional table or some of its optional columns."""
        if layout is None:
            return _names(self.every_synced_table, dialect, schema)
        actual = _names([layout.tables.get(t, t) for t in self.every_synced_table], dialect, schema)
        names = {t: actual[layout.tables.get(t, t)] for t in self.every_synced_table}
        out = {}
        unusable = self.unusable_tables(layout)
        for name, quoted in names.items():
            if name in unusable:  # an empty table of the declared columns and the optional ones
                declared = self.optional_tables[name].columns
                extra = {c: self._value(v, dialect) for c, v in self.optional_columns.get(name, {}).items()
                         if c not in declared}
                out[name] = "(" + _empty_of(declared, dialect, self.ids, extra) + ")"
                continue
            absent = {c: v for c, v in self.optional_columns.get(name, {}).items() if c not in layout.get(name, ())}
            supplied = "".join(f", {self._value(v, dialect)} AS {dialect.identifier_preparer.quote_identifier(c)}"
                               for c, v in absent.items())
            active = self.history_mode if self.history_mode in layout.get(name, ()) else None
            current = f" WHERE COALESCE(s.{dialect.identifier_preparer.quote(active)}, TRUE) = TRUE" if active else ""
            renamed = layout.renamed.get(name)
            if renamed:  # the database's own names, read under the SQL's
                q = dialect.identifier_preparer.quote_identifier
                listed = ", ".join(f"s.{q(renamed.get(c, c))} AS {q(c)}" for c in sorted(layout.get(name, ())))
                out[name] = f"(SELECT {listed}{supplied} FROM {quoted} s{current})"
            else:
                out[name] = f"(SELECT s.*{supplied} FROM {quoted} s{current})" if absent or active else quoted
        return out


def available() -> tuple[str, ...]:
    """Every adapter there is (`reference` first: the product's own schema, no SQL in front)."""
    return (REFERENCE, *sorted(p.parent.name for p in ADAPTERS_DIR.glob("*/adapter.yaml")))


@lru_cache(maxsize=16)
def load_adapter(name: str) -> Adapter:
    path = ADAPTERS_DIR / name / "adapter.yaml"
    if name == REFERENCE or not re.fullmatch(r"[a-z0-9_]+", name) or not path.exists():
        raise AdapterError(f"adapter {name!r} does not exist; the adapters are: {', '.join(available())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Adapter(
        name=name, title=raw["title"], database=raw["database"],
        synced={t: tuple(c) for t, c in raw["synced"].items()}, tables=dict(raw["tables"]),
        not_recorded_tables=dict(raw.get("not_recorded_tables") or {}), ids=str(raw.get("ids", "bigint")),
        columns_not_recorded=dict(raw.get("columns_not_recorded") or {}),
        breakdowns_not_recorded=dict(raw.get("breakdowns_not_recorded") or {}),
        mappings={name: {str(k): str(v) for k, v in m.items()} for name, m in (raw.get("mappings") or {}).items()},
        signal_says=dict(raw.get("signal_says") or {}),
        kpis_not_recorded=dict(raw.get("kpis_not_recorded") or {}),
        approximations=dict(raw.get("approximations") or {}),
        optional_columns={t: {str(c): str(v) for c, v in cols.items()}
                          for t, cols in (raw.get("optional_columns") or {}).items()},
        optional_tables={t: OptionalTable(why=str(o["why"]), columns={str(c): str(k) for c, k in o["columns"].items()},
                                          breakdowns=tuple(o.get("breakdowns") or ()))
                         for t, o in (raw.get("optional_tables") or {}).items()},
        synced_at=SyncedAt(str(raw["synced_at"]["column"]), tuple(raw["synced_at"]["tables"]))
        if raw.get("synced_at") else None,
        history_mode=raw.get("history_mode"),
        original_names=bool(raw.get("original_names", False)),
        read_together=tuple(raw.get("read_together") or ()),
    )


#: the layouts inspected within `one_inspection()` (None outside it: every call inspects)
_INSPECTED: ContextVar[dict[tuple[str, str | None, str], Layout] | None] = ContextVar("_INSPECTED", default=None)


@contextmanager
def one_inspection() -> Iterator[None]:
    """Inspect each synced database once while inside: one area's computation checks the contract,
    reads its extracts, asks its tracking signals and its sync stamp through the same adapter, and
    an inspection is a query per synced table (17 ms for Zendesk on PostgreSQL, about 16 times per
    area). Outside, a layout is inspected afresh, so a changed schema is always seen by the next run."""
    token = _INSPECTED.set({})
    try:
        yield
    finally:
        _INSPECTED.reset(token)


def synced_layout(engine: Any, adapter: Adapter, schema: str | None) -> Layout:
    """The adapter's synced tables the database holds, with their columns (one inspection), under
    the names the adapter's SQL uses (an adapter with `original_names` finds `Opportunity` and
    `CreatedDate` where its SQL says `opportunity` and `created_date`)."""
    inspected = _INSPECTED.get()
    key = (engine.url.render_as_string(hide_password=True), schema, adapter.name)
    if inspected is not None and key in inspected:
        return inspected[key]
    layout = _inspect_layout(engine, adapter, schema)
    if inspected is not None:
        inspected[key] = layout
    return layout


def _inspect_layout(engine: Any, adapter: Adapter, schema: str | None) -> Layout:
    inspector = inspect(engine)
    existing = set(inspector.get_table_names(schema=schema)) | set(inspector.get_view_names(schema=schema))
    layout = Layout()
    for table in adapter.inspected_tables:
        actual = table if table in existing else api_case(table) if adapter.original_names else None
        if actual not in existing:
            continue
        if actual != table:
            layout.tables[table] = actual
        columns = [c["name"] for c in inspector.get_columns(actual, schema=schema)]
        renamed = {snake_case(c): c for c in columns if snake_case(c) != c} if adapter.original_names else {}
        if renamed:
            layout.renamed[table] = renamed
        layout[table] = frozenset(snake_case(c) if renamed else c for c in columns)
    return layout


@lru_cache(maxsize=1)
def _jinja() -> Environment:
    return Environment(undefined=StrictUndefined, autoescape=False)  # noqa: S701 - SQL, not HTML


def _names(synced: Any, dialect: Any, schema: str | None) -> dict[str, str]:
    preparer = dialect.identifier_preparer
    prefix = f"{preparer.quote_schema(schema)}." if schema else ""
    # always quoted: `user` and `group` are reserved words, and a synced name keeps its case
    return {name: prefix + preparer.quote_identifier(name) for name in synced}


#: the contract's column types as each dialect casts a NULL (SQLite needs none); `id` follows the layout
_CASTS = {
    "postgresql": {"text": "TEXT", "timestamp": "TIMESTAMP", "date": "DATE", "numeric": "NUMERIC", "int": "INTEGER",
                   "bool": "BOOLEAN", "id:bigint": "BIGINT", "id:text": "TEXT"},
    "mysql": {"text": "CHAR", "timestamp": "DATETIME", "date": "DATE", "numeric": "DECIMAL(18,4)", "int": "SIGNED",
              "bool": "SIGNED", "id:bigint": "SIGNED", "id:text": "CHAR"},
}


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def case_of(column: str, mapping: dict[str, str]) -> str:
    """`{{ case('s.label', mappings.stages) }}`: the declared values mapped, any other kept as it is."""
    whens = " ".join(f"WHEN {_literal(k)} THEN {_literal(v)}" for k, v in mapping.items())
    return f"CASE {column} {whens} ELSE {column} END"


#: the customer segment from a headcount, for the CRMs that record none (upper bounds, exclusive)
HEADCOUNT_SEGMENTS = ((100, "smb"), (1000, "mid_market"))


def segment_of(column: str) -> str:
    """`{{ segment('a.number_of_employees') }}`: smb below 100 employees, mid_market below 1,000,
    else enterprise; no headcount, no segment (the breakdown's unknown)."""
    bands = " ".join(f"WHEN {column} < {bound} THEN {_literal(name)}" for bound, name in HEADCOUNT_SEGMENTS)
    return f"CASE WHEN {column} IS NULL THEN NULL {bands} ELSE 'enterprise' END"


def number_of(key: str, numbers: dict[str, str], default: str) -> str:
    """`{{ number('c.currency', mappings.minor_units, 100) }}`: a declared number looked up by the
    key's lower case (a currency's minor units per unit: cents 100, yen 1, fils 1000), else
    `default`; the numbers are the declaration's, never text from the data."""
    whens = " ".join(f"WHEN {_literal(k.lower())} THEN {float(v)!r}" for k, v in numbers.items())
    return f"CASE LOWER({key}) {whens} ELSE {float(default)!r} END"


def concat_of(parts: tuple[str, ...], dialect: Any) -> str:
    """`{{ concat("';'", 'w.ids', "';'") }}`: text joined on every dialect (MySQL's `||` is OR)."""
    return f"CONCAT({', '.join(parts)})" if dialect.name == "mysql" else "(" + " || ".join(parts) + ")"


def as_id(column: str, dialect: Any, ids: str) -> str:
    """`{{ as_id('c.property_hubspot_owner_id') }}`: an id typed as the layout's ids, where a synced
    column may hold it as text in one table and as a number in another (a property HubSpot syncs
    with its own type); SQLite compares either way and keeps the value as it is."""
    casts = _CASTS.get(dialect.name)
    return f"CAST({column} AS {casts[f'id:{ids}']})" if casts else column


def as_text(column: str, dialect: Any) -> str:
    """`{{ as_text("'csat'") }}`: a value as text on every dialect (MySQL casts to CHAR); also how a
    stack compares ids that one connector keeps as text and another as numbers."""
    return f"CAST({column} AS {'CHAR' if dialect.name == 'mysql' else 'TEXT'})"


def qualified(table: str, dialect: Any, schema: str | None) -> str:
    """A synced table's quoted, schema-qualified name (what `{{ src.<table> }}` names)."""
    return _names((table,), dialect, schema)[table]


def sql_template(source: str) -> Any:
    """A Jinja template of SQL structure (names and SELECTs; values are always bound)."""
    return _jinja().from_string(source)


def day_of(column: str, dialect: Any) -> str:
    """`{{ day('o.created_date') }}`: the calendar day of a timestamp or date, comparable between
    two columns on every dialect (SQLite: 'YYYY-MM-DD' text)."""
    return f"CAST({column} AS DATE)" if dialect.name == "postgresql" else f"DATE({column})"


def typed_as(value: str, kind: str, dialect: Any, ids: str) -> str:
    """A value cast to a contract type for the dialect (SQLite compares either way: as it is)."""
    casts = _CASTS.get(dialect.name)
    return f"CAST({value} AS {casts[f'id:{ids}' if kind == 'id' else kind]})" if casts else value


def typed_null(kind: str, dialect: Any, ids: str) -> str:
    """`{{ null('timestamp') }}` in an adapter's SQL: a NULL of a contract type, cast for the dialect
    (a column the layout does not record, which the extracts still compare or join)."""
    return typed_as("NULL", kind, dialect, ids)


def empty_select(table: str, dialect: Any, ids: str) -> str:
    """A SELECT of the reference table's columns that returns no row, each column typed as the
    contract says (a bare NULL is text on PostgreSQL and would not compare with a timestamp)."""

    return _empty_of({name: spec.type for name, spec in load_contract().tables[table].columns.items()}, dialect, ids)


def _empty_of(columns: dict[str, str], dialect: Any, ids: str, values: dict[str, str] | None = None) -> str:
    """A SELECT of these columns (name -> contract type; `values`: name -> SQL) that returns no row."""
    preparer = dialect.identifier_preparer
    typed = [f"{typed_null(kind, dialect, ids)} AS {preparer.quote_identifier(name)}" for name, kind in columns.items()]
    typed += [f"{sql} AS {preparer.quote_identifier(name)}" for name, sql in (values or {}).items()]
    return f"SELECT {', '.join(typed)}{' FROM DUAL' if dialect.name == 'mysql' else ''} WHERE 1 = 0"
