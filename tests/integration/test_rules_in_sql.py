"""Row rules evaluated in the database: an extract that returns an aggregate and, beside it, the rows
the rules leave out must count exactly what the rules count when they judge one row per order in
pandas (each row once, under the first rule it breaks, in the rules' order), and sum the same rows.

Two proofs for `revenue_trailing` (the trailing twelve months' revenue of the CLV): a hand-made set
whose expectations are worked out below, and the demo's orders with bad rows of every kind injected,
against the row-level path (the one-row-per-order query the extract replaced, typed and checked by
the same mechanism as every extract).
"""

from __future__ import annotations

import math
import random
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from crm_kpis.kpis.base import exact_sum
from crm_kpis.paths import SQL_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.quality.rules import Rule, apply_rules
from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.extracts import ORDER_RULES
from crm_kpis.sources.loading import load_extracts
from crm_kpis.sources.sql_files import bind_values, run_script
from crm_kpis.sources.typed_read import marked_rules, type_frame
from tests.integration.test_bad_input_corpus import copy_db

OCT = ReportPeriod.parse("monthly", "2026-10")  # its trailing twelve months: 1 Nov 2025 to 31 Oct 2026

#: the extract as it was, one row per completed order of the window: the row-level reference
ROW_LEVEL = """
SELECT o.order_id, o.total_amount, c.customer_id AS known_customer_id
FROM orders o
LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.status = 'completed' AND o.ordered_at >= :trailing_start AND o.ordered_at < :end
"""


def loose_orders(conn: sqlite3.Connection) -> None:
    """orders without its constraints, as a synced table often is (copies, NULLs, text amounts)."""
    conn.execute("CREATE TABLE orders_loose (order_id, customer_id, ordered_at, status, total_amount, campaign_id, "
                 "sales_rep_id)")
    conn.execute("INSERT INTO orders_loose SELECT * FROM orders")
    conn.execute("DROP TABLE orders")
    conn.execute("ALTER TABLE orders_loose RENAME TO orders")


def by_sql(monkeypatch: pytest.MonkeyPatch, crm: Path) -> tuple[float, dict[str, int]]:
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", f"sqlite:///{crm}")
    loaded = load_extracts({"revenue_trailing"}, OCT)
    assert loaded.rows_read == {"revenue_trailing": 1}
    return exact_sum(loaded.frames["revenue_trailing"]["total_amount"]), loaded.rejected.get("revenue_trailing", {})


def by_rows(crm: Path) -> tuple[float, dict[str, int]]:
    engine = engine_for(f"sqlite:///{crm}")
    with engine.connect() as conn:
        raw = pd.read_sql_query(text(ROW_LEVEL), conn, params=bind_values(OCT.sql_params(), "sqlite"))
    typed, _ = type_frame(raw, "crm/orders.sql")  # the same columns as the orders extract
    marks = tuple(Rule(rule, lambda f, c=marker: f[c]) for rule, marker in marked_rules(typed))
    checked = apply_rules("row level", typed, marks + ORDER_RULES)
    return exact_sum(checked.frame["total_amount"]), checked.rejected


def test_hand_made_orders_are_counted_and_summed_as_the_rules_say(tmp_path, monkeypatch):
    crm = tmp_path / "crm.db"
    run_script(engine_for(f"sqlite:///{crm}"), SQL_DIR / "schema" / "sqlite" / "crm.sql")
    with sqlite3.connect(crm) as conn:
        conn.execute("INSERT INTO customers VALUES (1, '2025-01-01 00:00:00', 'smb', 'DE', 'web', NULL, NULL, NULL)")
        loose_orders(conn)
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, NULL, NULL)", [
            (1, 1, "2026-10-05 10:00:00", "completed", 100.0),   # counted
            (2, 1, "2025-11-01 00:00:00", "completed", 50.0),    # counted: the window's first instant
            (2, 1, "2025-11-01 00:00:00", "completed", 50.0),    # a copy: duplicate
            (3, 1, "2026-03-01 10:00:00", "completed", -5.0),    # negative
            (4, 1, "2026-03-02 10:00:00", "completed", None),    # missing
            (5, 1, "2026-03-03 10:00:00", "completed", "N/A"),   # unreadable ...
            (5, 1, "2026-03-03 10:00:00", "completed", "N/A"),   # ... both copies (read before the copies rule)
            (6, 99, "2026-04-01 10:00:00", "completed", 30.0),   # orphan: customer 99 does not exist
            (7, 99, "2026-04-02 10:00:00", "completed", -1.0),   # negative and orphan: negative, the first rule
            (8, 1, "2025-10-31 23:59:59", "completed", 20.0),    # before the window: not read
            (9, 1, "2026-10-06 10:00:00", "cancelled", 10.0),    # not completed: not read
            (10, 1, "2026-11-01 00:00:00", "completed", 10.0),   # after the period: not read
        ])
    conn.close()
    revenue, rejected = by_sql(monkeypatch, crm)
    assert revenue == 100.0 + 50.0
    assert rejected == {"unreadable_total_amount": 2, "duplicate": 1, "negative_or_missing_total_amount": 3,
                        "orphan_customer": 1}
    assert by_rows(crm) == (revenue, rejected)  # and the row-level path says the same


