"""Source connections in every form a user writes them, opened read-only, with a source timezone."""

from __future__ import annotations

import json
import sqlite3
from datetime import date, datetime

import pytest

from crm_kpis.orchestration import tasks
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import CRM_CONN_ID, connection_url, engine_for, source_settings
from crm_kpis.sources.errors import SourceConfigError
from crm_kpis.sources.loading import load_extracts


@pytest.fixture()
def source_file(tmp_path):
    path = tmp_path / "crm files" / "crm.db"  # a space: the path must survive every form
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    return path


@pytest.mark.parametrize("form", ["uri_four_slashes", "json_host", "json_schema", "uri_localhost"])
def test_every_sqlite_form_names_the_same_file(form, source_file, monkeypatch):
    value = {
        "uri_four_slashes": f"sqlite:///{source_file}",  # sqlite:////abs/… : Airflow puts the path in schema
        "json_host": json.dumps({"conn_type": "sqlite", "host": str(source_file)}),
        "json_schema": json.dumps({"conn_type": "sqlite", "schema": str(source_file)}),
        "uri_localhost": f"sqlite://localhost{source_file}",
    }[form]
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", value)
    assert connection_url(CRM_CONN_ID).database == str(source_file)
    with engine_for(CRM_CONN_ID).connect() as conn:
        assert conn.exec_driver_sql("SELECT x FROM t").scalar_one() == 1


def test_a_source_is_opened_read_only(source_file, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{source_file}")
    with pytest.raises(Exception, match="readonly"), engine_for(CRM_CONN_ID).begin() as conn:
        conn.exec_driver_sql("DELETE FROM t")


def test_a_missing_source_file_is_an_error_that_names_it_and_creates_nothing(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "helpdesk.db"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{missing}")
    with pytest.raises(SourceConfigError, match=f"SQLite source file not found: {missing}"):
        engine_for(CRM_CONN_ID)
    assert not missing.parent.exists() and list(tmp_path.iterdir()) == []


def test_the_extra_carries_the_timezone_and_a_bad_one_is_refused(monkeypatch, source_file):
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps(
        {"conn_type": "sqlite", "host": str(source_file), "extra": {"timezone": "Europe/Berlin"}}))
    assert source_settings(CRM_CONN_ID).timezone == "Europe/Berlin"
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{source_file}?timezone=Mars%2FOlympus")
    with pytest.raises(SourceConfigError, match="'Mars/Olympus' is not an IANA zone"):
        source_settings(CRM_CONN_ID)


@pytest.mark.parametrize(("setting", "default", "given", "read", "bad", "says"), [
    # how far past the reading a recorded time may lie before its row is excluded
    ("future_tolerance_hours", 24.0, "2.5", 2.5, ("soon", -1, "inf", None), "is not a number of hours"),
    # how many of a task's extracts query the source at once
    ("parallel_reads", 2, "1", 1, (0, "two", 1.5, True), "is not a whole number"),
])
def test_the_extra_carries_the_project_settings_and_refuses_bad_values(monkeypatch, source_file, setting, default,
                                                                       given, read, bad, says):
    def extra(**values):
        monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps(
            {"conn_type": "sqlite", "host": str(source_file), "extra": values}))
    extra()
    assert getattr(source_settings(CRM_CONN_ID), setting) == default
    extra(**{setting: given})
    assert getattr(source_settings(CRM_CONN_ID), setting) == read
    for value in bad:
        extra(**{setting: value})
        with pytest.raises(SourceConfigError, match=f"{setting} .* {says}"):
            source_settings(CRM_CONN_ID)


def test_driver_options_in_the_extra_are_kept_and_project_settings_are_not(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB",
                       "postgres://reader:pw@db.example:5432/crm?sslmode=require&timezone=Europe%2FBerlin&adapter=reference")
    url = connection_url(CRM_CONN_ID)
    assert url.drivername == "postgresql+psycopg" and url.database == "crm"
    assert dict(url.query) == {"sslmode": "require"}
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", "mysql://reader:pw@db.example/helpdesk?charset=utf8mb4")
    assert dict(connection_url(CRM_CONN_ID).query) == {"charset": "utf8mb4"}


def test_an_unknown_connection_type_says_what_is_supported(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps({"conn_type": "hubspot_api", "host": "x"}))
    with pytest.raises(SourceConfigError, match="no SQLAlchemy dialect installed here"):
        connection_url(CRM_CONN_ID)


