"""Company-scale demo data: the generator run in shards, loaded through the servers' bulk paths.

Why shards: one generator call holds every table in memory, which is fine for the demo but not for
a million customers and tens of millions of orders. A shard is one generator call at a fraction
of the scale, like a region of the company with its own customers, reps, agents and campaigns:
its ids are moved into their own block, so shards never collide and their references stay inside
the shard. Reference tables that every shard shares (products, SLA policies) come from the first
shard; the daily channel tables (spend, web traffic, social) are summed over the shards.

Why not `to_sql`: it sends INSERT statements; PostgreSQL's COPY and MariaDB's LOAD DATA are
several times faster. Indexes are created after the load, as a bulk load should.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace

import pandas as pd
from sqlalchemy import Engine, create_engine, inspect, text

from crm_kpis.sources.sql_files import script_statements
from crm_kpis.tools.demo.generator import DemoSpec, generate
from crm_kpis.tools.demo.loader import BOOLEAN_COLUMNS, _for_sqlite, schema_file

log = logging.getLogger(__name__)

#: The largest scale one shard generates (about 1 GB of frames at its peak).
SHARD_SCALE = 10.0
#: Ids of shard k start at k × ID_BLOCK (the largest table of a shard has well under a million rows).
ID_BLOCK = 10_000_000
SHARED_TABLES = ("products", "sla_policies")
SUMMED_TABLES = {
    "marketing_spend": ["spend_date", "channel"],
    "web_traffic": ["traffic_date", "channel"],
    "social_activity": ["activity_date", "platform"],
}
NOT_SHARDED_IDS = ("product_id",)
WRITE_ROWS = 500_000  # rows per COPY / LOAD DATA batch


def shards_for(scale: float) -> int:
    return max(1, math.ceil(scale / SHARD_SCALE))


def shard_specs(spec: DemoSpec, shards: int) -> list[DemoSpec]:
    """One spec per shard; a single shard is the spec itself (same rows as the plain generator)."""
    if shards == 1:
        return [spec]
    return [replace(spec, scale=spec.scale / shards, seed=spec.seed * 1_000 + k) for k in range(shards)]


def _move_ids(frame: pd.DataFrame, shard: int) -> pd.DataFrame:
    if shard == 0:
        return frame
    out = frame.copy()
    for column in out.columns:
        if column.endswith("_id") and column not in NOT_SHARDED_IDS:
            if (out[column] >= ID_BLOCK).any():
                raise ValueError(f"{column} exceeds the shard id block; lower SHARD_SCALE")
            out[column] = out[column] + shard * ID_BLOCK
    return out


def sharded(spec: DemoSpec, shards: int) -> Iterator[tuple[int, dict[str, dict[str, pd.DataFrame]]]]:
    """(shard number, tables) for each shard; the summed tables only in the last one, totalled."""
    totals: dict[str, list[pd.DataFrame]] = {t: [] for t in SUMMED_TABLES}
    specs = shard_specs(spec, shards)
    for k, shard_spec in enumerate(specs):
        data = generate(shard_spec)
        out: dict[str, dict[str, pd.DataFrame]] = {}
        for database, tables in data.items():
            out[database] = {}
            for table, frame in tables.items():
                if table in SHARED_TABLES and k > 0:
                    continue
                if table in SUMMED_TABLES and shards > 1:
                    totals[table].append(frame)
                    continue
                out[database][table] = _move_ids(frame, k)
        if k == len(specs) - 1 and shards > 1:
            for table, frames in totals.items():
                keys = SUMMED_TABLES[table]
                summed = pd.concat(frames).groupby(keys, as_index=False, sort=True).sum(numeric_only=True)
                out["crm"][table] = summed
        yield k, out


# --- bulk loading -------------------------------------------------------------------------------
def _statements(database: str, dialect: str) -> tuple[list[str], list[str]]:
    """The DDL file's statements, split into tables and the indexes to build after the load."""
    statements = script_statements(schema_file(database, dialect))
    indexes = [s for s in statements if re.match(r"CREATE (UNIQUE )?INDEX", s, re.I)]
    return [s for s in statements if s not in indexes], indexes


def _csv_ready(frame: pd.DataFrame, dialect: str) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if column in BOOLEAN_COLUMNS:
            out[column] = series.astype("Int64")  # 0/1: both servers read it as a boolean
        elif pd.api.types.is_datetime64_any_dtype(series):
            out[column] = series.dt.strftime("%Y-%m-%d %H:%M:%S")
        elif pd.api.types.is_float_dtype(series):
            out[column] = series.round(6)  # money and scores: no 0.30000000000000004 in the CSV
    return out


