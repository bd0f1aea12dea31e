"""A source connection's stack: which synced connector fills each reference table of its database.

Why: a company syncs several connectors into one warehouse, one schema each (HubSpot for leads and
deals, Stripe for orders, Google Ads and Facebook Ads for spend, Zendesk for tickets). The stack is
declared in the connection's extra and read by one mechanism:

    {"adapters": [{"adapter": "fivetran_hubspot", "schema": "hubspot"},
                  {"adapter": "fivetran_google_ads", "schema": "google_ads"},
                  {"adapter": "fivetran_facebook_ads", "schema": "facebook_ads",
                   "tables": ["marketing_spend"]}]}

Each part fills every reference table its adapter has a SELECT for, or only those it lists under
`tables`; a part that lists a table takes it from the parts that do not. A table filled by several parts is the UNION ALL of their rows, which only a table
without a key may be (spend from two ad networks adds up; two connectors' customers would be two
sets of ids, so a keyed table must come from one part, and the stack says which when it is
ambiguous). A table no part fills is read as empty: the KPIs that need it are n/a with the reason
the parts' declarations give. The parts are joined in SQL, so they live in one database (one
connection); the older form, one `adapter` and one `schema`, is a stack of one part.

Customers are one entity across connectors. Where one part fills `customers` (Stripe's `cus_…`)
and another refers to customers by its own ids (HubSpot's leads and deals name a company), the
referring part declares how its ids match the stack's, through a synced table of its own schema
that records the other connector's id (a custom property the company's Stripe sync writes):

    {"adapter": "fivetran_hubspot", "schema": "hubspot",
     "customer_ids": {"table": "company", "column": "property_stripe_customer_id"}}

Its references (`leads.customer_id`, `opportunities.customer_id`: a column named after the key of
`customers`) are read through that column; a reference with no match reads as no customer, and
`sources check` counts those (`Stack.customer_matches`), so a join that finds nothing is said,
never a silent zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crm_kpis.sources.adapters import (
    Adapter,
    Layout,
    as_text,
    empty_select,
    load_adapter,
    qualified,
    sql_template,
    synced_layout,
    typed_as,
)
from crm_kpis.sources.contract import load_contract
from crm_kpis.sources.errors import AdapterError, SourceConfigError
from crm_kpis.sources.sql_files import without_comments

_LEADING_WITH = re.compile(r"^\s*WITH\s+", re.IGNORECASE)


@dataclass(frozen=True)
class CustomerMatch:
    """How a part's customer ids become the stack's: `table.column` (a synced table of the part's
    schema, keyed by `key`) holds, for each of the part's ids, the id of the connector that fills
    `customers`."""

    table: str
    column: str
    key: str = "id"

    def describe(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass(frozen=True)
class Part:
    """One synced connector of a stack: its adapter, the schema it was synced into, and (`only`)
    the reference tables it is limited to, where the stack says so."""

    adapter: Adapter
    schema: str | None = None
    only: frozenset[str] | None = None
    customer_ids: CustomerMatch | None = None

    @property
    def fills(self) -> tuple[str, ...]:
        return tuple(t for t in self.adapter.tables if self.only is None or t in self.only)

    def where(self) -> str:
        return f"{self.adapter.name} (schema {self.schema})" if self.schema else self.adapter.name

    def layout(self, engine: Any) -> Layout:
        return synced_layout(engine, self.adapter, self.schema)


def part_problems(part: Part, engine: Any) -> list[str]:
    """What the database lacks for one part's adapter (see `Stack.problems`)."""
    adapter, layout = part.adapter, part.layout(engine)
    unusable = adapter.unusable_tables(layout)
    where = f" (schema {part.schema})" if part.schema else ""
    out = []
    for synced_table in adapter.every_synced_table:
        if synced_table in unusable:
            continue
        if synced_table not in layout:
            out.append(f"{adapter.name} needs the synced table {synced_table}{where}; it is missing")
            continue
        optional = adapter.optional_columns.get(synced_table, {})
        out.extend(f"{adapter.name} needs {synced_table}.{c}{where}; the column is missing"
                   for c in adapter.synced.get(synced_table, ()) if c not in optional and c not in layout[synced_table])
    if (match := part.customer_ids) is not None:
        columns = _columns_of(engine, match.table, part.schema)
        if columns is None:
            out.append(f"{adapter.name} matches customers through {match.describe()}{where}; the table is missing")
        else:
            out.extend(f"{adapter.name} matches customers through {match.describe()}{where}; its {c} column is missing"
                       for c in (match.key, match.column) if c not in columns)
    return out


