"""`make bench`: the pipeline at company scale, against the cost of just reading its data.

    python -m crm_kpis.tools.bench [--scale 300] [--month 2026-10] [--day 2026-10-15] [--regenerate]
                             [--backfill-months 12] [--backfill-days 31] [--json PATH]

Layout, as a mid-size company would have it: the CRM in PostgreSQL, the helpdesk in MariaDB, the
KPI history in PostgreSQL (a copy of the helpdesk also goes to PostgreSQL, for the plain-SQL
baseline). Databases are named after the scale (`crm_kpis_bench_s300_crm`, ...) and kept, so a
second run reuses the data unless `--regenerate`. Servers: `CRM_KPIS_BENCH_PG_URL` and
`CRM_KPIS_BENCH_MYSQL_URL` (default: the local servers, user postgres / root); database names start
with `CRM_KPIS_BENCH_DB_PREFIX` (default `crm_kpis_bench`).

Each step runs in its own process, so the peak memory it reports is that step's own:

1. **floor**: read the rows and columns the monthly run needs and nothing else (each extract's
   SQL once, fetched into Arrow by the ADBC driver on PostgreSQL, a streamed SELECT on MariaDB,
   rows discarded; two at once, as the pipeline reads them);
2. **monthly** and **daily**: the pipeline's computation (extract, checks, compute, quality gate,
   history write) for one month and one day, without PDF or email, timed after the imports
   (an Airflow worker has them loaded; the step's wall time, imports included, is in the JSON),
   all areas one after the other in one process;
   **monthly_dag**: the month as the DAG runs it, the three area tasks in parallel processes, then
   the gate and the history write;
3. **sql_baseline**: KPIs computed as plain SQL in PostgreSQL (`include/sql/bench/`), and the
   same with cross-sell computed from the pipeline's own flags query;
4. **backfill**: 12 monthly and 31 daily periods, one after the other (no email);
5. **pdf**: rendering the monthly report (context, HTML, PDF) from the history.

Timings are printed as a table and written as JSON; they are never test assertions.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from crm_kpis.paths import SQL_DIR, var_dir

PG_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432"
MYSQL_DEFAULT = "mysql+pymysql://root@127.0.0.1:3306"
AREAS = ("marketing", "sales", "operations")


# --- where the data lives --------------------------------------------------------------------------
def scale_tag(scale: float) -> str:
    return f"s{scale:g}".replace(".", "_")


def database_urls(scale: float) -> dict[str, str]:
    pg = os.environ.get("CRM_KPIS_BENCH_PG_URL", PG_DEFAULT).rstrip("/")
    my = os.environ.get("CRM_KPIS_BENCH_MYSQL_URL", MYSQL_DEFAULT).rstrip("/")
    prefix = f"{os.environ.get('CRM_KPIS_BENCH_DB_PREFIX', 'crm_kpis_bench')}_{scale_tag(scale)}"
    return {
        "crm": f"{pg}/{prefix}_crm",
        "helpdesk": f"{my}/{prefix}_helpdesk",
        "helpdesk_pg": f"{pg}/{prefix}_helpdesk",
        "warehouse": f"{pg}/{prefix}_warehouse",
    }


def _airflow_uri(sqlalchemy_url: str) -> str:
    """The Airflow connection URI of a SQLAlchemy URL (the pipeline reads Airflow connections)."""
    return re.sub(r"^postgresql\+psycopg://", "postgres://", re.sub(r"^mysql\+pymysql://", "mysql://", sqlalchemy_url))


def pipeline_env(scale: float) -> dict[str, str]:
    urls = database_urls(scale)
    return {
        "AIRFLOW_CONN_CRM_DB": _airflow_uri(urls["crm"]),
        "AIRFLOW_CONN_HELPDESK_DB": _airflow_uri(urls["helpdesk"]),
        "AIRFLOW_CONN_KPI_WAREHOUSE": _airflow_uri(urls["warehouse"]),
    }


def _create_databases(urls: dict[str, str], drop: bool) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    for url in urls.values():
        parsed = make_url(url)
        admin_db = "postgres" if parsed.get_backend_name() == "postgresql" else None
        server = create_engine(parsed._replace(database=admin_db), isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            name = parsed.database  # built above from the scale, not from user text
            if drop:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            if parsed.get_backend_name() == "postgresql":
                exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                if not exists:
                    conn.execute(text(f"CREATE DATABASE {name}"))
            else:
                conn.execute(text(f"CREATE DATABASE IF NOT EXISTS {name}"))
        server.dispose()


def _marker(scale: float) -> Path:
    return var_dir() / "bench" / f"data-{scale_tag(scale)}.json"


# --- the steps (each runs in a child process) ----------------------------------------------------------
def step_generate(scale: float, end_month: str, months: int) -> dict[str, Any]:
    from crm_kpis.tools.demo.bulk import generate_and_load, shards_for
    from crm_kpis.tools.demo.generator import spec_for

    urls = database_urls(scale)
    _create_databases(urls, drop=True)
    spec = spec_for(date.fromisoformat(end_month), months=months, scale=scale)
    targets = [("crm", urls["crm"]), ("helpdesk", urls["helpdesk"]), ("helpdesk", urls["helpdesk_pg"])]
    loaders = generate_and_load(spec, targets, progress=True)
    rows = {f"{loader.database}@{loader.dialect}": loader.counts for loader in loaders}
    return {"shards": shards_for(scale), "rows": rows, "load_seconds": {
        f"{loader.database}@{loader.dialect}": round(loader.seconds, 1) for loader in loaders}}


def _monthly_extracts(grain: str = "monthly") -> list[str]:
    from crm_kpis.kpis import REGISTRY

    return sorted({name for k in REGISTRY.values() if k.applies_to(grain) for name in k.inputs})


def step_floor(scale: float, month: str) -> dict[str, Any]:
    """Read what the monthly run reads, once per extract, and throw it away.

    PostgreSQL: the query's result fetched into Arrow columns by the ADBC driver, the fastest read
    there is from Python (the server's binary format, decoded in C++) and the transport the
    pipeline uses, with no DataFrame built. MariaDB: a streamed SELECT through PyMySQL, its times
    as text as the pipeline reads them. As many extracts at once as the pipeline reads
    (`parallel_reads`, 2), each thread with its own connections: a floor read one query after the
    other would not be a floor.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import adbc_driver_postgresql.dbapi as adbc
    import pymysql
    from sqlalchemy.engine import make_url

    from crm_kpis.periods import ReportPeriod
    from crm_kpis.sources.connections import CRM_CONN_ID, SourceSettings
    from crm_kpis.sources.extracts import EXTRACTS
    from crm_kpis.sources.reading import source_session_uri, times_as_text
    from crm_kpis.sources.sql_files import load_sql, numbered, pyformat

    urls = database_urls(scale)
    period = ReportPeriod.parse("monthly", month)
    my = make_url(urls["helpdesk"])
    mysql_conversions = times_as_text(pymysql.converters.conversions)  # as the pipeline reads them
    local = threading.local()
    opened: list[Any] = []

    def connections() -> tuple[Any, Any]:
        if not hasattr(local, "pg"):
            local.pg = adbc.connect(source_session_uri(urls["crm"]), autocommit=True)  # as the pipeline's sessions
            local.my = pymysql.connect(host=my.host, port=my.port or 3306, user=my.username,
                                       password=my.password or "", database=my.database,
                                       cursorclass=pymysql.cursors.SSCursor, conv=mysql_conversions)
            opened.extend((local.pg, local.my))
        return local.pg, local.my

    def read(name: str) -> tuple[str, dict[str, float]]:
        extract = EXTRACTS[name]
        target = period.shift(extract.shift) if extract.shift else period
        params = target.sql_params()
        pconn, mconn = connections()
        started = time.perf_counter()
        rows = 0
        if extract.conn_id == CRM_CONN_ID:
            with pconn.cursor() as cur:
                cur.execute(*numbered(load_sql(extract.sql, "postgresql"), params))
                rows = cur.fetch_arrow_table().num_rows
        else:
            with mconn.cursor() as cur:
                cur.execute(*pyformat(load_sql(extract.sql, "mysql"), params))
                while batch := cur.fetchmany(100_000):
                    rows += len(batch)
        return name, {"rows": rows, "seconds": round(time.perf_counter() - started, 3)}

    threads = SourceSettings.parallel_reads
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            per_extract = dict(pool.map(read, _monthly_extracts()))
    finally:
        for conn in opened:
            conn.close()
    return {"seconds": round(time.perf_counter() - started, 3), "threads": threads,
            "rows": sum(v["rows"] for v in per_extract.values()), "extracts": per_extract}


def _interval(grain: str, key: str) -> tuple[datetime, datetime]:
    from crm_kpis.periods import ReportPeriod

    period = ReportPeriod.parse(grain, key)
    return period.utc_start.replace(tzinfo=UTC), period.utc_end.replace(tzinfo=UTC)


def _gate_and_publish(grain: str, key: str, run_id: str) -> int:
    """The DAG's check_quality and publish_history tasks for a staged run; the values written."""
    from crm_kpis.orchestration import tasks

    start, end = _interval(grain, key)
    gate = tasks.check_quality(grain, start, end, run_id)
    return int(tasks.publish(grain, start, end, run_id, gate["warnings"])["rows_written"])


def _run_period(grain: str, key: str, run_id: str) -> dict[str, Any]:
    from crm_kpis.orchestration import tasks

    start, end = _interval(grain, key)
    rows_read = 0
    for area in AREAS:
        rows_read += int(tasks.compute_and_stage(area, grain, start, end, run_id)["rows_read"])
    return {"rows_read": rows_read, "values_written": _gate_and_publish(grain, key, run_id)}


def step_pipeline(scale: float, grain: str, key: str) -> dict[str, Any]:
    from crm_kpis.history.store import ensure_schema
    from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

    ensure_schema(engine_for(WAREHOUSE_CONN_ID))  # also imports Airflow and pandas: not part of the time
    started = time.perf_counter()
    out = _run_period(grain, key, f"bench__{grain}__{key}")
    out["seconds"] = round(time.perf_counter() - started, 3)
    return out


def step_area(scale: float, grain: str, key: str, area: str, run_id: str) -> dict[str, Any]:
    """One `compute_<area>` task of the DAG: extract, check, compute and stage one area."""
    from crm_kpis.history.store import ensure_schema
    from crm_kpis.orchestration import tasks
    from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

    ensure_schema(engine_for(WAREHOUSE_CONN_ID))
    start, end = _interval(grain, key)
    started = time.perf_counter()
    out = tasks.compute_and_stage(area, grain, start, end, run_id)
    return {"rows_read": int(out["rows_read"]), "seconds": round(time.perf_counter() - started, 3)}


def step_pipeline_dag(scale: float, grain: str, key: str) -> dict[str, Any]:
    """The period as the DAG runs it: the three area tasks in parallel processes (as Airflow's
    LocalExecutor starts them), then the quality gate and the history write. Peak memory is the sum
    of the area processes' peaks, an upper bound of what they held at once."""
    run_id = f"bench_dag__{grain}__{key}"
    started = time.perf_counter()
    children = {area: _start_step("area", scale, {}, grain=grain, key=key, area=area, run_id=run_id)
                for area in AREAS}
    areas = {area: _finish_step("area", proc) for area, proc in children.items()}
    values_written = _gate_and_publish(grain, key, run_id)
    return {"seconds": round(time.perf_counter() - started, 3),
            "rows_read": sum(a["rows_read"] for a in areas.values()), "values_written": values_written,
            "areas": {a: {"seconds": r["wall_seconds"], "peak_rss_mb": r["peak_rss_mb"]} for a, r in areas.items()},
            "areas_peak_sum_mb": round(sum(r["peak_rss_mb"] for r in areas.values()), 1)}


def step_backfill(scale: float, month: str, months: int, days: int) -> dict[str, Any]:
    from crm_kpis.history.store import ensure_schema
    from crm_kpis.periods import ReportPeriod
    from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

    ensure_schema(engine_for(WAREHOUSE_CONN_ID))
    last = ReportPeriod.parse("monthly", month)
    out: dict[str, Any] = {"periods": {}}  # each period's seconds: does a later month, with more history, cost more?

    def run(grain: str, key: str) -> None:
        started = time.perf_counter()
        rows = _run_period(grain, key, f"bench_backfill__{grain}__{key}")["rows_read"]
        out["periods"][key] = {"seconds": round(time.perf_counter() - started, 2), "rows_read": rows}

    started = time.perf_counter()
    for n in range(months - 1, -1, -1):
        run("monthly", last.shift(-n).key)
    out["monthly_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    first_day = last.end_date - timedelta(days=days)
    for n in range(days):
        run("daily", (first_day + timedelta(days=n)).isoformat())
    out["daily_seconds"] = round(time.perf_counter() - started, 2)
    out.update(months=months, days=days)
    return out


def step_pdf(scale: float, month: str) -> dict[str, Any]:
    """The render task's work: context from the history, HTML, PDF; WeasyPrint's import included
    (the task imports it), Airflow's not (the worker has it loaded; the lookup of the warehouse
    connection imports it here)."""
    from crm_kpis.orchestration import tasks
    from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

    engine_for(WAREHOUSE_CONN_ID)
    start, end = _interval("monthly", month)
    started = time.perf_counter()
    out = tasks.render_report("monthly", start, end)
    return {"pdf_bytes": out["pdf_bytes"], "seconds": round(time.perf_counter() - started, 2)}


def step_clv(scale: float, month: str) -> dict[str, Any]:
    """The lifetime-value models of the month alone: their two extracts read through the pipeline's
    reader (every customer's purchase history and tenure up to the month's end), then the fits
    (BG/NBD on the whole history and again on the calibration part, Gamma-Gamma, sBG) and the
    per-customer predictions; the read and the fit timed apart."""
    from crm_kpis.clv import forecast
    from crm_kpis.periods import ReportPeriod
    from crm_kpis.sources.loading import load_extracts

    period = ReportPeriod.parse("monthly", month)
    started = time.perf_counter()
    frames = load_extracts({"purchase_histories", "customer_lifetimes"}, period).frames
    read = time.perf_counter() - started
    out: dict[str, Any] = {"read_seconds": round(read, 3), "customers": len(frames["purchase_histories"])}
    started = time.perf_counter()
    try:
        d = forecast.forecast(frames["purchase_histories"], period).diagnostics()
        out.update(repeat_buyers=d["repeat_buyers"], bgnbd=d["bgnbd"]["params"], gamma_gamma=d["gamma_gamma"]["params"],
                   holdout={k: d["holdout"].get(k) for k in ("actual_cumulative", "predicted_cumulative")})
    except forecast.ModelUndefined as exc:  # a tiny scale: say so, the timing still counts
        out["undefined"] = str(exc)
    out["fit_seconds"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    try:
        out["sbg"] = forecast.retention_projection(frames["customer_lifetimes"], period)[1].params
    except forecast.ModelUndefined as exc:
        out["sbg_undefined"] = str(exc)
    out["sbg_seconds"] = round(time.perf_counter() - started, 3)
    out["seconds"] = round(read + out["fit_seconds"] + out["sbg_seconds"], 3)
    return out


def adapter_db_prefix() -> str:
    """The adapters step's databases: `<prefix>_<layout>_{crm,reference,synced}` on both servers."""
    return f"{os.environ.get('CRM_KPIS_BENCH_DB_PREFIX', 'crm_kpis_bench')}_adapters"


#: the areas whose KPIs read a database (the ones an adapter of that database changes)
ADAPTED_AREAS = {"helpdesk": ("operations",), "crm": ("sales", "marketing")}


def step_adapters(scale: float, month: str, adapter_scale: float = 1.0, repeats: int = 3,
                  layouts: str = "", engines: str = "") -> dict[str, Any]:
    """The areas of the month that read an adapter's database (operations for a helpdesk, sales and
    marketing for a CRM) from the same business in the reference layout and in each synced layout,
    through its adapter, on SQLite, PostgreSQL and MariaDB (median of `repeats`). Its own data, at
    `adapter_scale` (demo scale 1: `make demo`'s). `layouts` and `engines` (comma-separated, all when
    empty) keep some of them: one adapter at company scale on one server, say; the composed stack is
    timed only when every layout is."""
    import statistics

    from crm_kpis.compute import compute_area
    from crm_kpis.periods import ReportPeriod
    from crm_kpis.sources.connections import engine_for
    from crm_kpis.tools.demo.generator import generate, spec_for
    from crm_kpis.tools.demo.layouts import AS_RECORDED, LAYOUTS, load_layout
    from crm_kpis.tools.demo.loader import load_database

    wanted_layouts = set(filter(None, layouts.split(","))) or set(LAYOUTS)
    wanted_engines = set(filter(None, engines.split(","))) or {"sqlite", "postgresql", "mariadb"}
    if unknown := (wanted_layouts - set(LAYOUTS)) | (wanted_engines - {"sqlite", "postgresql", "mariadb"}):
        raise SystemExit(f"--adapter-layouts/--adapter-engines: unknown {', '.join(sorted(unknown))}")
    logging.disable(logging.INFO)  # the extracts' per-read lines would drown the step's output
    data = generate(spec_for(date.fromisoformat(f"{month}-01"), months=24, seed=42, scale=adapter_scale))
    pg, my = (os.environ.get(k, d).rstrip("/") for k, d in (("CRM_KPIS_BENCH_PG_URL", PG_DEFAULT),
                                                              ("CRM_KPIS_BENCH_MYSQL_URL", MYSQL_DEFAULT)))
    prefix = adapter_db_prefix()
    folder = var_dir() / "bench" / "adapters"
    folder.mkdir(parents=True, exist_ok=True)
    period = ReportPeriod.parse("monthly", month)
    out: dict[str, Any] = {"adapter_scale": adapter_scale, "timings": {}}
    for layout, (database, writer) in LAYOUTS.items():
        if layout not in wanted_layouts:
            continue
        business = {**data, database: AS_RECORDED.get(layout, dict)(data[database])}  # the same one in both layouts
        synced = writer(business[database])
        out.setdefault("synced_rows", {})[layout] = {t: len(f) for t, f in synced.items()}
        for engine_name, base, schema in (("sqlite", None, None), ("postgresql", pg, layout.split("_")[-1]),
                                          ("mariadb", my, None)):
            if engine_name not in wanted_engines:
                continue
            # databases of their own per layout: the engines of the one before stay open in this process
            tag = layout.removeprefix("fivetran_")
            if base is None:
                urls = {k: f"sqlite:///{folder / f'{tag}_{k}.db'}" for k in ("crm", "reference", "synced")}
                for url in urls.values():
                    Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
            else:
                urls = {k: f"{base}/{prefix}_{tag}_{k}" for k in ("crm", "reference", "synced")}
                _create_databases(urls, drop=True)
            other = "crm" if database == "helpdesk" else "helpdesk"
            load_database(engine_for(urls["crm"]), other, business[other])
            load_database(engine_for(urls["reference"]), database, business[database])
            load_layout(engine_for(urls["synced"]), synced, schema)
            for url in urls.values():
                _refresh_statistics(url)
            conn = {"crm": "AIRFLOW_CONN_CRM_DB", "helpdesk": "AIRFLOW_CONN_HELPDESK_DB"}
            os.environ[conn[other]] = _conn_json(urls["crm"], {})
            timing = {}
            for label, url, extra in (("reference", urls["reference"], {}),
                                      (layout, urls["synced"], {"adapter": layout, **({"schema": schema} if schema else {})})):
                os.environ[conn[database]] = _conn_json(url, extra)
                seconds = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    for area in ADAPTED_AREAS[database]:
                        compute_area(area, period)
                    seconds.append(time.perf_counter() - started)
                timing[label] = round(statistics.median(seconds), 3)
            out["timings"][f"{layout} on {engine_name}"] = timing
    if wanted_layouts == set(LAYOUTS) and "postgresql" in wanted_engines:
        out["timings"]["fivetran stack on postgresql"] = _composed_stack_timing(data, pg, prefix, period, repeats)
    out["seconds"] = round(sum(sum(t.values()) for t in out["timings"].values()) * repeats, 2)
    return out


def step_stack(scale: float, month: str, adapter_scale: float = 1.0, repeats: int = 3) -> dict[str, Any]:
    """The composed Fivetran stack alone (the adapters step's last row) at `adapter_scale`: every area
    of the month from the stack and from the same business in the reference layout, on PostgreSQL."""
    from crm_kpis.periods import ReportPeriod
    from crm_kpis.tools.demo.generator import generate, spec_for

    logging.disable(logging.INFO)
    started = time.perf_counter()
    data = generate(spec_for(date.fromisoformat(f"{month}-01"), months=24, seed=42, scale=adapter_scale))
    rows = sum(len(f) for frames in data.values() for f in frames.values())
    pg = os.environ.get("CRM_KPIS_BENCH_PG_URL", PG_DEFAULT).rstrip("/")
    timing = _composed_stack_timing(data, pg, adapter_db_prefix(), ReportPeriod.parse("monthly", month), repeats)
    return {"adapter_scale": adapter_scale, "source_rows": rows, "timings": {"fivetran stack on postgresql": timing},
            "seconds": round(time.perf_counter() - started, 2)}


def _composed_stack_timing(data: dict[str, Any], pg: str, prefix: str, period: Any, repeats: int) -> dict[str, float]:
    """Every area of the month from the business as a company's synced stack (FIVETRAN_STACK: one
    PostgreSQL database, one schema per connector) and from the same business in the reference
    layout (two databases), median of `repeats`."""
    import statistics

    from crm_kpis.compute import compute_area
    from crm_kpis.sources.connections import engine_for
    from crm_kpis.tools.demo.layouts import FIVETRAN_STACK, as_recorded_by, write_stack
    from crm_kpis.tools.demo.loader import load_database

    business = as_recorded_by(data, [p["adapter"] for parts in FIVETRAN_STACK.values() for p in parts])
    urls = {k: f"{pg}/{prefix}_stack_{k}" for k in ("crm", "helpdesk", "synced")}
    _create_databases(urls, drop=True)
    for database in ("crm", "helpdesk"):
        load_database(engine_for(urls[database]), database, business[database])
    write_stack(engine_for(urls["synced"]), business)
    for url in urls.values():
        _refresh_statistics(url)
    timing = {}
    for label, crm, helpdesk in (("reference", (urls["crm"], {}), (urls["helpdesk"], {})),
                                 ("fivetran stack", (urls["synced"], {"adapters": FIVETRAN_STACK["crm"]}),
                                  (urls["synced"], {"adapters": FIVETRAN_STACK["helpdesk"]}))):
        os.environ["AIRFLOW_CONN_CRM_DB"], os.environ["AIRFLOW_CONN_HELPDESK_DB"] = _conn_json(*crm), _conn_json(*helpdesk)
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            for area in ("sales", "marketing", "operations"):
                compute_area(area, period)
            seconds.append(time.perf_counter() - started)
        timing[label] = round(statistics.median(seconds), 3)
    return timing


def _refresh_statistics(url: str) -> None:
    """The planner's statistics of a freshly loaded database, as a warehouse's autovacuum (or a
    connector's own load) keeps them: without them PostgreSQL plans the first queries on guesses
    and a comparison of two layouts measures which one the guesses suit."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if engine.dialect.name in ("mysql", "mariadb"):
                for table in inspect(conn).get_table_names():
                    conn.execute(text(f"ANALYZE TABLE `{table}`"))
            else:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def _conn_json(url: str, extra: dict[str, Any]) -> str:
    """An Airflow connection (JSON form) for a SQLAlchemy URL, with the project's extras."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": parsed.database, "extra": extra})
    kind = "postgres" if parsed.get_backend_name() == "postgresql" else "mysql"
    return json.dumps({"conn_type": kind, "host": parsed.host, "port": parsed.port, "login": parsed.username,
                       "password": parsed.password, "schema": parsed.database, "extra": extra})


def step_sql_baseline(scale: float, month: str) -> dict[str, Any]:
    """Every query of include/sql/bench/ (each computes several KPIs) against PostgreSQL."""
    import psycopg
    from sqlalchemy.engine import make_url

    from crm_kpis.kpis import REGISTRY
    from crm_kpis.periods import ReportPeriod
    from crm_kpis.sources.sql_files import pyformat

    urls = database_urls(scale)
    params = ReportPeriod.parse("monthly", month).sql_params()
    results: dict[str, Any] = {}
    values: dict[str, float | None] = {}  # company-wide, by KPI column (to check against the pipeline)
    for database in ("crm", "helpdesk_pg"):
        url = make_url(urls[database])
        folder = SQL_DIR / "bench" / ("crm" if database == "crm" else "helpdesk")
        with psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                             dbname=url.database) as conn:
            for path in sorted(folder.glob("*.sql")):
                query, used = pyformat(path.read_text(encoding="utf-8"), params)
                started = time.perf_counter()
                with conn.cursor() as cur:
                    cur.execute(query, used)
                    rows = cur.fetchall()
                    kpis = [d.name for d in cur.description]
                for row in rows:
                    record = dict(zip(kpis, row, strict=True))
                    if record.pop("segment", None) is None:
                        values.update({k: None if v is None else float(v) for k, v in record.items()})
                results[path.stem] = {"seconds": round(time.perf_counter() - started, 3), "kpis": kpis,
                                      "rows": len(rows)}
            if database == "crm":
                flags = _baseline_with_buyer_flags(conn, params)
    inputs = _baseline_model_inputs(urls["crm"], params)
    # catalogue KPIs only: not the breakdown columns, nor the median stored beside resolution_hours
    catalogue = {kpi_id.split(".", 1)[1] for kpi_id in REGISTRY}
    n_kpis = len({k for r in results.values() for k in r["kpis"] if k in catalogue})
    seconds = round(sum(r["seconds"] for r in results.values()) + inputs["seconds"], 3)
    return {"seconds": seconds, "kpis": n_kpis, "queries": results, "values": values, "buyer_flags_query": flags,
            "model_inputs": inputs,
            "seconds_with_buyer_flags_query": round(seconds - results["cross_upsell"]["seconds"] + flags["seconds"], 3)}


def _baseline_model_inputs(url: str, params: dict[str, Any]) -> dict[str, Any]:
    """The lifetime-value models' inputs as a team would read them for its own fits
    (include/sql/bench/crm/model_inputs/), fetched into Arrow as the pipeline fetches its rows: the
    pipeline reads the same inputs, so the baseline must too (the fits themselves are timed apart, in
    the clv step)."""
    import adbc_driver_postgresql.dbapi as adbc

    from crm_kpis.sources.reading import postgres_uri
    from crm_kpis.sources.sql_files import numbered

    out: dict[str, Any] = {"queries": {}}
    with adbc.connect(postgres_uri(url)) as conn:
        for path in sorted((SQL_DIR / "bench" / "crm" / "model_inputs").glob("*.sql")):
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.execute(*numbered(path.read_text(encoding="utf-8"), params))
                rows = cur.fetch_arrow_table().num_rows
            out["queries"][path.stem] = {"seconds": round(time.perf_counter() - started, 3), "rows": rows}
    out["seconds"] = round(sum(q["seconds"] for q in out["queries"].values()), 3)
    return out


def _baseline_with_buyer_flags(conn: Any, params: dict[str, Any]) -> dict[str, Any]:
    """The cross-sell and up-sell rates as a team would get them by writing the flags query the way
    the pipeline does (crm/buyer_flags.sql, wrapped in an average), instead of the baseline's direct
    translation of the definition: the baseline's cost with the pipeline's one SQL-side shortcut."""
    from crm_kpis.sources.sql_files import load_sql, pyformat

    flags_sql = load_sql("crm/buyer_flags.sql", "postgresql")
    # the file's text as a subquery: structure, not values; the period is still bound
    query, used = pyformat("SELECT AVG(cross_sell::float8) AS cross_sell_rate, AVG(upsell::float8) AS upsell_rate "
                           f"FROM ({flags_sql}) AS f WHERE lines_judged > 0", params)
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(query, used)
        row = cur.fetchone()
    seconds = round(time.perf_counter() - started, 3)
    return {"seconds": seconds, "values": {"cross_sell_rate": row[0], "upsell_rate": row[1]}}


STEPS = {
    "generate": step_generate, "floor": step_floor, "monthly": step_pipeline, "daily": step_pipeline,
    "area": step_area, "monthly_dag": step_pipeline_dag,
    "sql_baseline": step_sql_baseline, "backfill": step_backfill, "pdf": step_pdf,
    "clv": step_clv, "adapters": step_adapters, "stack": step_stack,
}


def _machine_cpu() -> tuple[float, float]:
    """Seconds of CPU the whole machine has spent busy, and waiting on the disk, since boot (Linux's
    /proc/stat; zeros elsewhere)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / tick, iowait / tick


def _own_cpu() -> float:
    """CPU seconds of this process and of the children it has waited for (the DAG step's area tasks)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def _child(argv: list[str]) -> int:
    """`python -m crm_kpis.tools.bench --step NAME ...`: one step, its result as the last line of JSON.

    With the step's time, where its CPU went: the step's own processes (Python: reading, checking,
    computing, fitting) against the rest of the machine's busy time, which during a step is the
    database servers answering it; and the time the CPUs waited on the disk (spilled sorts)."""
    spec = json.loads(argv[0])
    name = spec.pop("step")
    machine_before, iowait_before = _machine_cpu()
    own_before = _own_cpu()
    started = time.perf_counter()
    result = STEPS[name](**spec)
    result.setdefault("seconds", round(time.perf_counter() - started, 2))
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    machine, iowait = _machine_cpu()
    own = _own_cpu() - own_before
    result["cpu"] = {"step_processes_seconds": round(own, 1),
                     "rest_of_machine_seconds": round(max(machine - machine_before - own, 0.0), 1),
                     "disk_wait_seconds": round(iowait - iowait_before, 1), "cpus": os.cpu_count()}
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print("BENCH-RESULT " + json.dumps(result, default=str), flush=True)
    return 0


def _start_step(name: str, scale: float, env: dict[str, str], **kwargs: Any) -> subprocess.Popen[str]:
    payload = json.dumps({"step": name, "scale": scale, **kwargs}, default=str)
    return subprocess.Popen([sys.executable, "-m", "crm_kpis.tools.bench", "--step", payload], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish_step(name: str, proc: subprocess.Popen[str]) -> dict[str, Any]:
    stdout, stderr = proc.communicate()
    for line in stdout.splitlines():
        if not line.startswith("BENCH-RESULT "):
            print(f"    {line}", flush=True)
    if proc.returncode != 0:
        raise RuntimeError(f"bench step {name} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return json.loads(next(line for line in reversed(stdout.splitlines())
                           if line.startswith("BENCH-RESULT "))[len("BENCH-RESULT "):])


def run_step(name: str, scale: float, env: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    return _finish_step(name, _start_step(name, scale, env, **kwargs))


# --- the table ---------------------------------------------------------------------------------------------
def table(results: dict[str, Any]) -> str:
    s = results["steps"]
    floor = s["floor"]["seconds"]
    lines = [f"CRM KPI benchmark, scale {results['scale']:g} ({results['rows_total']:,} source rows), "
             f"month {results['month']}, day {results['day']}",
             f"{'step':<34}{'seconds':>10}{'× floor':>9}{'peak MB':>9}  notes"]

    def row(label: str, seconds: float, peak: float | None, note: str = "", ratio: bool = True) -> None:
        r = f"{seconds / floor:>9.2f}" if ratio and floor else f"{'':>9}"
        lines.append(f"{label:<34}{seconds:>10.2f}{r}{(f'{peak:,.0f}' if peak else ''):>9}  {note}")

    if "generate" in s:
        g = s["generate"]
        row("generate + load (COPY / LOAD DATA)", g["wall_seconds"], g["peak_rss_mb"], f"{g['shards']} shards", False)
    row("floor: read what the month needs", floor, s["floor"]["peak_rss_mb"], f"{s['floor']['rows']:,} rows")
    for name, e in sorted(s["floor"].get("extracts", {}).items(), key=lambda kv: -kv[1]["seconds"]):
        row(f"  {name}", e["seconds"], None, f"{e['rows']:,} rows", False)
    if "monthly" in s:
        row("pipeline, monthly", s["monthly"]["seconds"], s["monthly"]["peak_rss_mb"],
            f"{s['monthly']['rows_read']:,} rows read, {s['monthly']['values_written']} values")
    if "monthly_dag" in s:
        row("pipeline, monthly, as the DAG runs", s["monthly_dag"]["seconds"], s["monthly_dag"]["areas_peak_sum_mb"],
            "3 area processes at once; peak = their sum", True)
    if "daily" in s:
        row("pipeline, daily", s["daily"]["seconds"], s["daily"]["peak_rss_mb"],
            f"{s['daily']['rows_read']:,} rows read")
    if "sql_baseline" in s:
        b = s["sql_baseline"]
        row("plain SQL in PostgreSQL", b["seconds"], b["peak_rss_mb"], f"{b['kpis']} KPIs and the models' inputs")
        for name, q in sorted({**b["queries"], **{f"model inputs: {k}": v for k, v in
                                                 b.get("model_inputs", {}).get("queries", {}).items()}}.items(),
                              key=lambda kv: -kv[1]["seconds"]):
            row(f"  {name}", q["seconds"], None, f"{q['rows']:,} rows", False)
        row("  … cross-sell as buyer_flags.sql", b["seconds_with_buyer_flags_query"], None,
            "the baseline with the pipeline's flags query")
    if "backfill" in s:
        bf = s["backfill"]
        row(f"backfill {bf['months']} months", bf["monthly_seconds"], bf["peak_rss_mb"], "", False)
        row(f"backfill {bf['days']} days", bf["daily_seconds"], None, "", False)
    if "clv" in s:
        c = s["clv"]
        row("lifetime-value models, monthly", c["seconds"], c["peak_rss_mb"],
            f"{c['customers']:,} customers: read {c['read_seconds']:.1f} s, fit {c['fit_seconds']:.1f} s, "
            f"sBG {c['sbg_seconds']:.1f} s", False)
    for label, timing in {**s.get("adapters", {}).get("timings", {}), **s.get("stack", {}).get("timings", {})}.items():
        layout, engine = label.split(" on ")
        row(f"{layout.removeprefix('fivetran_')} adapter, {engine}", timing[layout], None,
            f"{layout}; reference layout {timing['reference']:.2f} s (× {timing[layout] / timing['reference']:.1f}), "
            f"demo scale {(s.get('adapters') or s['stack'])['adapter_scale']:g}", False)
    if "pdf" in s:
        row("monthly PDF", s["pdf"]["seconds"], s["pdf"]["peak_rss_mb"], f"{s['pdf']['pdf_bytes'] / 1024:.0f} KB",
            False)
    split = [(label, s[name]["cpu"]) for name, label in (
        ("floor", "floor"), ("monthly", "monthly"), ("monthly_dag", "monthly, as the DAG runs"),
        ("sql_baseline", "plain SQL"), ("daily", "daily")) if "cpu" in s.get(name, {})]
    if split:
        lines.append(f"where the CPU went ({split[0][1]['cpus']} CPUs; the rest of the machine is the database "
                     "servers answering the step):")
        for label, cpu in split:
            lines.append(f"  {label:<32}step's processes {cpu['step_processes_seconds']:>7.1f} s, rest of the machine "
                         f"{cpu['rest_of_machine_seconds']:>7.1f} s, waiting on the disk {cpu['disk_wait_seconds']:>6.1f} s")
    if {"monthly", "monthly_dag", "sql_baseline"} <= set(s):
        monthly, dag, b = s["monthly"]["seconds"], s["monthly_dag"]["seconds"], s["sql_baseline"]
        lines.append(f"monthly / floor = {monthly / floor:.2f} (as the DAG runs: {dag / floor:.2f}); "
                     f"monthly / plain SQL = {monthly / b['seconds']:.2f} (as the DAG runs: {dag / b['seconds']:.2f}); "
                     f"against the baseline with the flags query: {monthly / b['seconds_with_buyer_flags_query']:.2f} "
                     f"({dag / b['seconds_with_buyer_flags_query']:.2f})")
        if "clv" in s:  # the same work on both sides: the baseline reads the models' inputs, fits nothing
            fits = s["clv"]["fit_seconds"] + s["clv"]["sbg_seconds"]
            lines.append(f"without the model fits ({fits:.2f} s, timed in the clv step): monthly / plain SQL = "
                         f"{(monthly - fits) / b['seconds']:.2f}; monthly / floor = {(monthly - fits) / floor:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--step"]:
        return _child(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=300.0,
                        help="demo scale (300: 1.4M customers, 14M orders, 4M tickets, 20M emails over 24 months)")
    parser.add_argument("--month", default="2026-10", help="the month measured (YYYY-MM), the data's last")
    parser.add_argument("--day", default="2026-10-15", help="the day measured")
    parser.add_argument("--months-of-data", type=int, default=24)
    parser.add_argument("--backfill-months", type=int, default=12)
    parser.add_argument("--backfill-days", type=int, default=31)
    parser.add_argument("--regenerate", action="store_true", help="generate the data again even if present")
    parser.add_argument("--adapter-scale", type=float, default=1.0,
                        help="the adapters step's own data (default 1: make demo's scale)")
    parser.add_argument("--adapter-layouts", default="",
                        help="the adapters step's layouts (comma-separated, e.g. fivetran_zendesk; default all)")
    parser.add_argument("--adapter-engines", default="",
                        help="the adapters step's engines (sqlite, postgresql, mariadb; default all)")
    parser.add_argument("--steps", default="floor,monthly,monthly_dag,daily,sql_baseline,backfill,clv,adapters,pdf",
                        help="which measurements to run (comma-separated; data is generated when missing)")
    parser.add_argument("--json", type=Path, help="where to write the results (default var/bench/bench-<scale>.json)")
    args = parser.parse_args(argv)

    from crm_kpis.tools.local_airflow import configure

    configure()  # an Airflow home for the connection lookups; no Airflow component is started
    env = pipeline_env(args.scale)
    results: dict[str, Any] = {"scale": args.scale, "month": args.month, "day": args.day,
                               "started_at": datetime.now(UTC).isoformat(timespec="seconds"), "steps": {}}
    steps = results["steps"]
    marker = _marker(args.scale)
    if args.regenerate or not marker.exists():
        print(f"generating scale {args.scale:g} into {', '.join(database_urls(args.scale).values())}", flush=True)
        end_month = date.fromisoformat(f"{args.month}-01")
        steps["generate"] = run_step("generate", args.scale, env, end_month=end_month, months=args.months_of_data)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(steps["generate"], indent=1))
    data = json.loads(marker.read_text())
    results["rows"] = data["rows"]
    # the sources as the pipeline sees them: the CRM in PostgreSQL and the helpdesk in MariaDB
    results["rows_total"] = sum(sum(v.values()) for k, v in data["rows"].items() if k != "helpdesk@postgresql")
    _create_databases({"warehouse": database_urls(args.scale)["warehouse"]}, drop=True)
    wanted = set(args.steps.split(","))
    target = args.json or var_dir() / "bench" / f"bench-{scale_tag(args.scale)}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    for name, kwargs in (
        ("floor", {"month": args.month}),
        ("monthly", {"grain": "monthly", "key": args.month}),
        ("monthly_dag", {"grain": "monthly", "key": args.month}),
        ("daily", {"grain": "daily", "key": args.day}),
        ("sql_baseline", {"month": args.month}),
        ("backfill", {"month": args.month, "months": args.backfill_months, "days": args.backfill_days}),
        ("clv", {"month": args.month}),
        ("adapters", {"month": args.month, "adapter_scale": args.adapter_scale,
                      "layouts": args.adapter_layouts, "engines": args.adapter_engines}),
        ("stack", {"month": args.month, "adapter_scale": args.adapter_scale}),
        ("pdf", {"month": args.month}),
    ):
        if name not in wanted:
            continue
        print(f"{name} ...", flush=True)
        steps[name] = run_step(name, args.scale, env, **kwargs)
        print(f"  {name}: {steps[name]['seconds']:.1f} s, peak {steps[name]['peak_rss_mb']:,.0f} MB", flush=True)
        target.write_text(json.dumps(results, indent=1, default=str))  # a long run keeps what it measured
    if "floor" in steps:
        print("\n" + table(results))
    target.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nresults: {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
