"""Write generated frames into any SQLAlchemy database, using the per-dialect DDL files.

Why DDL files rather than `to_sql` creating tables: the schema (types, keys, the indexes the
extracts rely on) is part of the product's contract and is reviewed as SQL, per dialect.
"""

from __future__ import annotations

import logging
import re
from datetime import date

import pandas as pd
from sqlalchemy import Engine, inspect, text

from crm_kpis.paths import SQL_DIR
from crm_kpis.sources.sql_files import run_script

log = logging.getLogger(__name__)


def schema_file(database: str, dialect: str):
    path = SQL_DIR / "schema" / dialect / f"{database}.sql"
    if not path.exists():
        raise FileNotFoundError(f"no {database} DDL for dialect {dialect!r}: {path}")
    return path


def _for_sqlite(frame: pd.DataFrame) -> pd.DataFrame:
    """SQLite stores timestamps as text in the one format the extracts compare against."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            out[column] = series.dt.strftime("%Y-%m-%d %H:%M:%S").astype(object).where(series.notna(), None)
        elif series.dtype == object and series.notna().any() and isinstance(series.dropna().iloc[0], date):
            # pd.NaT passes isinstance(date): test for missing first, or it is stored as 'NaT'
            out[column] = series.map(lambda d: None if pd.isna(d) else d.isoformat())
    return out


#: Columns that are BOOLEAN on the servers (0/1 integers in SQLite).
BOOLEAN_COLUMNS = ("delivered", "public", "is_callback")


def _for_server(frame: pd.DataFrame) -> pd.DataFrame:
    booleans = [c for c in BOOLEAN_COLUMNS if c in frame.columns]
    return frame.astype({c: bool for c in booleans}) if booleans else frame


def load_database(engine: Engine, database: str, tables: dict[str, pd.DataFrame]) -> dict[str, int]:
    """Replace the reference tables of `database` (crm or helpdesk) with `tables`."""
    dialect = engine.dialect.name
    ddl = schema_file(database, dialect)
    defined = re.findall(r"CREATE TABLE (\w+)", ddl.read_text(encoding="utf-8"))
    unknown = set(tables) - set(defined)
    if unknown:
        raise ValueError(f"tables not in the {database} schema: {sorted(unknown)}")
    existing = set(inspect(engine).get_table_names())
    with engine.begin() as conn:
        for table in defined:
            if table in existing:
                conn.execute(text(f"DROP TABLE {table}"))  # names come from our own DDL file
    run_script(engine, ddl)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for table, frame in tables.items():
            if frame.empty:
                counts[table] = 0
                continue
            data = _for_sqlite(frame) if dialect == "sqlite" else _for_server(frame)
            data.to_sql(table, conn, if_exists="append", index=False, chunksize=50_000)
            counts[table] = len(frame)
            log.info("loaded %d rows into %s.%s", len(frame), database, table)
    return counts
