"""Database engines from Airflow connections, and the project's settings in a connection's extra.

Why here and not in the DAGs: the same code runs inside a task (connections come from Airflow:
environment variables, the metadata DB or a secrets backend) and outside one (the demo generator,
tests), where the embedded default applies: SQLite files under `var/data/`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import URL, Engine, create_engine, event, make_url

from crm_kpis.paths import var_dir
from crm_kpis.sources.adapters import REFERENCE, load_adapter
from crm_kpis.sources.errors import AdapterError, SourceConfigError
from crm_kpis.sources.stack import Stack, single, stack_of

log = logging.getLogger(__name__)

CRM_CONN_ID = "crm_db"
HELPDESK_CONN_ID = "helpdesk_db"
WAREHOUSE_CONN_ID = "kpi_warehouse"

#: The embedded default: which SQLite file stands in for each connection id.
DEFAULT_SQLITE_FILES = {
    CRM_CONN_ID: "crm.db",
    HELPDESK_CONN_ID: "helpdesk.db",
    WAREHOUSE_CONN_ID: "warehouse.db",
}

#: SQLAlchemy drivers for Airflow's connection types. Any other type that names a SQLAlchemy
#: dialect (`mssql+pyodbc`, `snowflake`, …) is used as the driver name as it is.
_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
#: Connection extras that are this project's settings, not driver options.
PROJECT_EXTRAS = ("adapter", "adapters", "timezone", "schema", "future_tolerance_hours", "parallel_reads")
#: Extras Airflow or its providers use themselves; never passed to a driver.
AIRFLOW_EXTRAS = ("sqlalchemy_scheme", "sqlalchemy_query", "cursor", "iam", "aws_conn_id", "client",
                  "log_sql", "placeholder", "local_infile")


@dataclass(frozen=True)
class SourceSettings:
    """What the project reads from a connection besides how to reach it (its extra)."""

    timezone: str = "UTC"  # the IANA zone in which the source stores naive timestamps
    #: how far past the moment of reading a recorded time may lie (clock skew, a zone declared
    #: wrong by hours) before its row is excluded as a time that has not happened yet
    future_tolerance_hours: float = 24.0  # typed_read.FUTURE_TOLERANCE_HOURS (a layer this one may not import)
    #: how many extracts of one task may query the source at once (1: one after the other)
    parallel_reads: int = 2
    #: the synced connectors that fill the database (crm_kpis.sources.stack); None: the reference layout
    stack: Stack | None = None

    @property
    def adapter(self) -> str:
        """The adapters' names, for messages (`reference` for the product's own layout)."""
        return self.stack.name if self.stack is not None else REFERENCE


def default_sqlite_url(conn_id: str) -> URL:
    path = var_dir() / "data" / DEFAULT_SQLITE_FILES[conn_id]
    return make_url(f"sqlite:///{path}")


#: the connections looked up inside `looked_up_once` (conn id -> connection or None); None outside it
_looked_up: dict[str, Any] | None = None
_MISSING = object()


@contextmanager
def looked_up_once() -> Iterator[None]:
    """Within this block, each Airflow connection is looked up once.

    Why: inside a task a lookup is a request to Airflow's Execution API (and a query of its
    database), about 20 ms each; an area's computation asks for its sources' settings for every
    KPI and extract, some 340 times a monthly run, which made the demo's runs three times slower.
    A task is short and its connections do not change while it runs, so it may keep what it read;
    outside the block (tests, tools, the next task) every lookup reads Airflow again. Shared by the
    task's reader threads: a race looks one connection up twice, which is harmless.
    """
    global _looked_up
    outer = _looked_up
    _looked_up = {} if outer is None else outer
    try:
        yield
    finally:
        _looked_up = outer


def airflow_connection(conn_id: str) -> Any | None:
    """The Airflow connection, or None when it is not defined anywhere Airflow looks."""
    memo = _looked_up
    if memo is not None and (known := memo.get(conn_id, _MISSING)) is not _MISSING:
        return known
    conn = _airflow_connection(conn_id)
    if memo is not None:
        memo[conn_id] = conn
    return conn


def _airflow_connection(conn_id: str) -> Any | None:
    try:
        from airflow.sdk import BaseHook
    except ImportError:  # the package is usable without Airflow installed
        return None
    try:
        return BaseHook.get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException's home differs between SDK versions
        if type(exc).__name__ == "AirflowNotFoundException" or "isn't defined" in str(exc):
            return None
        raise


def _extra(conn: Any) -> dict[str, Any]:
    try:
        extra = conn.extra_dejson
    except Exception as exc:  # malformed JSON in the extra
        raise SourceConfigError(f"connection {conn.conn_id!r}: its extra is not valid JSON ({exc})") from exc
    return dict(extra or {})


def _sqlite_path(conn_id: str, conn: Any) -> Path:
    """The file of a SQLite connection, in every form Airflow gives it.

    `sqlite:////abs/file.db` arrives with the path in `schema` and an empty host; the JSON form
    and Airflow's own SQLite examples put it in `host`; `sqlite://localhost/abs/file.db` splits
    it between the two.
    """
    host, schema = (conn.host or "").strip(), (conn.schema or "").strip()
    if host and host != "localhost":
        raw = host if not schema else f"{host}/{schema}"
    elif schema:
        raw = schema if host != "localhost" or schema.startswith("/") else f"/{schema}"
    else:
        raise SourceConfigError(f"connection {conn_id!r} is SQLite but names no file: use "
                                "sqlite:////absolute/path/file.db or {\"conn_type\": \"sqlite\", \"host\": \"/path\"}")
    return Path(raw).expanduser()


def connection_url(conn_id: str) -> URL:
    """SQLAlchemy URL for a connection id; the embedded SQLite file when it is not configured.

    Why not the providers' `sqlalchemy_url`: in the installed versions the postgres provider's
    drops driver options such as `sslmode` from the extra, and the mysql provider needs
    mysqlclient (C headers) and pins PyMySQL below the version this project uses. So the URL is
    built here from the connection's fields, keeping every extra that is a driver option.
    """
    conn = airflow_connection(conn_id)
    if conn is None:
        if conn_id not in DEFAULT_SQLITE_FILES:
            raise SourceConfigError(f"connection {conn_id!r} is not configured and has no default")
        return default_sqlite_url(conn_id)
    conn_type = (conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return make_url(f"sqlite:///{_sqlite_path(conn_id, conn)}")
    driver = _DRIVERS.get(conn_type, conn_type)
    try:
        from sqlalchemy.dialects import registry

        registry.load(driver.replace("+", "."))
    except Exception as exc:
        raise SourceConfigError(
            f"connection {conn_id!r} has type {conn_type!r}, which is no SQLAlchemy dialect installed here "
            "(postgres, mysql, sqlite, or a dialect name such as mssql+pyodbc)") from exc
    extra = _extra(conn)
    query = {k: str(v) for k, v in extra.items()
             if k not in PROJECT_EXTRAS + AIRFLOW_EXTRAS and isinstance(v, str | int | float | bool)}
    query.update({k: str(v) for k, v in (extra.get("sqlalchemy_query") or {}).items()})
    return URL.create(driver, username=conn.login or None, password=conn.password or None,
                      host=conn.host or None, port=conn.port or None, database=conn.schema or None, query=query)


def source_settings(conn_id: str) -> SourceSettings:
    """The connection extra's `timezone` and what fills its database: `adapters` (a stack of synced
    connectors, crm_kpis.sources.stack) or one `adapter` with its `schema` (defaults when not configured)."""
    conn = airflow_connection(conn_id) if conn_id in SOURCE_CONN_IDS else None
    if conn is None:
        return SourceSettings()
    extra = _extra(conn)
    tz = str(extra.get("timezone") or "UTC")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SourceConfigError(f"connection {conn_id!r}: extra timezone {tz!r} is not an IANA zone "
                                "(e.g. Europe/Berlin)") from exc
    return SourceSettings(tz, future_tolerance_hours=_tolerance(conn_id, extra), parallel_reads=_parallel_reads(conn_id, extra),
                          stack=declared_stack(conn_id, extra))


def _parallel_reads(conn_id: str, extra: dict[str, Any]) -> int:
    raw = extra.get("parallel_reads", SourceSettings.parallel_reads)
    if isinstance(raw, bool) or not str(raw).strip().isdigit() or int(str(raw).strip()) < 1:
        raise SourceConfigError(f"connection {conn_id!r}: extra parallel_reads {raw!r} is not a whole number ≥ 1 "
                                "(1 reads the extracts one after the other)")
    return int(str(raw).strip())


def _tolerance(conn_id: str, extra: dict[str, Any]) -> float:
    raw = extra.get("future_tolerance_hours", SourceSettings.future_tolerance_hours)
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        hours = -1.0
    if not 0 <= hours < float("inf"):
        raise SourceConfigError(f"connection {conn_id!r}: extra future_tolerance_hours {raw!r} is not a number of "
                                "hours ≥ 0 (e.g. 24)")
    return hours


def declared_stack(conn_id: str, extra: dict[str, Any]) -> Stack | None:
    """The stack of a source connection's extra: `adapters`, or `adapter` and `schema` (one part),
    or none (the reference layout)."""
    owner = f"connection {conn_id!r}"
    database = SOURCE_DATABASES[conn_id]
    if "adapters" in extra:
        if extra.get("adapter") or extra.get("schema"):
            raise SourceConfigError(f"{owner}: its extra has both adapters and adapter/schema: give each adapter's "
                                    "schema inside adapters, and drop the other two")
        return stack_of(database, extra["adapters"], owner)
    name = str(extra.get("adapter") or REFERENCE)
    if name == REFERENCE:
        if extra.get("schema"):
            raise SourceConfigError(
                f"{owner}: schema {extra['schema']!r} without an adapter: the reference layout reads the "
                "connection's own tables in its default schema (set the search path instead, e.g. the extra "
                "{\"options\": \"-csearch_path=crm\"}); a schema is an adapter's setting")
        return None
    try:
        adapter = load_adapter(name)
    except AdapterError as exc:
        raise SourceConfigError(f"{owner}: {exc}") from exc
    if adapter.database != database:
        raise SourceConfigError(f"{owner}: adapter {name!r} reads a synced {adapter.database}, "
                                f"not the {database} (set it on {DATABASE_CONNS[adapter.database]})")
    return single(adapter, extra.get("schema") or None)


SOURCE_CONN_IDS = (CRM_CONN_ID, HELPDESK_CONN_ID)
#: which reference database each source connection holds (source_contract.yaml's `databases`)
SOURCE_DATABASES = {CRM_CONN_ID: "crm", HELPDESK_CONN_ID: "helpdesk"}
DATABASE_CONNS = {database: conn_id for conn_id, database in SOURCE_DATABASES.items()}


@lru_cache(maxsize=16)
def _engine_for_url(url_text: str, read_only: bool = False, zone: str = "UTC") -> Engine:
    url = make_url(url_text)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, read_only)
    engine = create_engine(_postgres_session_zone(url, zone), pool_pre_ping=True)
    if url.get_backend_name() in ("mysql", "mariadb"):
        event.listen(engine, "connect", lambda dbapi_conn, _record: _mysql_session_zone(dbapi_conn, zone, url))
    return engine


def _postgres_session_zone(url: URL, zone: str) -> URL:
    """A PostgreSQL URL whose sessions speak `zone` (`options=-c TimeZone=…`, which libpq and the
    ADBC driver read from the same URL), unless the connection sets `options` itself.

    Why: the period's bounds are bound as naive times in the source's zone (the connection's
    `timezone` extra). A `timestamp with time zone` column, as Fivetran writes them, is compared
    with a naive bound by casting it in the *session's* zone: a server or role whose default is
    America/Los_Angeles moved every period seven hours, silently (April: 7,918 cases opened
    instead of 7,934). In the source's own zone the cast is the instant the bound means; a
    `timestamp without time zone` column is unaffected.
    """
    if url.get_backend_name() != "postgresql" or "options" in url.query:
        return url
    return url.update_query_dict({"options": f"-c TimeZone={zone}"})


_ZONE_WARNED: set[str] = set()


def _mysql_session_zone(dbapi_conn: Any, zone: str, url: URL) -> None:
    """MariaDB/MySQL sessions in the source's zone: a TIMESTAMP column (stored in UTC) is compared
    and read in the session's zone, which is the server's default otherwise. UTC needs no time
    zone tables; a named zone does (`mariadb-tzinfo-to-sql`): without them the session keeps the
    server's zone and the log says so once (DATETIME columns, the usual kind, are unaffected)."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("SET time_zone = %s", ("+00:00" if zone == "UTC" else zone,))
    except Exception as exc:  # the server does not know the named zone
        if zone not in _ZONE_WARNED:
            _ZONE_WARNED.add(zone)
            log.warning("%s does not know the time zone %s (%s): its TIMESTAMP columns are read in the "
                        "server's zone; load its time zone tables (mariadb-tzinfo-to-sql /usr/share/zoneinfo "
                        "| mariadb mysql) or store UTC", url.render_as_string(), zone, exc)
    finally:
        cursor.close()