def _columns_of(engine: Any, table: str, schema: str | None) -> frozenset[str] | None:
    """A table's columns in the database (None: no such table)."""
    from sqlalchemy import inspect

    inspector = inspect(engine)
    if table not in inspector.get_table_names(schema=schema) and table not in inspector.get_view_names(schema=schema):
        return None
    return frozenset(c["name"] for c in inspector.get_columns(table, schema=schema))


#: the reference column by which other tables refer to a customer (the key of `customers`)
CUSTOMER_REF = "customer_id"


@dataclass(frozen=True)
class Stack:
    database: str  # crm or helpdesk: the reference database its parts fill
    parts: tuple[Part, ...]

    @property
    def name(self) -> str:
        return " + ".join(p.adapter.name for p in self.parts)

    @property
    def title(self) -> str:
        return " + ".join(p.adapter.title for p in self.parts)

    def read_together(self) -> frozenset[str]:
        """The reference tables a part derives at a cost (its adapter's `read_together`) and fills here."""
        return frozenset(t for p in self.parts for t in p.adapter.read_together if any(f is p for f in self.fillers(t)))

    def fillers(self, table: str) -> tuple[Part, ...]:
        """The parts that fill the table: those that list it under `tables`, else every part whose
        adapter has a SELECT for it."""
        parts = tuple(p for p in self.parts if table in p.fills)
        listed = tuple(p for p in parts if p.only is not None)
        return listed or parts

    def filled(self) -> dict[str, tuple[Part, ...]]:
        """Every reference table of the database -> the parts that fill it (none: read as empty)."""
        return {t: self.fillers(t) for t in load_contract().of_database(self.database)}

    def not_recorded(self, table: str) -> str | None:
        """Why no part fills the table, in the parts' own terms (None where one does)."""
        if self.fillers(table):
            return None
        said = [(p.adapter.name, p.adapter.not_recorded_tables[table]) for p in self.parts
                if table in p.adapter.not_recorded_tables]
        if len(self.parts) == 1 and said:
            return f"not recorded by {said[0][0]} ({said[0][1]})"
        reasons = "; ".join(f"{name}: {why}" for name, why in said)
        return f"no synced connector fills {table} ({reasons or f'none of {self.name} has it'})"

    def not_recorded_tables(self) -> dict[str, str]:
        return {t: why for t in self.filled() if (why := self.not_recorded(t)) is not None}

    @property
    def ids(self) -> str:
        """How the stack's ids are typed: its parts' way where they agree; text where one connector
        numbers its ids and another names them (Stripe's `cus_…` beside HubSpot's integers), so that
        a join between two connectors' tables compares like with like."""
        kinds = {p.adapter.ids for p in self.parts}
        return kinds.pop() if len(kinds) == 1 else "text"

    def select(self, table: str, engine: Any) -> str:
        """The reference table's SELECT: its part's, the UNION ALL of its parts' (in the contract's
        column order), or an empty SELECT of its columns where no part fills it; its ids as text
        where the parts type their ids differently."""
        dialect = engine.dialect
        parts = self.fillers(table)
        if not parts:
            return empty_select(table, dialect, self.ids)
        selects = [self._matched(p, table, p.adapter.select(table, dialect, p.schema, p.layout(engine)), dialect)
                   for p in parts]
        columns = load_contract().tables[table].columns
        retyped = [p.adapter.ids != self.ids or self._translates(p, table) for p in parts]
        if len(selects) == 1 and not retyped[0]:
            return selects[0]
        q = dialect.identifier_preparer.quote_identifier

        def as_id(column: str) -> str:  # SQLite too: an integer never equals its text there
            return f"CAST({column} AS TEXT)" if dialect.name == "sqlite" else typed_as(column, "id", dialect, self.ids)

        def listed(retype: bool) -> str:
            return ", ".join(f"{as_id(q(c))} AS {q(c)}" if retype and spec.type == "id" else q(c)
                             for c, spec in columns.items())
        return "\nUNION ALL\n".join(f"SELECT {listed(r)} FROM (\n{s}\n) part{i}"
                                     for i, (s, r) in enumerate(zip(selects, retyped, strict=True)))

    def _translates(self, part: Part, table: str) -> bool:
        """Whether the part's customer references in this table are read through its match."""
        return (part.customer_ids is not None and table != "customers"
                and CUSTOMER_REF in load_contract().tables[table].columns)

    def _matched(self, part: Part, table: str, select: str, dialect: Any) -> str:
        """The part's SELECT of the table with its customer references read as the stack's ids
        (a reference with no match: NULL, no customer)."""
        if not self._translates(part, table):
            return select
        match = part.customer_ids
        assert match is not None  # noqa: S101 - _translates checked it
        q = dialect.identifier_preparer.quote_identifier
        source = qualified(match.table, dialect, part.schema)
        listed = ", ".join(f"m.{q(match.column)} AS {q(c)}" if c == CUSTOMER_REF else f"p.{q(c)}"
                           for c in load_contract().tables[table].columns)
        own = typed_as(f"m.{q(match.key)}", "id", dialect, part.adapter.ids)
        return (f"SELECT {listed} FROM (\n{select}\n) p\n"
                f"LEFT JOIN {source} m ON {own} = p.{q(CUSTOMER_REF)}")

    def customer_matches(self, engine: Any) -> list[str]:
        """For each part that matches its customers to the stack's: how many customers its rows
        refer to, and how many of those have no match among the stack's customers (their leads and
        deals count without a customer), in the user's terms."""
        from sqlalchemy import text

        from crm_kpis.sources.sql_files import load_sql

        out = []
        dialect = engine.dialect
        q = dialect.identifier_preparer.quote_identifier
        for part in self.parts:
            referring = [t for t in self.fillers_of(part) if self._translates(part, t)]
            if part.customer_ids is None or not referring:
                continue
            match = part.customer_ids
            layout = part.layout(engine)
            own = "\nUNION ALL\n".join(f"SELECT x.{q(CUSTOMER_REF)} FROM (\n"
                                         f"{part.adapter.select(t, dialect, part.schema, layout)}\n) x" for t in referring)
            sql = sql_template(load_sql("stack/customer_matches.sql", dialect.name)).render(
                referring=own,
                match_table=qualified(match.table, dialect, part.schema),
                own_key=typed_as(f"m.{q(match.key)}", "id", dialect, part.adapter.ids),
                customers=self.select("customers", engine),
                customer_key=as_text(f"c.{q(CUSTOMER_REF)}", dialect),
                matched_id=as_text(f"m.{q(match.column)}", dialect))
            with engine.connect() as conn:
                referred, matched = conn.execute(text(sql)).one()
            filler = " + ".join(p.adapter.name for p in self.fillers("customers")) or "no connector"
            line = (f"{part.adapter.name}: {matched:,} of the {referred:,} customers its rows refer to match a "
                    f"customer of {filler} through {match.describe()}")
            if unmatched := referred - matched:
                line += (f"; {unmatched:,} {'does' if unmatched == 1 else 'do'} not: their {' and '.join(referring)} "
                         f"have no customer (fill {match.describe()} for them)")
            out.append(line)
        return out

    def adapt(self, sql: str, tables: Iterable[str], engine: Any) -> str:
        """`sql` (over reference tables) with each table it reads as a CTE of the same name: its
        parts' SELECT, or an empty one where no part fills it. A query that starts with its own
        `WITH` keeps its CTEs after these."""
        database = load_contract().of_database(self.database)
        ctes = [f"{t} AS (\n{self.select(t, engine)}\n)" for t in tables if t in database]
        if not ctes:
            return sql
        body = without_comments(sql)
        match = _LEADING_WITH.match(body)
        if match:
            return "WITH " + ",\n".join(ctes) + ",\n" + body[match.end():]
        return "WITH " + ",\n".join(ctes) + "\n" + body

    def problems(self, engine: Any) -> list[str]:
        """What the database lacks for the parts' adapters, in their own terms ("fivetran_zendesk needs
        ticket_field_history.field_name (schema zendesk); the column is missing"). Optional tables
        and columns are not required; an optional table without its declared columns is another
        table of that name, read as absent."""
        return [line for part in self.parts for line in part_problems(part, engine)]

    def missing_optional(self, engine: Any) -> dict[str, str]:
        """What of the parts' optional tables and columns the database lacks, each with what it reads
        as instead (named with its adapter where the stack has several parts)."""
        out = {}
        for part in self.parts:
            prefix = f"{part.adapter.name}: " if len(self.parts) > 1 else ""
            out.update({prefix + what: means for what, means in part.adapter.missing_optional(part.layout(engine)).items()})
        return out

    def fillers_of(self, part: Part) -> tuple[str, ...]:
        """The reference tables this part fills in the stack (those it is not overruled for)."""
        return tuple(t for t in part.fills if any(p is part for p in self.fillers(t)))

    def reading(self, tables: Iterable[str]) -> tuple[Part, ...]:
        """The parts that fill any of these reference tables (whose declarations speak for a KPI
        that reads them: what they cannot give, approximate or break down)."""
        filling = [part for table in set(tables) for part in self.fillers(table)]
        return tuple(p for p in self.parts if any(p is f for f in filling))

    def hidden_breakdowns(self, tables: Iterable[str], engine: Any) -> set[str]:
        """The breakdowns that the parts filling these tables cannot give in this database."""
        return {dim for p in self.reading(tables) for dim in p.adapter.hidden_breakdowns(p.layout(engine))}

    def signal_not_recorded(self, signal: Any) -> str | None:
        """Why the stack can never satisfy a tracking signal: no part fills its table, or every part
        that fills it never records it."""
        if (why := self.not_recorded(signal.table)) is not None:
            return why
        reasons = [p.adapter.signal_not_recorded(signal) for p in self.fillers(signal.table)]
        return reasons[0] if all(reasons) else None

    def signal_says(self, signal: Any) -> str:
        """What a signal's absence means, in the terms of the part that fills its table."""
        for part in self.fillers(signal.table):
            if signal.name in part.adapter.signal_says:
                return part.adapter.signal_says[signal.name]
        return signal.says