class BulkLoader:
    """Creates one database's tables, appends shards with COPY / LOAD DATA, then builds indexes."""

    def __init__(self, url: str, database: str) -> None:
        self.database = database
        connect_args = {"local_infile": True} if url.startswith("mysql") else {}
        self.engine: Engine = create_engine(url, connect_args=connect_args)
        self.dialect = self.engine.dialect.name
        self.tables_ddl, self.indexes_ddl = _statements(database, self.dialect)
        self.counts: dict[str, int] = {}
        self.seconds = 0.0

    def create(self) -> None:
        defined = [re.search(r"CREATE TABLE (\w+)", s).group(1) for s in self.tables_ddl if "CREATE TABLE" in s]
        existing = set(inspect(self.engine).get_table_names())
        with self.engine.begin() as conn:
            for table in defined:
                if table in existing:
                    conn.execute(text(f"DROP TABLE {table}"))  # names from our own DDL file
            for statement in self.tables_ddl:
                conn.execute(text(statement))

    def append(self, tables: dict[str, pd.DataFrame]) -> None:
        started = time.perf_counter()
        for table, frame in tables.items():
            if frame.empty:
                continue
            if self.dialect == "postgresql":
                self._copy(table, frame)
            elif self.dialect in ("mysql", "mariadb"):
                self._load_data(table, frame)
            else:
                with self.engine.begin() as conn:
                    _for_sqlite(frame).to_sql(table, conn, if_exists="append", index=False, chunksize=50_000)
            self.counts[table] = self.counts.get(table, 0) + len(frame)
        self.seconds += time.perf_counter() - started

    def _copy(self, table: str, frame: pd.DataFrame) -> None:
        raw = self.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                columns = ", ".join(frame.columns)
                with cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    for start in range(0, len(frame), WRITE_ROWS):
                        chunk = _csv_ready(frame.iloc[start:start + WRITE_ROWS], self.dialect)
                        copy.write(chunk.to_csv(index=False, header=False, quoting=csv.QUOTE_MINIMAL))
            raw.commit()
        finally:
            raw.close()

    def _load_data(self, table: str, frame: pd.DataFrame) -> None:
        columns = ", ".join(frame.columns)
        raw = self.engine.raw_connection()
        try:
            with raw.cursor() as cursor:
                cursor.execute("SET unique_checks = 0")
                for start in range(0, len(frame), WRITE_ROWS):
                    chunk = _csv_ready(frame.iloc[start:start + WRITE_ROWS], self.dialect)
                    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as handle:
                        chunk.to_csv(handle, index=False, header=False, na_rep="\\N", quoting=csv.QUOTE_MINIMAL)
                    try:
                        cursor.execute(
                            f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
                            "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' "
                            f"({columns})", (handle.name,))
                    finally:
                        os.unlink(handle.name)
            raw.commit()
        finally:
            raw.close()

    def finish(self) -> None:
        """Build the indexes and refresh the planner's statistics."""
        started = time.perf_counter()
        with self.engine.begin() as conn:
            for statement in self.indexes_ddl:
                conn.execute(text(statement))
        if self.dialect == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
        elif self.dialect in ("mysql", "mariadb"):
            with self.engine.begin() as conn:
                for table in self.counts:
                    conn.execute(text(f"ANALYZE TABLE {table}"))
        self.seconds += time.perf_counter() - started
        self.engine.dispose()


def generate_and_load(spec: DemoSpec, targets: list[tuple[str, str]], shards: int | None = None,
                      progress: bool = False) -> list[BulkLoader]:
    """Generate `spec` in shards and bulk-load it into each (database, url) target.

    A database may have several targets (the benchmark loads the helpdesk into MariaDB and into
    PostgreSQL): each shard is generated once and written to all of them.
    """
    shards = shards or shards_for(spec.scale)
    loaders = [BulkLoader(url, database) for database, url in targets]
    for loader in loaders:
        loader.create()
    for k, data in sharded(spec, shards):
        for loader in loaders:
            loader.append(data[loader.database])
        if progress:
            print(f"  shard {k + 1}/{shards} loaded", flush=True)
    for loader in loaders:
        loader.finish()
    return loaders
