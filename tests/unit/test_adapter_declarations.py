"""The adapters' declarations and SQL files, read as the mechanism reads them (no database).

Why: an optional synced table or column the database lacks is supplied by turning `{{ src.<table> }}`
into a derived table (crm_kpis.sources.adapters), and PostgreSQL and MariaDB refuse a derived table
without an alias; so every synced table a SELECT names must carry one, even where the table itself is
always there today.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from crm_kpis.sources.adapters import ADAPTERS_DIR, Layout, available, load_adapter

SQL_KEYWORDS = {"where", "group", "join", "left", "inner", "on", "order", "union", "limit", "having"}


@pytest.mark.parametrize("name", [a for a in available() if a != "reference"])
def test_every_synced_table_a_select_names_has_an_alias(name):
    for path in sorted((ADAPTERS_DIR / name).glob("*.sql")):
        for match in re.finditer(r"\{\{ src\.(\w+) \}\}(\s+(\w+))?", path.read_text(encoding="utf-8")):
            alias = match.group(3)
            assert alias and alias.lower() not in SQL_KEYWORDS and alias.islower(), (
                f"{path.name}: {{{{ src.{match.group(1)} }}}} needs an alias")


def test_an_absent_optional_column_or_table_is_supplied_as_declared():
    adapter = load_adapter("fivetran_zendesk")
    everything = Layout({t: frozenset(adapter.synced.get(t, ())) | frozenset(adapter.optional_columns.get(t, {}))
                         | frozenset(adapter.optional_tables[t].columns if t in adapter.optional_tables else ())
                         for t in adapter.every_synced_table})
    assert adapter.missing_optional(everything) == {}
    assert adapter.select("tickets", postgresql.dialect(), "zd", everything) == \
        adapter.select("tickets", postgresql.dialect(), "zd")  # all there: the plain names

    lacking = Layout({t: c - {"_fivetran_deleted", "updated_at"} for t, c in everything.items() if t != "group_member"})
    sql = adapter.select("tickets", postgresql.dialect(), "zd", lacking)
    assert 'FROM (SELECT s.*, FALSE AS "_fivetran_deleted", CAST(NULL AS TIMESTAMP) AS "updated_at" FROM zd."ticket" s) t' in sql
    agents = adapter.select("agents", sqlite.dialect(), None, lacking)
    assert '(SELECT NULL AS "user_id", NULL AS "group_id", NULL AS "_fivetran_deleted" WHERE 1 = 0) m' in agents
    assert adapter.missing_optional(lacking) == {
        "group_member": adapter.optional_tables["group_member"].why,
        "ticket._fivetran_deleted": "read as FALSE", "ticket.updated_at": "read as NULL",
        "ticket_comment._fivetran_deleted": "read as FALSE", "group._fivetran_deleted": "read as FALSE"}


def test_within_one_inspection_a_database_is_inspected_once(tmp_path):
    """An area's computation asks the same adapter's layout many times (the contract, each extract,
    each signal, the sync stamp): inside `one_inspection` the database is inspected once; outside,
    every call sees the schema as it is now."""
    import sqlite3

    from sqlalchemy import create_engine

    from crm_kpis.sources.adapters import one_inspection, synced_layout

    path = tmp_path / "zendesk.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE ticket (id INTEGER, created_at TEXT)")
    engine, adapter = create_engine(f"sqlite:///{path}"), load_adapter("fivetran_zendesk")
    with one_inspection():
        first = synced_layout(engine, adapter, None)
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE ticket_comment (id INTEGER)")
        assert synced_layout(engine, adapter, None) is first and "ticket_comment" not in first
    assert "ticket_comment" in synced_layout(engine, adapter, None)  # outside: inspected afresh
