"""Re-running a period at a later time gives identical KPI values: rows that arrived since, all
dated after the period, must not change it. This catches an extract that forgets the period's
upper bound (or reads "everything up to now")."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_kpis.history.store import read_history
from crm_kpis.orchestration import tasks
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import engine_for

AREAS = ("marketing", "sales", "operations")
LATER = "2026-10-01"  # rows whose every date is on or after this are copied ...
SHIFT = "+61 days"  # ... into December 2026, with new keys
KEY_OFFSET = 10_000_000


def _add_later_rows(path: Path) -> dict[str, int]:
    """Copy every row dated wholly in October or later, shifted two months on, with new keys.

    Keys of copied parents are offset in the children too (an order line follows its order);
    references to rows that were not copied then point nowhere, as late data sometimes does.
    """
    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    info = {t: conn.execute(f"PRAGMA table_info({t})").fetchall() for t in tables}  # our own table names
    keys = {cols[0][1]: t for t, cols in info.items()  # single-column `<thing>_id` primary keys
            if [c[5] for c in cols].count(0) == len(cols) - 1 and cols[0][5] == 1 and cols[0][1].endswith("_id")}
    added: dict[str, int] = {}
    for table, cols in info.items():
        dated = [c[1] for c in cols if "DATE" in c[2].upper() or "TIME" in c[2].upper()]
        if not dated:
            continue
        select = []
        for _cid, name, ctype, _notnull, _default, _pk in cols:
            if name in dated:
                fn = "date" if ctype.upper() == "DATE" else "datetime"
                select.append(f"{fn}({name}, '{SHIFT}')")
            elif name in keys:
                select.append(f"{name} + {KEY_OFFSET}")
            else:
                select.append(name)
        where = " AND ".join(f"({c} IS NULL OR {c} >= '{LATER}')" for c in dated)
        cursor = conn.execute(f"INSERT INTO {table} SELECT {', '.join(select)} FROM {table} WHERE {where}")
        added[table] = cursor.rowcount
    for table, cols in info.items():  # undated children of copied rows (order lines): follow their parent
        parents = [(c[1], keys[c[1]]) for c in cols if c[1] in keys and keys[c[1]] != table and keys[c[1]] in added]
        if table in added or not parents:
            continue
        column, parent = parents[0]
        select = [f"{c[1]} + {KEY_OFFSET}" if c[1] in keys else c[1] for c in cols]
        cursor = conn.execute(f"INSERT INTO {table} SELECT {', '.join(select)} FROM {table} "
                              f"WHERE {column} + {KEY_OFFSET} IN (SELECT {column} FROM {parent})")
        added[table] = cursor.rowcount
    conn.commit()
    conn.close()
    return added


@pytest.fixture()
def sources(demo_sources, tmp_path, monkeypatch):
    """Copies of the demo sources and an empty warehouse, through the Airflow connections."""
    for name, conn_id in (("crm.db", "CRM_DB"), ("helpdesk.db", "HELPDESK_DB")):
        with sqlite3.connect(demo_sources / name) as src, sqlite3.connect(tmp_path / name) as dst:
            src.backup(dst)  # a consistent copy, WAL included
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / name)}))
    monkeypatch.setenv("AIRFLOW_CONN_KPI_WAREHOUSE",
                       json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "warehouse.db")}))
    return tmp_path


def _run(period: ReportPeriod, run_id: str) -> dict[tuple, tuple]:
    start = datetime.combine(period.start_date, datetime.min.time(), UTC)
    end = datetime.combine(period.end_date, datetime.min.time(), UTC)
    for area in AREAS:
        tasks.compute_and_stage(area, period.grain, start, end, run_id)
    tasks.publish(period.grain, start, end, run_id)
    from crm_kpis.sources.connections import WAREHOUSE_CONN_ID

    history = read_history(engine_for(WAREHOUSE_CONN_ID), period.grain, [period.start_date])
    return {(r.kpi_id, r.dimension, r.member): (r.value, r.numerator, r.denominator)
            for r in history.itertuples(index=False)}


@pytest.mark.parametrize(("grain", "key"), [("monthly", "2026-09"), ("daily", "2026-09-30")])
def test_rerun_after_later_rows_arrived_gives_identical_values(sources, grain, key):
    period = ReportPeriod.parse(grain, key)
    first = _run(period, "first-run")
    added = _add_later_rows(sources / "crm.db") | _add_later_rows(sources / "helpdesk.db")
    # a month of every dated table: customers, orders, lines, leads, email, tickets, messages, ...
    assert sum(added.values()) > 5_000
    assert all(added[t] > 0 for t in ("customers", "orders", "order_lines", "leads", "email_messages", "tickets",
                                      "ticket_messages", "opportunities", "survey_responses")), added
    second = _run(period, "rerun-two-months-later")
    assert second.keys() == first.keys()
    different = {k: (first[k], second[k]) for k in first if repr(first[k]) != repr(second[k])}  # NaN-safe, bitwise
    assert different == {}
    assert len(first) > 300 if grain == "monthly" else len(first) > 200