def test_an_empty_window_is_zero_revenue_and_nothing_excluded(tmp_path, monkeypatch):
    crm = tmp_path / "crm.db"
    run_script(engine_for(f"sqlite:///{crm}"), SQL_DIR / "schema" / "sqlite" / "crm.sql")
    assert by_sql(monkeypatch, crm) == (0.0, {})


def test_the_demo_orders_with_every_kind_of_bad_row_agree_with_the_row_level_rules(demo_sources, tmp_path,
                                                                                     monkeypatch):
    crm = tmp_path / "crm.db"
    copy_db(demo_sources / "crm.db", crm)
    rng = random.Random(30)
    with sqlite3.connect(crm) as conn:
        loose_orders(conn)
        window = [r[0] for r in conn.execute(
            "SELECT order_id FROM orders WHERE status = 'completed' AND ordered_at >= '2025-11-01' "
            "AND ordered_at < '2026-11-01'")]
        picked = rng.sample(window, 60)
        copies, negative, missing, text_amount, orphan = (picked[i::5] for i in range(5))
        for order_id in copies:  # one to three extra copies
            for _ in range(rng.randint(1, 3)):
                conn.execute("INSERT INTO orders SELECT * FROM orders WHERE order_id = ? LIMIT 1", (order_id,))
        conn.executemany("UPDATE orders SET total_amount = -total_amount WHERE order_id = ?", [(i,) for i in negative])
        conn.executemany("UPDATE orders SET total_amount = NULL WHERE order_id = ?", [(i,) for i in missing])
        conn.executemany("UPDATE orders SET total_amount = 'about 12' WHERE order_id = ?", [(i,) for i in text_amount])
        conn.executemany("UPDATE orders SET customer_id = -customer_id WHERE order_id = ?", [(i,) for i in orphan])
        # rows breaking two rules: a copy of a text amount, a copy of a negative one, an orphan's copy
        for order_id in (text_amount[0], negative[0], orphan[0]):
            conn.execute("INSERT INTO orders SELECT * FROM orders WHERE order_id = ? LIMIT 1", (order_id,))
    conn.close()
    revenue, rejected = by_sql(monkeypatch, crm)
    row_revenue, row_rejected = by_rows(crm)
    assert rejected == row_rejected
    assert rejected["unreadable_total_amount"] == 12 + 1 and rejected["negative_or_missing_total_amount"] == 24
    assert rejected["orphan_customer"] == 12
    # SQLite sums floats in reading order; the row-level path sums them exactly (math.fsum): the same
    # value to the last digits a float carries (PostgreSQL's NUMERIC sum is exact, so is MariaDB's DECIMAL)
    assert math.isclose(revenue, row_revenue, rel_tol=1e-14) and revenue > 1_000_000


def test_a_customer_synced_twice_does_not_count_his_orders_twice(tmp_path, monkeypatch):
    crm = tmp_path / "crm.db"
    run_script(engine_for(f"sqlite:///{crm}"), SQL_DIR / "schema" / "sqlite" / "crm.sql")
    with sqlite3.connect(crm) as conn:
        conn.execute("CREATE TABLE customers_loose AS SELECT * FROM customers")
        conn.execute("DROP TABLE customers")
        conn.execute("ALTER TABLE customers_loose RENAME TO customers")
        conn.executemany("INSERT INTO customers VALUES (1, '2025-01-01 00:00:00', 'smb', 'DE', 'web', NULL, NULL, ?)",
                         [(None,), (None,)])  # the same customer, twice
        conn.execute("INSERT INTO orders VALUES (1, 1, '2026-10-05 10:00:00', 'completed', 100.0, NULL, NULL)")
    conn.close()
    # one order of 100, nothing excluded (the customers' own extracts count the copy of customer 1)
    assert by_sql(monkeypatch, crm) == (100.0, {})
