"""Extracts run as one statement where an adapter derives a table they all read at a cost.

Why: Zendesk's `tickets` is derived from the whole status history and comments (its adapter's
tickets.sql). The operations task reads it in four extracts (created, first answered, open and
resolved tickets); run one by one, the database derived it four times over, 26x the reference
layout's time at scale 30. Run as one statement, it is derived once: PostgreSQL keeps a CTE read more
than once aside (MariaDB and SQLite may derive it again per reader: no slower than apart).

How: each extract's own SQL file (over the reference tables, unchanged) becomes a CTE of one
statement, which returns their rows one after the other (UNION ALL), each row with its extract's
name in `_extract` and NULL in the columns only the others have (typed as theirs); the adapters' SELECTs go in front
once. The rows are split back by name before anything looks at them, so that each extract is typed,
checked and counted exactly as if it had been read alone. Which tables call for it is the adapter's
declaration (`read_together` in its adapter.yaml); the reference layout reads each extract apart,
where its indexes serve each one's filter. On SQLite and MariaDB, whose rows pandas types by their
values, an integer column that another extract pads with NULLs arrives as floats of the same values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine

from crm_kpis.sources.connections import SourceSettings
from crm_kpis.sources.contract import outer_select_list, select_items, tables_read
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.reading import read_rows
from crm_kpis.sources.sql_files import load_sql, without_comments
from crm_kpis.sources.typed_read import type_frame

#: the column that says which extract a row of the combined statement belongs to
PART = "_extract"


def output_columns(sql: str) -> list[str]:
    """The names of a query's columns, from its outermost select list: `x AS name`, or the column
    itself (`t.ticket_id` -> ticket_id)."""
    select_list = outer_select_list(without_comments(sql))
    if not select_list:
        raise ValueError("no outermost FROM in the query")
    names = []
    for item in select_items(select_list):
        alias = re.search(r"\bAS\s+(\w+)\s*$", item, re.IGNORECASE)
        names.append(alias.group(1) if alias else re.split(r"[.\s]", item.strip())[-1])
    return names


def split_with(sql: str) -> tuple[list[tuple[str, str]], str]:
    """A query's own leading CTEs (name, body) and its main SELECT: the combined statement lists them
    at its top (MariaDB does not resolve an outer CTE inside a nested WITH)."""
    rest = without_comments(sql)
    head = re.match(r"\s*WITH\s+", rest, re.IGNORECASE)
    if not head:
        return [], rest
    rest, ctes = rest[head.end():], []
    while cte := re.match(r"\s*(\w+)\s+AS\s*\(", rest, re.IGNORECASE):
        depth, end = 1, cte.end()
        while depth:
            depth += (rest[end] == "(") - (rest[end] == ")")
            end += 1
        ctes.append((cte.group(1), rest[cte.end():end - 1].strip()))
        rest = rest[end:].lstrip()
        rest = rest[1:] if rest.startswith(",") else rest
    return ctes, rest.strip()


def groups(names: Iterable[str], sources: dict[str, SourceSettings]) -> list[tuple[str, ...]]:
    """The extracts to run together: per source and period shift, those that read a table the
    source's adapters derive at a cost (two or more of them; one is read alone as usual)."""
    out: dict[tuple[str, int], list[str]] = {}
    for name in sorted(names):
        extract = EXTRACTS[name]
        stack = sources[extract.conn_id].stack
        if stack is not None and set(tables_read(extract.sql)) & stack.read_together():
            out.setdefault((extract.conn_id, extract.shift), []).append(name)
    return [tuple(g) for g in out.values() if len(g) > 1]


def combined_sql(names: tuple[str, ...], dialect: str) -> str:
    """One statement (over the reference tables) whose rows are those of each named extract."""
    columns = {n: output_columns(load_sql(EXTRACTS[n].sql, dialect)) for n in names}
    every = list(dict.fromkeys(c for n in names for c in columns[n]))
    ctes, seen = [], set()
    for i, n in enumerate(names):
        own, main = split_with(load_sql(EXTRACTS[n].sql, dialect))
        for name, body in own:
            if name in seen:
                raise ValueError(f"{EXTRACTS[n].sql}: its CTE {name} has the name of another extract's; rename one")
            seen.add(name)
            ctes.append(f"{name} AS (\n{body}\n)")
        ctes.append(f"q{i} AS (\n{main}\n)")
    # a column another extract has is NULL of that column's type (an untyped NULL in two readers makes
    # PostgreSQL type the column as text): an empty scalar subquery over its owner, evaluated once
    owner = {c: next(i for i, n in enumerate(names) if c in columns[n]) for c in every}
    selects = [f"SELECT '{n}' AS {PART}, "
               + ", ".join(c if c in columns[n] else f"(SELECT {c} FROM q{owner[c]} WHERE 1 = 0) AS {c}" for c in every)
               + f" FROM q{i}" for i, n in enumerate(names)]
    return "WITH " + ",\n".join(ctes) + "\n" + "\nUNION ALL\n".join(selects)


def read_together(engine: Engine, names: tuple[str, ...], params: dict[str, Any], source_tz: str,
                  source: SourceSettings) -> dict[str, tuple[pd.DataFrame, dict[str, Any]]]:
    """Each named extract's rows, typed by the contract as its own file's, from one statement."""
    dialect = engine.dialect.name
    tables = sorted({t for n in names for t in tables_read(EXTRACTS[n].sql)})
    sql = combined_sql(names, dialect)
    if source.stack is not None:
        sql = source.stack.adapt(sql, tables, engine)
    read_at = datetime.now(UTC)
    rows = read_rows(engine, sql, params, " + ".join(EXTRACTS[n].sql for n in names))
    out = {}
    for name in names:
        own = output_columns(load_sql(EXTRACTS[name].sql, dialect))
        part = rows.loc[rows[PART] == name, own].reset_index(drop=True)
        out[name] = type_frame(part, EXTRACTS[name].sql, source_tz, read_at, source.future_tolerance_hours)
    return out
