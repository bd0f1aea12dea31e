"""Reading one extract: its SQL file run with bound parameters (through the connection's adapter),
its rows fetched the fastest way each engine allows, then typed by the contract.

Why its own module: the engine-specific fast paths (Arrow from PostgreSQL, unbuffered PyMySQL,
chunked SQLite) are the product's hot loop, and the typed result must be the same on all three.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pandas as pd
from sqlalchemy import URL, Engine, make_url, text

from crm_kpis.sources.connections import SourceSettings
from crm_kpis.sources.contract import tables_read
from crm_kpis.sources.errors import SourceError
from crm_kpis.sources.sql_files import bind_values, load_sql, numbered, pyformat
from crm_kpis.sources.typed_read import read_timestamps, type_frame

log = logging.getLogger(__name__)


#: Rows fetched per round trip when reading an extract.
CHUNK_ROWS = 100_000


def _parse_timestamps(frame: pd.DataFrame) -> pd.DataFrame:
    """Timestamps (`*_at`) and dates (`*_date`, `*_on`) of an ad-hoc query as naive UTC datetime64.

    For queries outside the extracts (tests, the benchmark); the extracts are read through
    `typed_read.type_frame`, which also counts what it cannot read.
    """

    for column in frame.columns:
        if column.endswith(("_at", "_date", "_on")):
            frame[column], _ = read_timestamps(frame[column], "UTC", not column.endswith("_at"))
    return frame


def _decimals_to_float(frame: pd.DataFrame) -> pd.DataFrame:
    """NUMERIC columns arrive as Decimal objects from PostgreSQL and MariaDB: compute in floats."""
    for column in frame.columns:
        if frame[column].dtype == object:
            sample = frame[column].dropna()
            if len(sample) and isinstance(sample.iloc[0], Decimal):
                frame[column] = frame[column].astype(float)
    return frame


def postgres_uri(url: URL | str) -> str:
    """The libpq URI of a SQLAlchemy PostgreSQL URL (for the ADBC driver), its query percent-encoded:
    SQLAlchemy writes a space as `+`, which libpq keeps (`options=-c+TimeZone=UTC` is refused)."""

    parsed = make_url(url).set(drivername="postgresql")
    base = parsed.set(query={}).render_as_string(hide_password=False)
    return f"{base}?{urlencode(parsed.query, doseq=True, quote_via=quote)}" if parsed.query else base


#: Source sessions run without PostgreSQL's JIT compiler. Why: the extracts are aggregates and
#: filters that finish in seconds, where compiling costs more than it saves: at scale 30 the buyer
#: flags took 7.7 s with it and 6.0 s without, and the Zendesk adapter's one statement for the four
#: ticket extracts spent 3.6 s of 5.7 s compiling (no extract gained more than 10 %). A connection
#: whose URI sets `options=-c jit=on` keeps it: libpq applies the later of two settings.
SESSION_OPTIONS = "-c jit=off"


def source_session_uri(url: URL | str) -> str:
    """The libpq URI of a source's ADBC sessions: its own options after the product's (SESSION_OPTIONS)."""
    parsed = make_url(url)
    own = parsed.query.get("options")
    options = " ".join(filter(None, (SESSION_OPTIONS, own if isinstance(own, str) else " ".join(own or ()))))
    return postgres_uri(parsed.update_query_dict({"options": options}))


def arrow_to_frame(table: Any) -> pd.DataFrame:
    """An Arrow table from the ADBC PostgreSQL driver as a DataFrame typed like the other engines'.

    NUMERIC arrives as an opaque extension type holding the decimal text: it becomes float64, as
    NUMERIC does from the other drivers. Other opaque types keep their text; dates become datetime64.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        if isinstance(field.type, pa.BaseExtensionType):
            storage = pa.chunked_array([chunk.storage for chunk in column.chunks], type=field.type.storage_type)
            is_numeric = getattr(field.type, "type_name", "") == "numeric"
            column = pc.cast(storage, pa.float64()) if is_numeric else storage
        columns.append(column)
    # Copied into pandas' own blocks, not zero-copy views (split_blocks): a view keeps the driver's
    # whole Arrow buffer alive, and the driver grows its buffers by doubling. With views, a sales
    # task at company scale held 1.1 GB after its reads instead of 0.7 GB.
    return _shared_strings(pa.table(columns, names=table.column_names).to_pandas(date_as_object=False))


