"""The PostgreSQL sessions a task keeps between its extracts (crm_kpis.sources.reading): reused while
they live, replaced when the server has ended one, never kept when a query broke them."""

from __future__ import annotations

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