def _sqlite_engine(url: URL, read_only: bool) -> Engine:
    """SQLite: a source is opened read-only and must exist; the warehouse is created on first use.

    Why `mode=ro`: opening a missing file would create an empty database (and -wal/-shm files
    beside it), and the run would then fail with "no such table", far from the real cause.
    """
    path = Path(url.database) if url.database and url.database != ":memory:" else None
    if read_only:
        if path is None or not path.is_file():
            raise SourceConfigError(f"SQLite source file not found: {path if path else url.database} "
                                    "(check the connection's path; a source is never created)")
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        # the URL stays the file's path (logs, tests); the connections are opened read-only
        return create_engine(url, creator=lambda: sqlite3.connect(uri, uri=True, timeout=60, check_same_thread=False))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel area tasks write the warehouse at once: wait for the lock rather than fail.
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return engine


def engine_for(conn_id_or_url: str | URL, zone: str | None = None) -> Engine:
    """An engine for a connection id (`crm_db`, …) or an explicit SQLAlchemy URL.

    Engines for the source connections are read-only where the engine allows it (SQLite); an
    explicit URL is whatever it says (the demo generator writes through one). Every session speaks
    one time zone, never the server's default: a source connection's `timezone` extra, else `zone`,
    else UTC (see `_postgres_session_zone`).
    """
    if isinstance(conn_id_or_url, URL) or "://" in str(conn_id_or_url):
        url = make_url(conn_id_or_url)
        read_only = False
    else:
        url = connection_url(str(conn_id_or_url))
        read_only = str(conn_id_or_url) in SOURCE_CONN_IDS
        if read_only:
            zone = source_settings(str(conn_id_or_url)).timezone
    return _engine_for_url(url.render_as_string(hide_password=False), read_only, zone or "UTC")