def test_local_time_sources_are_cut_at_the_right_instants(tmp_path, monkeypatch):
    """A CRM storing Berlin wall times, reported in UTC: October UTC is [1 Oct 02:00, 1 Nov 01:00) Berlin."""
    from crm_kpis.paths import SQL_DIR
    from crm_kpis.sources.sql_files import run_script

    path = tmp_path / "crm.db"
    engine = engine_for(f"sqlite:///{path}")
    run_script(engine, SQL_DIR / "schema" / "sqlite" / "crm.sql")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO customers VALUES (1, '2025-01-01 00:00:00', 'smb', 'DE', 'web', NULL, NULL, NULL)")
        rows = [(1, "2026-10-01 01:59:59"),  # 30 Sep 23:59:59 UTC: September
                (2, "2026-10-01 02:00:00"),  # 1 Oct 00:00 UTC: in
                (3, "2026-11-01 00:59:59"),  # 31 Oct 23:59:59 UTC (CET, +1): in
                (4, "2026-11-01 01:00:00")]  # 1 Nov 00:00 UTC: November
        conn.executemany("INSERT INTO orders VALUES (?, 1, ?, 'completed', 10, NULL, NULL)", rows)
    conn.close()
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps(
        {"conn_type": "sqlite", "host": str(path), "extra": {"timezone": "Europe/Berlin"}}))
    frame = load_extracts({"orders"}, ReportPeriod.parse("monthly", "2026-10")).frames["orders"]
    assert sorted(frame["order_id"]) == [2, 3]
    assert sorted(frame["ordered_at"]) == [datetime(2026, 10, 1, 0, 0), datetime(2026, 10, 31, 23, 59, 59)]


def test_a_period_before_history_start_fails_with_the_reason(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    config = tmp_path / "reports.yaml"
    config.write_text("timezone: UTC\nhistory_start: 2015-01-01\nreports:\n  m: {grain: monthly, to: [a@example.com]}\n")
    monkeypatch.setenv("CRM_KPIS_CONFIG", str(config))
    with pytest.raises(AirflowFailException, match="before history_start 2015-01-01"):
        tasks.period_for("monthly", datetime(2014, 12, 1), datetime(2015, 1, 1))
    assert tasks.period_for("monthly", datetime(2015, 1, 1), datetime(2015, 2, 1)).start_date == date(2015, 1, 1)


def test_the_default_history_reaches_back_to_2000(monkeypatch):
    assert tasks.period_for("monthly", datetime(2000, 1, 1), datetime(2000, 2, 1)).key == "2000-01"


def test_a_task_reads_each_connection_once_and_the_next_task_reads_it_again(monkeypatch, source_file):
    """Inside a task a lookup is an Execution API request; an area's computation asks for its
    sources' settings per KPI and extract. Within one task each connection is read once (a missing
    one too); the next task, or code outside a task, sees a changed connection."""
    from airflow.sdk import BaseHook

    from crm_kpis.sources import connections

    asked: list[str] = []
    real = BaseHook.get_connection

    def counting(conn_id, *args, **kwargs):
        asked.append(conn_id)
        return real(conn_id, *args, **kwargs)

    monkeypatch.setattr(BaseHook, "get_connection", counting)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps(
        {"conn_type": "sqlite", "host": str(source_file), "extra": {"timezone": "Europe/Berlin"}}))

    @connections.looked_up_once()
    def a_task(lookups: int) -> list[str]:
        zones = [source_settings(CRM_CONN_ID).timezone for _ in range(lookups)]
        connection_url(CRM_CONN_ID)
        connections.airflow_connection("no_such_connection")
        connections.airflow_connection("no_such_connection")
        with connections.looked_up_once():  # a nested block shares the task's lookups
            source_settings(CRM_CONN_ID)
        return zones

    assert a_task(50) == ["Europe/Berlin"] * 50
    assert asked == [CRM_CONN_ID, "no_such_connection"]  # once each, the missing one remembered too

    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps(
        {"conn_type": "sqlite", "host": str(source_file), "extra": {"timezone": "America/New_York"}}))
    asked.clear()
    assert a_task(3) == ["America/New_York"] * 3  # the next task reads the connection as it is now
    assert asked == [CRM_CONN_ID, "no_such_connection"]
    asked.clear()
    source_settings(CRM_CONN_ID), source_settings(CRM_CONN_ID)  # outside a task: every time
    assert asked == [CRM_CONN_ID, CRM_CONN_ID]
