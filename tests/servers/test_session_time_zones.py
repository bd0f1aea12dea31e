"""A source read in a database session whose time zone is not UTC gives the same periods and values.

Fivetran lands times as `timestamp with time zone` (PostgreSQL) and a MariaDB may hold TIMESTAMP
columns; both are compared with the period's naive bounds in the *session's* zone. A server, database
or role whose default zone is America/Los_Angeles moved every period seven hours without a word.
Here the same business is loaded twice: as the reference (naive columns, UTC) and with its times
as zoned columns on a server whose default zone is not UTC; every KPI of October and of one day
must be equal, and a session left at the server's default is shown to shift (the test would pass
for nothing otherwise).
"""

from __future__ import annotations

import uuid
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from crm_kpis import compute
from crm_kpis.compute import compute_area
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import loading
from crm_kpis.sources.connections import engine_for
from crm_kpis.tools.demo.loader import load_database

PERIODS = [ReportPeriod.parse("monthly", "2026-10"), ReportPeriod("daily", date(2026, 10, 25), "UTC")]
OCTOBER = "created_at >= :start AND created_at < :end"
BOUNDS = {"start": "2026-10-01 00:00:00", "end": "2026-11-01 00:00:00"}


def _values(monkeypatch, urls: dict[str, str]) -> dict:
    pick = lambda conn_id: engine_for(urls[conn_id])  # noqa: E731
    monkeypatch.setattr(loading, "engine_for", pick)
    monkeypatch.setattr(compute, "engine_for", pick)
    return {(p.key, v.kpi_id, v.dimension, v.member): (v.value, v.numerator, v.denominator)
            for p in PERIODS for area in ("marketing", "sales", "operations") for v in compute_area(area, p).values}


@pytest.fixture(scope="module")
def frames(demo_frames) -> dict:
    """The demo business six hours earlier: its events mostly fall in office hours, and a period's
    edges at midnight would not show a seven-hour shift; now many happen between midnight and 07:00."""
    out = {}
    for database, tables in demo_frames.items():
        out[database] = {}
        for name, frame in tables.items():
            frame = frame.copy()
            for column in frame.columns:
                if pd.api.types.is_datetime64_any_dtype(frame[column]):
                    frame[column] = frame[column] - pd.Timedelta(hours=6)
            out[database][name] = frame
    return out


@pytest.fixture(scope="module")
def reference(postgres, frames) -> dict[str, str]:
    urls = {"crm_db": postgres.create("tzrefcrm"), "helpdesk_db": postgres.create("tzrefhelp")}
    load_database(engine_for(urls["crm_db"]), "crm", frames["crm"])
    load_database(engine_for(urls["helpdesk_db"]), "helpdesk", frames["helpdesk"])
    return urls


def test_postgres_timestamptz_in_a_los_angeles_session(postgres, frames, reference, monkeypatch):
    urls = {"crm_db": postgres.create(f"tzcrm{uuid.uuid4().hex[:4]}"),
            "helpdesk_db": postgres.create(f"tzhelp{uuid.uuid4().hex[:4]}")}
    for conn_id, database in (("crm_db", "crm"), ("helpdesk_db", "helpdesk")):
        engine = engine_for(urls[conn_id])
        load_database(engine, database, frames[database])
        with engine.begin() as conn:
            columns = conn.execute(text("SELECT table_name, column_name FROM information_schema.columns "
                                        "WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'"))
            for table, column in columns.all():  # the instants kept, now zoned as Fivetran writes them
                conn.execute(text(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE timestamptz '
                                  f'USING "{column}" AT TIME ZONE \'UTC\''))
            name = engine.url.database
            conn.execute(text(f"ALTER DATABASE \"{name}\" SET timezone TO 'America/Los_Angeles'"))
        engine.dispose()
    helpdesk = urls["helpdesk_db"]
    with create_engine(helpdesk).connect() as conn:  # a session at the database's default zone
        assert conn.execute(text("SHOW timezone")).scalar() == "America/Los_Angeles"
        shifted = conn.execute(text(f"SELECT COUNT(*) FROM tickets WHERE {OCTOBER}"), BOUNDS).scalar()
    with engine_for(helpdesk).connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar() == "UTC"
        pinned = conn.execute(text(f"SELECT COUNT(*) FROM tickets WHERE {OCTOBER}"), BOUNDS).scalar()
    with engine_for(reference["helpdesk_db"]).connect() as conn:
        assert pinned == conn.execute(text(f"SELECT COUNT(*) FROM tickets WHERE {OCTOBER}"), BOUNDS).scalar()
    assert shifted != pinned  # what every run read before the session's zone was pinned
    expected = _values(monkeypatch, reference)
    assert _values(monkeypatch, urls) == expected
    assert len(expected) > 500


def test_mariadb_timestamp_columns_in_a_minus_seven_session(mariadb, frames, reference, monkeypatch):
    url = mariadb.create(f"tzhelp{uuid.uuid4().hex[:4]}")
    engine = engine_for(url)
    load_database(engine, "helpdesk", frames["helpdesk"])
    with engine.begin() as conn:  # this session is UTC: DATETIME values are taken as UTC instants
        columns = conn.execute(text("SELECT table_name, column_name FROM information_schema.columns WHERE "
                                    "table_schema = DATABASE() AND data_type = 'datetime'")).all()
        for table, column in columns:
            conn.execute(text(f"ALTER TABLE `{table}` MODIFY `{column}` TIMESTAMP NULL DEFAULT NULL"))
    engine.dispose()
    admin = create_engine(url)
    with admin.connect() as conn:
        conn.execute(text("SET GLOBAL time_zone = '-07:00'"))
    try:
        with create_engine(url).connect() as conn:  # a session at the server's default zone
            assert conn.execute(text("SELECT @@session.time_zone")).scalar() == "-07:00"
            shifted = conn.execute(text(f"SELECT COUNT(*) FROM tickets WHERE {OCTOBER}"), BOUNDS).scalar()
        fresh = engine_for(url + ("&" if "?" in url else "?") + "charset=utf8mb4")  # a new pool
        with fresh.connect() as conn:
            assert conn.execute(text("SELECT @@session.time_zone")).scalar() == "+00:00"
            pinned = conn.execute(text(f"SELECT COUNT(*) FROM tickets WHERE {OCTOBER}"), BOUNDS).scalar()
        assert shifted != pinned
        expected = _values(monkeypatch, reference)
        got = _values(monkeypatch, {**reference, "helpdesk_db": url + ("&" if "?" in url else "?") + "charset=utf8mb4"})
        operations = {k for k in expected if k[1].startswith("operations.")}
        assert {k: got[k] for k in operations} == {k: expected[k] for k in operations} and operations
    finally:
        with admin.connect() as conn:
            conn.execute(text("SET GLOBAL time_zone = 'SYSTEM'"))
        admin.dispose()
