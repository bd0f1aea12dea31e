"""Wrong magnitudes never reach an inbox unremarked: the probe's cases run through the real tasks
(compute, gate, publish, render) on a private copy of the demo sources, with four months of
history before October 2026. What is stopped publishes nothing; what is warned leads the email's
subject and first lines and the chat summary, in the reader's words, not only the PDF.

| case | outcome |
|---|---|
| October as loaded | no warning, nothing said |
| October's largest order typed ten times its amount | warned: the largest order 9× the usual largest |
| every October order ten times its amount | warned: revenue ~10× its usual (and the largest order) |
| October's orders loaded twice under new ids | stopped: half the rows repeat, nothing published |
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_kpis.delivery.reports_store import report_files
from crm_kpis.history.store import read_run
from crm_kpis.orchestration import tasks
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

AREAS = ("marketing", "sales", "operations")
OCT = ReportPeriod.parse("monthly", "2026-10")
HISTORY = [ReportPeriod.parse("monthly", m) for m in ("2026-06", "2026-07", "2026-08", "2026-09")]
IN_OCTOBER = "ordered_at >= '2026-10-01' AND ordered_at < '2026-11-01'"


def copy_database(source: Path, target: Path) -> None:
    """A whole SQLite database, its write-ahead log included (a file copy would lose that part)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def crm_changed(folder: Path, change: str | None, name: str) -> pytest.MonkeyPatch:
    """The CRM connection pointed at a new copy of the pristine CRM with `change` applied (SQL)."""
    copy = folder / f"crm-{name}.db"
    copy_database(folder / "pristine-crm.db", copy)
    if change:
        with sqlite3.connect(copy) as db:
            db.executescript(change)
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_CRM_DB", json.dumps({"conn_type": "sqlite", "host": str(copy)}))
    return mp


def interval(period: ReportPeriod) -> tuple[datetime, datetime]:
    return period.utc_start.replace(tzinfo=UTC), period.utc_end.replace(tzinfo=UTC)


def run(period: ReportPeriod, run_id: str) -> dict:
    """The DAG's tasks for one period, in order (the approval and the send are not the point here)."""
    start, end = interval(period)
    for area in AREAS:
        tasks.compute_and_stage(area, "monthly", start, end, run_id)
    gate = tasks.check_quality("monthly", start, end, run_id)
    tasks.publish("monthly", start, end, run_id, gate["warnings"])
    return gate


@pytest.fixture(scope="module")
def guarded(demo_sources, tmp_path_factory):
    """A private copy of the demo sources and a warehouse holding June to September 2026."""
    folder = tmp_path_factory.mktemp("magnitude")
    copy_database(demo_sources / "crm.db", folder / "pristine-crm.db")
    copy_database(demo_sources / "crm.db", folder / "crm.db")
    copy_database(demo_sources / "helpdesk.db", folder / "helpdesk.db")
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_CRM_DB", json.dumps({"conn_type": "sqlite", "host": str(folder / "crm.db")}))
    mp.setenv("AIRFLOW_CONN_HELPDESK_DB", json.dumps({"conn_type": "sqlite", "host": str(folder / "helpdesk.db")}))
    mp.setenv("AIRFLOW_CONN_KPI_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(folder / "warehouse.db")}))
    mp.setenv("CRM_KPIS_REPORTS_URL", f"file://{folder / 'reports'}")
    for period in HISTORY:
        run(period, f"history-{period.key}")
    yield folder
    mp.undo()


def october(folder: Path, change: str | None, run_id: str) -> dict:
    """October computed after `change` (SQL on the CRM copy), rendered; what the reader gets."""
    mp = crm_changed(folder, change, run_id)
    try:
        gate = run(OCT, run_id)
        start, end = interval(OCT)
        rendered = tasks.render_report("monthly", start, end)
    finally:
        mp.undo()
    files = report_files(tasks.report_for("monthly"), OCT)
    return {"warnings": gate["warnings"], "subject": rendered["subject"],
            "first_lines": files["email.txt"].read_text(encoding="utf-8").splitlines()[:3],
            "html": files["email.html"].read_text(encoding="utf-8"),
            "chat": json.loads(files["message.json"].read_text(encoding="utf-8"))}


def largest_october_order(folder: Path) -> tuple[int, float]:
    with sqlite3.connect(folder / "pristine-crm.db") as db:
        return db.execute(f"SELECT order_id, total_amount FROM orders WHERE {IN_OCTOBER} "
                          "ORDER BY total_amount DESC LIMIT 1").fetchone()


def test_october_as_loaded_says_nothing(guarded):
    said = october(guarded, None, "as-loaded")
    assert said["warnings"] == []
    assert not said["subject"].startswith("CHECK") and "CHECK" not in "\n".join(said["first_lines"])
    assert said["chat"]["checks"] == []


def test_one_order_typed_ten_times_its_amount_leads_the_subject(guarded):
    order_id, amount = largest_october_order(guarded)
    said = october(guarded, f"UPDATE orders SET total_amount = total_amount * 10 WHERE order_id = {order_id};",
                   "one-order")
    [warning] = [w for w in said["warnings"] if "orders.total_amount" in w]
    assert f"row {order_id} = {amount * 10:,.2f} is" in warning
    assert said["subject"].startswith("CHECK: the largest order ")
    assert "× the usual largest" in said["subject"].split(" · ")[0]
    assert said["first_lines"][1].startswith("CHECK: Check before use: far from their history, these may be a "
                                             "data error: the largest order ")
    assert "Check before use" in said["html"].split("Compared with")[0]  # above the numbers
    assert said["chat"]["title"].startswith("CHECK: the largest order ")


def test_a_month_loaded_ten_times_is_said_in_the_subject_not_only_in_the_pdf(guarded):
    said = october(guarded, f"UPDATE orders SET total_amount = total_amount * 10 WHERE {IN_OCTOBER};", "ten-times")
    head = said["subject"].split(" · ")[0]
    assert head.startswith("CHECK: ") and "Revenue " in head and "× its usual" in head, said["subject"]
    revenue = next(c for c in said["chat"]["checks"] if c.startswith("Revenue "))
    times = float(revenue.split(" ")[1].rstrip("×"))
    assert 8 < times < 12  # every order ten times: revenue about ten times its median month
    assert revenue in said["first_lines"][1]


def test_a_month_loaded_twice_under_new_ids_is_stopped_before_anything_is_published(guarded):
    from airflow.sdk.exceptions import AirflowFailException

    with sqlite3.connect(guarded / "pristine-crm.db") as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(orders)")]
        n = 2 * db.execute(f"SELECT COUNT(*) FROM orders WHERE {IN_OCTOBER}").fetchone()[0]
    rest = ", ".join(c for c in columns if c != "order_id")
    mp = crm_changed(guarded, f"INSERT INTO orders (order_id, {rest}) SELECT order_id + 100000000, {rest} "
                              f"FROM orders WHERE {IN_OCTOBER};", "twice")
    before = read_run(engine_for(WAREHOUSE_CONN_ID), OCT)
    start, end = interval(OCT)
    try:
        for area in AREAS:
            tasks.compute_and_stage(area, "monthly", start, end, "twice")
        with pytest.raises(AirflowFailException, match=rf"orders: {n // 2:,} of {n:,} rows \(50%\) repeat another "
                           "row's customer_id, ordered_at, total_amount under another key: the period looks loaded"):
            tasks.check_quality("monthly", start, end, "twice")
    finally:
        mp.undo()
    assert read_run(engine_for(WAREHOUSE_CONN_ID), OCT) == before  # the history was left as it was
