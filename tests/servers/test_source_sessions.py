"""The PostgreSQL sessions a task keeps between its extracts (crm_kpis.sources.reading): reused while
they live, replaced when the server has ended one, never kept when a query broke them."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from crm_kpis.sources import reading
from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.errors import SourceError
from tests.servers.conftest import PG_ADMIN


def idle_sessions(uri: str) -> int:
    return sum(len(v) for (_pid, u), v in reading._ADBC_IDLE.items() if u == uri)


def test_an_idle_session_the_server_ended_is_replaced_and_a_broken_one_is_dropped(postgres):
    url = postgres.create("sessions")
    owner = create_engine(url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text("CREATE TABLE t (x integer)"))
        conn.execute(text("INSERT INTO t VALUES (1), (2), (3)"))
    engine = engine_for(url)
    uri = reading.source_session_uri(engine.url)
    assert reading._read_postgres_arrow(engine, "SELECT x FROM t ORDER BY x", {})["x"].tolist() == [1, 2, 3]
    assert idle_sessions(uri) == 1  # kept for the next extract
    # the server ends every other session on that database (a restart, idle_session_timeout)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        ended = conn.execute(text("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = :db AND pid <> pg_backend_pid()"),
                             {"db": engine.url.database}).scalar_one()
    assert ended >= 1
    assert reading._read_postgres_arrow(engine, "SELECT COUNT(*) AS n FROM t", {})["n"].tolist() == [3]
    assert idle_sessions(uri) == 1
    # a query that fails on a new session fails, and leaves no session behind
    with pytest.raises(Exception, match="nowhere"):
        reading._read_postgres_arrow(engine, "SELECT x FROM nowhere", {})
    assert idle_sessions(uri) == 0
    with pytest.raises(SourceError, match="query crm/orders.sql failed"):
        reading.read_extract(engine, "crm/orders.sql", {"start": None, "end": None})
    reading._read_postgres_arrow(engine, "SELECT 1 AS one", {})
    reading.close_idle_sessions()  # what a task's loading does when its reads are done
    assert idle_sessions(uri) == 0
    owner.dispose()
    admin.dispose()


@pytest.mark.parametrize("rows", [0, 1, 6, 7])
def test_a_result_read_in_chunks_is_the_result_read_at_once(postgres, monkeypatch, rows):
    """PostgreSQL results arrive `CHUNK_ROWS` at a time through a cursor (so that the driver never
    holds a whole million-row result): the same rows, types and order as one fetch, whether the last
    chunk is short, full (an empty fetch follows) or the only one; and the session is left outside any
    transaction, as a kept session must be."""
    url = postgres.create(f"chunks_{rows}")
    owner = create_engine(url, isolation_level="AUTOCOMMIT")
    with owner.connect() as conn:
        conn.execute(text("CREATE TABLE t (id bigint, amount numeric(12, 2), label text, at timestamp, "
                          "on_day date, flag boolean, n integer)"))
        conn.execute(text("INSERT INTO t SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE g * 1.25 END, "
                          "CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END, "
                          "TIMESTAMP '2026-10-01 08:00' + g * INTERVAL '1 hour', DATE '2026-10-01' + g, "
                          "g % 2 = 0, CASE WHEN g = 4 THEN NULL ELSE g END FROM generate_series(1, :n) g"),
                     {"n": rows})
    engine = engine_for(url)
    sql = "SELECT id, amount, label, at, on_day, flag, n FROM t WHERE at >= :start ORDER BY id"
    params = {"start": datetime(2026, 10, 1)}
    whole = reading._read_postgres_arrow(engine, sql, params)
    monkeypatch.setattr(reading, "CHUNK_ROWS", 3)
    chunked = reading._read_postgres_arrow(engine, sql, params)
    assert len(chunked) == rows
    assert list(chunked.dtypes) == list(whole.dtypes)
    if rows:
        assert chunked.equals(whole)
    # the values by hand: 1.25 per id with every third missing, labels by parity, n missing for id 4
    ids = range(1, rows + 1)
    assert [None if pd.isna(a) else a for a in chunked["amount"]] == [None if g % 3 == 0 else g * 1.25 for g in ids]
    assert chunked["label"].tolist() == ["even" if g % 2 == 0 else "odd" for g in ids]
    assert [None if pd.isna(v) else v for v in chunked["n"]] == [None if g == 4 else g for g in ids]
    with owner.connect() as conn:
        open_transactions = conn.execute(text("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = :db "
                                              "AND state LIKE 'idle in transaction%'"),
                                         {"db": engine.url.database}).scalar_one()
    assert open_transactions == 0
    reading.close_idle_sessions()
    owner.dispose()