def single(adapter: Adapter, schema: str | None = None) -> Stack:
    """The stack of one adapter that fills its database alone (the `adapter`/`schema` extra)."""
    return Stack(adapter.database, (Part(adapter, schema),))


def stack_of(database: str, declared: Any, owner: str) -> Stack:
    """The stack a connection's extra declares (`adapters`: a list of {adapter, schema, tables}),
    checked: each adapter exists and reads this database, each listed table is one it fills, and a
    keyed table is filled by one part. `owner` names the connection in the errors."""
    if not isinstance(declared, list) or not declared:
        raise SourceConfigError(f"{owner}: extra adapters must be a list of {{\"adapter\": …, \"schema\": …}} objects")
    contract = load_contract()
    parts = []
    for entry in declared:
        if not isinstance(entry, dict) or not entry.get("adapter"):
            raise SourceConfigError(f"{owner}: each entry of extra adapters needs an \"adapter\" name; got {entry!r}")
        try:
            adapter = load_adapter(str(entry["adapter"]))
        except AdapterError as exc:
            raise SourceConfigError(f"{owner}: {exc}") from exc
        if adapter.database != database:
            raise SourceConfigError(f"{owner}: adapter {adapter.name!r} reads a synced {adapter.database}, not the "
                                    f"{database}")
        only = None
        if "tables" in entry:
            only = frozenset(str(t) for t in entry["tables"] or ())
            if foreign := sorted(only - set(adapter.tables)):
                raise SourceConfigError(f"{owner}: {adapter.name} does not fill {', '.join(foreign)}; it fills "
                                        f"{', '.join(adapter.tables)}")
        parts.append(Part(adapter, entry.get("schema") or None, only, _customer_match(entry, adapter, owner)))
    stack = Stack(database, tuple(parts))
    for part in stack.parts:
        if part.customer_ids is not None and "customers" in stack.fillers_of(part):
            raise SourceConfigError(
                f"{owner}: {part.adapter.name} matches its customers to another connector's (customer_ids), "
                "but fills customers itself: list customers under \"tables\" of the connector whose ids the "
                "stack uses")
    for table, fillers in stack.filled().items():
        key = contract.tables[table].key
        if len(fillers) > 1 and key:
            names = " and ".join(p.adapter.name for p in fillers)
            raise SourceConfigError(
                f"{owner}: {table} is filled by {names}, but its rows have a key ({key}) that two connectors "
                f"do not share: list {table} under \"tables\" of the one that should fill it")
    return stack


def _customer_match(entry: dict[str, Any], adapter: Adapter, owner: str) -> CustomerMatch | None:
    """A part's `customer_ids` declaration, checked for its shape."""
    raw = entry.get("customer_ids")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) and raw.get(k) for k in ("table", "column")):
        raise SourceConfigError(
            f"{owner}: customer_ids of {adapter.name} must name a synced table and the column that holds the "
            f"stack's customer id, e.g. {{\"table\": \"company\", \"column\": \"property_stripe_customer_id\"}}; "
            f"got {raw!r}")
    return CustomerMatch(raw["table"], raw["column"], str(raw.get("key") or "id"))