def _shared_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as Python strings, each distinct value one object shared by its rows.

    Why: the extracts' text columns are labels with a handful of values (status, segment, team,
    channel). As pandas' Arrow-backed `str` columns, operations on them (a comparison, a group key,
    filling "unknown") built a Python string per row: the sales task at company scale peaked at
    2.1 GB instead of 1.3 GB. Shared objects are what pandas' CSV parser made. Missing is NaN.
    """
    for name in frame.columns:
        if frame[name].dtype == "str":
            frame[name] = shared_labels(frame[name])
    return frame


def shared_labels(column: pd.Series, missing: Any = np.nan) -> pd.Series:
    """The column as Python objects, each distinct label one object shared by its rows, a missing
    one read as `missing`. Built from the distinct values, never by boxing each row: a label column
    that is all NULL in a period arrives as float NaN, and `astype(object)` made a Python float per
    row (filling two such columns of a company's month of orders held 107 MB for 18 MB of labels)."""
    codes, uniques = pd.factorize(column)
    labels = np.append(np.asarray(uniques, dtype=object), missing)  # code -1 (missing) → the last
    return pd.Series(labels[codes], index=column.index, name=column.name, dtype=object)


def _read_postgres_arrow(engine: Engine, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """Read a query's rows through the ADBC PostgreSQL driver into Arrow, then pandas, in chunks.

    Why ADBC: building a DataFrame from driver rows costs several times the read itself at company
    scale; even `COPY … TO STDOUT` through psycopg hands Python one row at a time. The ADBC driver
    (Apache Arrow's C++ libpq client) fetches the result in PostgreSQL's binary format straight into
    Arrow columns: 4-6x faster than the COPY path for million-row extracts at company scale. The
    period's values are bound server-side as `$n` parameters.

    Why in chunks (a cursor, `CHUNK_ROWS` rows a fetch): the driver holds about five times a
    result's own size while it reads it (purchase histories at scale 30: 18 MB of rows, 103 MB more
    in the process), so one fetch of a million-row extract held gigabytes. A fetch of at most
    `CHUNK_ROWS` rows bounds that to the chunk, whatever the scale, and takes as long.
    """
    query, values = numbered(sql, params)
    uri = source_session_uri(engine.url)
    conn, reused = _adbc_acquire(uri)
    try:
        frame = _fetch_chunks(conn, query, values)
    except Exception:
        _adbc_close(conn)  # a broken session is never reused (nor its transaction)
        if not reused:
            raise
        # an idle session may have been ended by the server since (a restart, idle_session_timeout):
        # the query gets one new session before it counts as failed
        conn = _adbc_acquire(uri, fresh=True)[0]
        try:
            frame = _fetch_chunks(conn, query, values)
        except Exception:
            _adbc_close(conn)
            raise
    _adbc_release(uri, conn)
    return frame


#: The cursor a source session reads its current extract through (a session reads one at a time).
_CURSOR = "crm_kpis_extract"


def _fetch_chunks(conn: Any, query: str, values: tuple[Any, ...]) -> pd.DataFrame:
    """The query's rows through a cursor, `CHUNK_ROWS` at a time, each chunk made a DataFrame as it
    arrives. In a read-only transaction (a cursor lives in one; the sources are only read), planned
    for all its rows (`cursor_tuple_fraction` 1: by default a cursor is planned for its first tenth,
    which can pick a plan that is slower for the whole)."""
    chunks: list[pd.DataFrame] = []
    with conn.cursor() as cursor:
        # on an error the session is closed, not reused (_read_postgres_arrow): its transaction with it
        cursor.execute("BEGIN READ ONLY")
        cursor.execute("SET LOCAL cursor_tuple_fraction = 1")
        cursor.execute(f"DECLARE {_CURSOR} NO SCROLL CURSOR FOR {query}", values)
        # a FETCH cannot be wrapped in COPY, the driver's default way to read a result
        cursor.adbc_statement.set_options(**{"adbc.postgresql.use_copy": "false"})
        while True:
            cursor.execute(f"FETCH FORWARD {CHUNK_ROWS} FROM {_CURSOR}")
            table = cursor.fetch_arrow_table()
            rows = table.num_rows
            if rows or not chunks:  # an empty last fetch adds nothing (the first gives the columns)
                chunks.append(arrow_to_frame(table))
            del table  # the driver's buffers go before the next chunk's
            if rows < CHUNK_ROWS:
                break
        cursor.execute("COMMIT")
    return concat_releasing(chunks)


def concat_releasing(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """The chunks as one frame, each chunk freed as soon as it is copied in (the list is emptied).

    Why not `pd.concat`: it holds every chunk and the whole result at once, twice the extract (the
    purchase histories at company scale: 183 MB of rows, 366 MB to join them). Here each column is
    one array allocated at its full length but only touched as the chunks are copied in, chunk after
    chunk, each dropped after: about one extract's size at any time. Chunks whose columns differ in
    type (an integer column with NULLs in one chunk only arrives as floats there) or that hold
    pandas' own extension types are joined by `pd.concat`, which knows how to widen them.
    """
    if len(chunks) == 1:
        return chunks.pop()
    dtypes = chunks[0].dtypes
    same = all(list(c.columns) == list(chunks[0].columns) and c.dtypes.equals(dtypes) for c in chunks)
    if not same or not all(isinstance(dt, np.dtype) for dt in dtypes):
        frame = pd.concat(chunks, ignore_index=True)
        chunks.clear()
        return frame
    total = sum(len(c) for c in chunks)
    columns = {name: np.empty(total, dtype=dt) for name, dt in dtypes.items()}
    at = 0
    while chunks:
        chunk = chunks.pop(0)
        for name, column in columns.items():
            column[at:at + len(chunk)] = chunk[name].to_numpy()
        at += len(chunk)
        del chunk
    # each column a Series of its own type (an object column stays object: pandas would infer str)
    return pd.DataFrame({name: pd.Series(column, dtype=dtypes[name], copy=False) for name, column in columns.items()},
                        copy=False)


#: Idle ADBC connections of this process, per source URI: an area reads up to 19 extracts from one
#: database, a new connection (libpq, its session settings) costs about 30 ms, and extracts read at
#: once (crm_kpis.sources.loading) each need their own: a libpq session runs one query at a time.
#: Kept for one task's reads only (`close_idle_sessions` when they are done): a long-lived process (a
#: Celery worker, a backfill, the tests) must not hold sessions on every source it ever read.
_ADBC_IDLE: dict[tuple[int, str], list[Any]] = {}
_ADBC_LOCK = threading.Lock()


def _adbc_acquire(uri: str, fresh: bool = False) -> tuple[Any, bool]:
    """An idle ADBC connection to `uri` (unless `fresh`), or a new one, and whether it was idle. In
    autocommit mode: a session kept between extracts must not hold a transaction (and its snapshot)
    open on the source. Keyed by the process id too: a forked worker never shares its parent's socket."""
    import adbc_driver_postgresql.dbapi as adbc

    with _ADBC_LOCK:
        idle = _ADBC_IDLE.setdefault((os.getpid(), uri), [])
        if idle and not fresh:
            return idle.pop(), True
    return adbc.connect(uri, autocommit=True), False


def _adbc_release(uri: str, conn: Any) -> None:
    with _ADBC_LOCK:
        _ADBC_IDLE.setdefault((os.getpid(), uri), []).append(conn)


def _adbc_close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # already broken: nothing more to release
        log.debug("closing an ADBC connection failed", exc_info=True)


def close_idle_sessions() -> None:
    """Close this process's idle source sessions (the end of a task's reads, and at exit)."""
    with _ADBC_LOCK:
        mine = [key for key in _ADBC_IDLE if key[0] == os.getpid()]
        sessions = [conn for key in mine for conn in _ADBC_IDLE.pop(key)]
    for conn in sessions:
        _adbc_close(conn)


atexit.register(close_idle_sessions)


#: MariaDB/MySQL column types read as the text the server sends (PyMySQL's FIELD_TYPE codes: DATE,
#: TIMESTAMP, DATETIME, NEWDATE): the contract's typing parses a column of ISO text in C
#: (typed_read.read_timestamps), where PyMySQL built a datetime object per value in Python, a third
#: of the helpdesk reads' time at company scale. Text the parser cannot read is counted there, as a
#: zero date '0000-00-00' was when PyMySQL handed it over as text.
MYSQL_TIMES_AS_TEXT = frozenset({10, 7, 12, 14})


def times_as_text(conversions: dict[Any, Any]) -> dict[Any, Any]:
    """PyMySQL conversions (a connection's `decoders`, or `pymysql.converters.conversions`) without
    those of MYSQL_TIMES_AS_TEXT: such values arrive as the server's text."""
    return {t: f for t, f in conversions.items() if t not in MYSQL_TIMES_AS_TEXT}


def _read_mysql_unbuffered(engine: Engine, sql: str, params: dict[str, Any]) -> pd.DataFrame:
    """Read a query's rows from MariaDB/MySQL through PyMySQL's unbuffered cursor, in chunks.

    Why not pandas' read_sql over SQLAlchemy: it processes every row again after the driver. The
    driver's own chunks give identical frames 10-15 % faster (calls at company scale: 439k rows in
    4.4 s instead of 5.1 s). PyMySQL escapes the bound values itself, as it does under SQLAlchemy.
    """
    import pymysql

    query, used = pyformat(sql, params)
    raw = engine.raw_connection()
    conn = raw.driver_connection
    decoders = conn.decoders
    conn.decoders = times_as_text(decoders)  # this read's only: restored below
    try:
        with conn.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(query, used)
            names = [column[0] for column in cursor.description]
            chunks = [pd.DataFrame.from_records(rows, columns=names, coerce_float=True)
                      for rows in iter(lambda: cursor.fetchmany(CHUNK_ROWS), ())]
    finally:
        conn.decoders = decoders
        raw.close()
    if not chunks:
        return pd.DataFrame(columns=names)
    return pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]


def adapted_sql(sql: str, name: str, engine: Engine, source: SourceSettings | None) -> str:
    """The SQL of file `name` as it runs on this source: through its stack of adapters when it has one."""
    if source is None or source.stack is None:
        return sql
    return source.stack.adapt(sql, tables_read(name), engine)


def read_query(engine: Engine, name: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run one SQL file with bound parameters and return its rows, typed, as a DataFrame."""
    try:
        return read_extract(engine, name, params)[0]
    finally:
        close_idle_sessions()  # a one-off read keeps no session


def read_extract(engine: Engine, name: str, params: dict[str, Any], source_tz: str = "UTC",
                 source: SourceSettings | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run one SQL file with bound parameters; its rows typed by the contract, and what was unreadable.

    Rows with a value that cannot be read carry a marker column (see typed_read) for the row checks.
    With a `source` that has a stack of adapters, the file's reference tables are read through their
    SELECTs (crm_kpis.sources.stack).
    """

    dialect = engine.dialect.name
    sql = adapted_sql(load_sql(name, dialect), name, engine, source)
    read_at = datetime.now(UTC)  # what the rows record cannot be later than this (typed_read)
    frame = read_rows(engine, sql, params, name)
    tolerance = source.future_tolerance_hours if source is not None else SourceSettings.future_tolerance_hours
    frame, reads = type_frame(frame, name, source_tz, read_at, tolerance)
    return frame, reads


def read_rows(engine: Engine, sql: str, params: dict[str, Any], name: str) -> pd.DataFrame:
    """A query's rows as the driver gives them (not typed by the contract yet); `name` says which."""
    dialect = engine.dialect.name
    try:
        if dialect == "postgresql":
            frame = _read_postgres_arrow(engine, sql, params)  # Arrow types: floats and labels already
        else:
            if dialect == "mysql":
                frame = _read_mysql_unbuffered(engine, sql, bind_values(params, dialect))
            else:
                # A server-side cursor read in chunks: the driver never holds every row as Python
                # tuples beside the DataFrame, which is what makes large periods expensive in memory.
                with engine.connect().execution_options(stream_results=True) as conn:
                    chunks = list(pd.read_sql_query(text(sql), conn, params=bind_values(params, dialect),
                                                    chunksize=CHUNK_ROWS))
                frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
            frame = _shared_strings(_decimals_to_float(frame))
    except SourceError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"query {name} failed on {engine.url.render_as_string()}: {first}") from exc
    log.info("read %d rows with %s from %s", len(frame), name, engine.url.database)
    return frame
