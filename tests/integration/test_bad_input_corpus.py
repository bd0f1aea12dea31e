"""The bad-input corpus: each class of bad source data, run through the monthly tasks.

For each class the demo sources (14 months to October 2026) are copied, the bad rows injected,
and October computed, gated and published exactly as the DAG's tasks do (`crm_kpis.orchestration.tasks`),
on a warehouse that already holds July to September (so the plausibility check has a history).
Each test asserts the outcome a user must see: the rows excluded and counted under their rule
(once per source row, however many extracts read it), a KPI n/a "not tracked" instead of 0, or
the run stopped before anything was published with a message naming table and column. Where
rows are excluded, every published value must equal the clean run's: the bad rows are new rows,
so their exclusion explains everything (arithmetic of the one class that removes real rows is in
its test).
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm_kpis.history.store import read_history, read_run
from crm_kpis.orchestration import tasks
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import engine_for

AREAS = ("marketing", "sales", "operations")
OCT = ReportPeriod.parse("monthly", "2026-10")
HISTORY = [ReportPeriod.parse("monthly", m) for m in ("2026-07", "2026-08", "2026-09")]


def interval(period: ReportPeriod) -> tuple[datetime, datetime]:
    return (datetime.combine(period.start_date, datetime.min.time(), UTC),
            datetime.combine(period.end_date, datetime.min.time(), UTC))


@dataclass
class Outcome:
    error: BaseException | None
    folder: Path

    @property
    def warehouse(self):
        return engine_for(f"sqlite:///{self.folder / 'warehouse.db'}")

    def run(self):
        return read_run(self.warehouse, OCT)

    def values(self) -> dict[tuple[str, str, str], float | None]:
        rows = read_history(self.warehouse, "monthly", [OCT.start_date])
        return {(r.kpi_id, r.dimension, r.member): (None if r.value != r.value else r.value)
                for r in rows.itertuples(index=False)}

    def notes(self) -> dict[str, str]:
        rows = read_history(self.warehouse, "monthly", [OCT.start_date], company_only=True)
        return {r.kpi_id: r.note for r in rows.itertuples(index=False) if isinstance(r.note, str)}


def copy_db(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite file whose latest pages may still be in its WAL file."""
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    source.backup(target)
    source.close()
    target.close()


def point_at(mp: pytest.MonkeyPatch, folder: Path) -> None:
    # the JSON form with the file in `host`, as Airflow's own SQLite connections have it
    for conn, name in (("CRM_DB", "crm.db"), ("HELPDESK_DB", "helpdesk.db")):
        mp.setenv(f"AIRFLOW_CONN_{conn}", json.dumps({"conn_type": "sqlite", "host": str(folder / name)}))
    mp.setenv("AIRFLOW_CONN_KPI_WAREHOUSE", f"sqlite:///{folder / 'warehouse.db'}")


def compute(folder: Path, period: ReportPeriod, run_id: str) -> BaseException | None:
    mp = pytest.MonkeyPatch()
    point_at(mp, folder)
    start, end = interval(period)
    try:
        for area in AREAS:
            tasks.compute_and_stage(area, "monthly", start, end, run_id)
        gate = tasks.check_quality("monthly", start, end, run_id)
        tasks.publish("monthly", start, end, run_id, gate["warnings"])
        return None
    except Exception as exc:  # the outcome under test
        return exc
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def base(demo_sources, tmp_path_factory) -> Path:
    """The demo sources and a warehouse holding July to September, computed once."""
    folder = tmp_path_factory.mktemp("corpus-base")
    for name in ("crm.db", "helpdesk.db"):
        copy_db(demo_sources / name, folder / name)
    for period in HISTORY:
        assert compute(folder, period, f"history-{period.key}") is None
    return folder


@pytest.fixture(scope="module")
def clean(base, tmp_path_factory) -> Outcome:
    outcome = run_case(base, tmp_path_factory.mktemp("clean"), None)
    assert outcome.error is None, outcome.error
    assert outcome.run()["rows_excluded"] == {} and outcome.run()["not_tracked"] == {}
    return outcome


def run_case(base: Path, folder: Path, inject) -> Outcome:
    for name in ("crm.db", "helpdesk.db", "warehouse.db"):
        copy_db(base / name, folder / name)
    if inject:
        for db in ("crm", "helpdesk"):
            if db in inject:
                with sqlite3.connect(folder / f"{db}.db") as conn:
                    inject[db](conn)
                conn.close()
    return Outcome(compute(folder, OCT, "bad-input"), folder)


@pytest.fixture()
def case(base, tmp_path):
    return lambda **inject: run_case(base, tmp_path, inject)


def loosen(conn: sqlite3.Connection, table: str, **types: str) -> None:
    """Rebuild a table without its constraints (as a synced table often is), optionally retyping
    columns (e.g. reopen_count="TEXT", as a VARCHAR column)."""
    cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]
    decl = ", ".join(f"{c} {types.get(c, '')}".strip() for c in cols)
    conn.execute(f"CREATE TABLE {table}_loose ({decl})")
    conn.execute(f"INSERT INTO {table}_loose SELECT * FROM {table}")
    conn.execute(f"DROP TABLE {table}")
    conn.execute(f"ALTER TABLE {table}_loose RENAME TO {table}")


def an_october_buyer(conn: sqlite3.Connection) -> tuple[int, int]:
    """A customer with a completed October order that has lines, and a fresh order id."""
    customer = conn.execute("SELECT o.customer_id FROM orders o JOIN order_lines l ON l.order_id = o.order_id "
                            "WHERE o.status = 'completed' AND o.ordered_at >= '2026-10-05' "
                            "AND o.campaign_id IS NULL ORDER BY o.order_id LIMIT 1").fetchone()[0]
    return customer, conn.execute("SELECT MAX(order_id) + 1000 FROM orders").fetchone()[0]


def add_order(amount, status="completed", customer=None):
    def inject(conn):
        buyer, order_id = an_october_buyer(conn)
        loosen(conn, "orders")
        conn.execute("INSERT INTO orders VALUES (?, ?, '2026-10-12 10:00:00', ?, ?, NULL, NULL)",
                     (order_id, customer if customer is not None else buyer, status, amount))
    return inject


def add_ticket(created, resolved, first_response, reopen=0):
    def inject(conn):
        ticket = conn.execute("SELECT MAX(ticket_id) + 1000 FROM tickets").fetchone()[0]
        loosen(conn, "tickets")
        conn.execute("INSERT INTO tickets VALUES (?, NULL, 'email', 'question', 'normal', 'solved', NULL, ?, ?, ?, ?, ?)",
                     (ticket, created, first_response, resolved, resolved, reopen))
    return inject


def add_response(score, survey="nps"):
    def inject(conn):
        rid, customer = conn.execute("SELECT MAX(response_id) + 1000, MIN(customer_id) FROM survey_responses").fetchone()
        loosen(conn, "survey_responses")
        conn.execute("INSERT INTO survey_responses VALUES (?, ?, ?, ?, '2026-10-14 09:00:00', NULL, NULL)",
                     (rid, customer, survey, score))
    return inject


def assert_same_values(bad: Outcome, clean: Outcome, ignore: set[str] = frozenset()) -> None:
    got = {k: v for k, v in bad.values().items() if k[0] not in ignore}
    want = {k: v for k, v in clean.values().items() if k[0] not in ignore}
    assert set(got) == set(want)
    differ = {k: (got[k], want[k]) for k in want if k[0] not in ignore and not (
        got[k] == want[k] or (got[k] is not None and want[k] is not None and math.isclose(got[k], want[k], rel_tol=1e-12)))}
    assert differ == {}


def assert_excluded(bad: Outcome, table: str, rule: str, rows: int) -> None:
    assert bad.error is None, bad.error
    assert bad.run()["rows_excluded"].get(table, {}).get(rule) == rows, bad.run()["rows_excluded"]


def assert_stopped(bad: Outcome, *words: str) -> None:
    assert bad.error is not None, "the run should have stopped"
    for word in words:
        assert word in str(bad.error), str(bad.error)
    assert bad.run() is None  # nothing published for October


# --- values that cannot be read -------------------------------------------------------------
def test_text_in_an_amount_is_excluded_and_counted(case, clean):
    bad = case(crm=add_order("N/A"))
    assert_excluded(bad, "orders", "unreadable_total_amount", 1)  # read by orders and revenue_trailing: once
    assert_same_values(bad, clean)


def test_text_in_a_score_is_excluded_and_counted(case, clean):
    bad = case(crm=add_response("ten"))
    assert_excluded(bad, "survey_responses", "unreadable_score", 1)
    assert_same_values(bad, clean)


def test_a_varchar_count_column_is_read_as_numbers(case, clean):
    def inject(conn):
        loosen(conn, "tickets", reopen_count="TEXT")
        conn.execute("UPDATE tickets SET reopen_count = CAST(reopen_count AS TEXT)")
        assert conn.execute("SELECT typeof(reopen_count) FROM tickets LIMIT 1").fetchone()[0] == "text"
    bad = case(helpdesk=inject)
    assert bad.error is None and bad.run()["rows_excluded"] == clean.run()["rows_excluded"]
    assert_same_values(bad, clean)


def test_epoch_timestamps_stop_the_run_naming_table_and_column(case):
    def inject(conn):
        loosen(conn, "tickets")
        conn.execute("UPDATE tickets SET created_at = CAST(strftime('%s', created_at) AS INTEGER)")
    assert_stopped(case(helpdesk=inject), "tickets.created_at", "cannot be read")


def test_unreadable_timestamp_text_is_excluded_and_counted(case, clean):
    bad = case(helpdesk=add_ticket("2026-09-20 10:00:00", "2026-10-03 10:00:00", "soon"))
    assert_excluded(bad, "tickets", "unreadable_first_response_at", 1)
    assert_same_values(bad, clean)


# --- implausible values -----------------------------------------------------------------------
def test_a_typod_order_stops_the_run_before_anything_is_published(case):
    bad = case(crm=add_order(9_999_999_999.99))
    assert_stopped(bad, "orders.total_amount", "the period's median")  # the row, against its period
    assert "sales.revenue" in str(bad.error) and "the median of its last 3 periods" in str(bad.error)  # the KPI


def test_absurd_agent_hours_stop_the_run(case):
    def inject(conn):
        conn.execute("INSERT INTO agent_time SELECT agent_id, '2026-10-15', 99999999 FROM agents LIMIT 1")
    assert_stopped(case(helpdesk=inject), "agent_time.hours_logged")


# --- rows the reference rules exclude ----------------------------------------------------------
def test_a_duplicated_order_is_counted_once_for_all_extracts_that_read_it(case, clean):
    def inject(conn):
        loosen(conn, "orders")
        conn.execute("INSERT INTO orders SELECT * FROM orders WHERE status = 'completed' "
                     "AND ordered_at >= '2026-10-05' AND campaign_id IS NOT NULL ORDER BY order_id LIMIT 1")
    bad = case(crm=inject)
    # read by orders, campaign_orders and revenue_trailing (and order_customers): one source row
    assert_excluded(bad, "orders", "duplicate", 1)
    assert_same_values(bad, clean)


@pytest.mark.parametrize("amount", [-50.0, None], ids=["negative", "null"])
def test_negative_and_missing_amounts_are_excluded(case, clean, amount):
    bad = case(crm=add_order(amount))
    assert_excluded(bad, "orders", "negative_or_missing_total_amount", 1)
    assert_same_values(bad, clean)


def test_an_out_of_scale_score_is_excluded(case, clean):
    bad = case(crm=add_response(11))
    assert_excluded(bad, "survey_responses", "score_out_of_scale", 1)
    assert_same_values(bad, clean)


def test_a_ticket_resolved_before_it_was_created_is_counted_once(case, clean):
    bad = case(helpdesk=add_ticket("2026-10-20 10:00:00", "2026-10-10 10:00:00", "2026-10-09 10:00:00"))
    # read by tickets_created and tickets_resolved: one source row
    assert_excluded(bad, "tickets", "resolved_at_before_created_at", 1)
    assert_same_values(bad, clean)


def test_a_first_response_in_the_future_is_excluded(case, clean):
    bad = case(helpdesk=add_ticket("2026-09-20 10:00:00", "2026-10-03 10:00:00", "2030-01-01 00:00:00"))
    # a time that has not happened yet, before it is judged against the resolution
    assert_excluded(bad, "tickets", "future_first_response_at", 1)
    assert_same_values(bad, clean)


def test_a_ticket_resolved_in_2099_is_no_open_ticket_but_an_excluded_counted_one(case, clean):
    """The probe's backlog 17 -> 37: tickets whose resolution is a placeholder year stayed open for ever."""
    def inject(conn):
        add_ticket("2026-10-10 10:00:00", "2099-01-01 00:00:00", "2026-10-10 11:00:00")(conn)
        # an existing ticket resolved in October, its resolution retyped into the far future
        conn.execute("UPDATE tickets SET resolved_at = '2099-12-31 00:00:00', closed_at = NULL WHERE ticket_id = "
                     "(SELECT MIN(ticket_id) FROM tickets WHERE resolved_at >= '2026-10-01' AND resolved_at < '2026-10-20'"
                     " AND created_at < '2026-10-01')")
    bad = case(helpdesk=inject)
    # read by tickets_created (the new one) and tickets_open (both): each source row once
    assert_excluded(bad, "tickets", "future_resolved_at", 2)
    got, want = bad.values(), clean.values()
    assert got[("operations.backlog", "", "")] == want[("operations.backlog", "", "")]  # not 2 more
    assert got[("operations.tickets_created", "", "")] == want[("operations.tickets_created", "", "")]
    # the retyped ticket is no longer among October's handled ones: the one honest difference
    assert got[("operations.tickets_solved", "", "")] == want[("operations.tickets_solved", "", "")] - 1
    assert_same_values(bad, clean, ignore={k[0] for k in want if k[0].startswith("operations.")})


def test_an_orphan_order_is_excluded(case, clean):
    bad = case(crm=add_order(120.0, status="cancelled", customer=99_999_999))
    assert_excluded(bad, "orders", "orphan_customer", 1)
    assert_same_values(bad, clean)


def test_a_status_outside_the_allowed_values_is_excluded_and_counted(case, clean):
    def inject(conn):
        add_order(80.0, status="complete")(conn)  # a new order with a misspelt status
        # an existing completed order's status with a stray space and a capital: not "completed" either
        conn.execute("UPDATE orders SET status = ' Completed' WHERE order_id = "
                     "(SELECT MIN(order_id) FROM orders WHERE status = 'completed' AND ordered_at >= '2026-10-01' "
                     "AND campaign_id IS NULL)")
    bad = case(crm=inject)
    assert_excluded(bad, "orders", "unknown_status_value", 2)
    with sqlite3.connect(bad.folder / "crm.db") as conn:
        amount = conn.execute("SELECT total_amount FROM orders WHERE status = ' Completed'").fetchone()[0]
    conn.close()
    # the typo'd order is no revenue in any extract (the SQL filters compare exactly, as the reading does)
    key = ("sales.revenue", "", "")
    assert math.isclose(bad.values()[key], clean.values()[key] - amount, rel_tol=1e-12)
    assert bad.values()[("sales.orders", "", "")] == clean.values()[("sales.orders", "", "")] - 1


# --- labels -------------------------------------------------------------------------------------
def test_html_and_emoji_in_a_label_change_only_that_member(case, clean):
    label = "<script>alert(1)</script> Field 🚀"

    def inject(conn):
        conn.execute("UPDATE sales_reps SET team = ? WHERE team = 'Field Sales'", (label,))
    bad = case(crm=inject)
    assert bad.error is None, bad.error
    got, want = bad.values(), clean.values()
    renamed = {(k, d, label if m == "Field Sales" else m): v for (k, d, m), v in want.items()}
    assert got == renamed
    # the label reaches the report as text, never as markup
    mp = pytest.MonkeyPatch()
    point_at(mp, bad.folder)
    try:
        out = tasks.render_report("monthly", *interval(OCT))
    finally:
        mp.undo()
    html = Path(out["pdf"]).with_suffix(".html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Field 🚀" in html and "<script>" not in html
    assert out["pdf_bytes"] > 10_000


def test_a_label_too_long_for_the_warehouse_is_kept_shortened_and_totals_stay_whole(case, clean):
    """A rep team named in 301 characters: its rows stay in the company totals (they were excluded,
    a wrong total), and the team is stored as one member under a shortened, still unique label."""
    from crm_kpis.sources.typed_read import LABEL_MAX, shortened

    long_team = "T" * 301

    def inject(conn):
        conn.execute("UPDATE sales_reps SET team = ? WHERE rep_id = (SELECT MIN(rep_id) FROM sales_reps)", (long_team,))
    bad = case(crm=inject)
    assert bad.error is None, bad.error
    assert "orders" not in bad.run()["rows_excluded"]  # nothing excluded for a long label
    key = ("sales.revenue", "", "")
    assert math.isclose(bad.values()[key], clean.values()[key], rel_tol=1e-12)
    stored = shortened(long_team)
    assert len(stored) == LABEL_MAX - 1 and stored.startswith("T" * 110 + "…")
    assert ("sales.revenue", "rep_team", stored) in bad.values()
    assert shortened("T" * 300 + "x") != stored  # two long labels with the same beginning stay two members


# --- missing and untracked inputs --------------------------------------------------------------
def test_an_empty_table_makes_its_kpis_not_tracked_not_zero(case, clean):
    bad = case(helpdesk=lambda conn: conn.execute("DELETE FROM calls"))
    assert bad.error is None, bad.error
    notes, values = bad.notes(), bad.values()
    for kpi in ("operations.inbound_calls", "operations.abandoned_calls", "operations.abandonment_rate",
                "operations.calls_per_day", "operations.handle_minutes"):
        assert values[(kpi, "", "")] is None and notes[kpi] == "not tracked: no rows in calls"
    assert bad.run()["not_tracked"] == {"calls": "no rows in calls"}
    # revenue per interaction still has tickets to divide by, and says what it lacks
    assert notes["operations.revenue_per_interaction"] == "partial: no rows in calls"
    from crm_kpis.kpis import REGISTRY

    reading_calls = {k.id for k in REGISTRY.values() if "calls" in k.inputs}
    assert_same_values(bad, clean, ignore=reading_calls)  # every other KPI is untouched


def test_a_column_null_everywhere_makes_its_kpis_not_tracked(case):
    bad = case(helpdesk=lambda conn: conn.execute("UPDATE tickets SET first_response_at = NULL"))
    assert bad.error is None, bad.error
    notes = bad.notes()
    assert notes["operations.sla_compliance_rate"] == "not tracked: no tickets.first_response_at"
    assert notes["operations.first_response_hours"] == "not tracked: no tickets.first_response_at"
    assert bad.values()[("operations.sla_compliance_rate", "", "")] is None


def test_a_missing_table_makes_only_its_kpis_na_and_the_gate_says_it_once(case, clean):
    from crm_kpis.delivery.reports_store import report_files
    from crm_kpis.kpis import REGISTRY
    from crm_kpis.paths import outbox_dir

    bad = case(helpdesk=lambda conn: conn.execute("DROP TABLE calls"))
    assert bad.error is None, bad.error  # the report is not taken down: the other KPIs are computed
    why = "helpdesk_db cannot be read (table calls is missing from helpdesk. Fix: create it"
    notes = bad.notes()
    reading_calls = {k.id for k in REGISTRY.values() if "calls" in k.inputs}
    for kpi in reading_calls:  # n/a, naming the source, the table and the fix
        assert notes[kpi].startswith(f"not tracked: {why}"), (kpi, notes[kpi])
    assert_same_values(bad, clean, ignore=reading_calls)
    # one warning for the one cause, though two areas read the helpdesk; and one alert to ops
    warnings = [w for w in bad.run()["warnings"] if w.startswith("unreadable_source: ")]
    assert len(warnings) == 1 and why in warnings[0], bad.run()["warnings"]
    alerts = list((outbox_dir() / "alerts").glob("broken-source-monthly-2026-10-*.eml"))
    assert any(bad.run()["run_id"] in a.name for a in alerts), alerts

    # by default (on_broken_source: hold) the report waits for a person, whatever approval.when says;
    # rendered, it says so where the reader looks: the subject and the first lines
    mp = pytest.MonkeyPatch()
    point_at(mp, bad.folder)
    try:
        start, end = interval(OCT)
        request = tasks.approval_request("monthly", start, end)
        assert request["needed"] and request["reason"] == "1 source(s) could not be read (on_broken_source: hold)"
        rendered = tasks.render_report("monthly", start, end)
        files = report_files(tasks.report_for("monthly"), OCT)
        text, page, email = (files[k].read_text(encoding="utf-8") for k in ("email.txt", "html", "email.html"))
    finally:
        mp.undo()
    assert rendered["subject"].startswith("INCOMPLETE (1 source(s) unreadable) · "), rendered["subject"]
    assert text.splitlines()[1].startswith(f"INCOMPLETE: {why}"), text
    # page one says it once, in its own box (not again among the data warnings); on a phone the
    # email's banner wraps its long file path instead of widening the message past the screen
    assert page.count('class="warnings incomplete"') == 1 and "this period:</strong> unreadable_source" not in page
    assert "overflow-wrap:anywhere" in email.split("INCOMPLETE: ", 1)[0].rsplit("<td", 1)[1]


def test_a_missing_column_makes_its_kpis_na_naming_table_and_column(case):
    def inject(conn):
        conn.execute("DROP INDEX ix_tickets_first_response_at")
        conn.execute("ALTER TABLE tickets DROP COLUMN first_response_at")
    bad = case(helpdesk=inject)
    assert bad.error is None, bad.error
    notes = bad.notes()
    assert "tickets.first_response_at: column first_response_at (timestamp) is missing" in \
        notes["operations.first_response_hours"]
    assert notes["operations.tickets_created"] == notes["operations.first_response_hours"]  # tickets unreadable
    assert bad.values()[("sales.revenue", "", "")] is not None  # the CRM's KPIs computed


def test_with_on_broken_source_stop_the_run_stops_before_anything_is_published(case, monkeypatch, tmp_path):
    import yaml
    from airflow.sdk.exceptions import AirflowFailException

    from crm_kpis.config.settings import config_file

    config = yaml.safe_load(config_file().read_text(encoding="utf-8"))
    for report in config["reports"].values():
        report["on_broken_source"] = "stop"
    (tmp_path / "reports.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("CRM_KPIS_CONFIG", str(tmp_path / "reports.yaml"))
    bad = case(helpdesk=lambda conn: conn.execute("DROP TABLE calls"))
    assert isinstance(bad.error, AirflowFailException)  # permanent: not retried
    assert_stopped(bad, "on_broken_source: stop", "table calls is missing")


# --- text keys ------------------------------------------------------------------------------------
def as_text_ids(path: Path) -> None:
    """Every id column of every table as text (`C-0001f`), as synced CRMs key their rows."""
    import pandas as pd

    conn = sqlite3.connect(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for table in tables:
        frame = pd.read_sql_query(f"SELECT * FROM {table}", conn)
        for column in frame.columns:
            if column.endswith("_id") and pd.api.types.is_numeric_dtype(frame[column]):
                frame[column] = frame[column].map(lambda v: None if pd.isna(v) else f"C-{int(v):05x}")
        conn.execute(f"DROP TABLE {table}")
        frame.to_sql(table, conn, index=False)  # id columns TEXT, no integer keys anywhere
    conn.commit()
    conn.close()


def test_text_ids_everywhere_give_the_same_numbers(base, clean, tmp_path):
    for name in ("crm.db", "helpdesk.db"):
        copy_db(base / name, tmp_path / name)
        as_text_ids(tmp_path / name)
    with sqlite3.connect(tmp_path / "crm.db") as conn:
        assert conn.execute("SELECT typeof(customer_id), customer_id FROM orders LIMIT 1").fetchone()[0] == "text"
    conn.close()
    copy_db(base / "warehouse.db", tmp_path / "warehouse.db")
    text_ids = Outcome(compute(tmp_path, OCT, "text-ids"), tmp_path)
    assert text_ids.error is None, text_ids.error
    assert_same_values(text_ids, clean)


# --- the check command ------------------------------------------------------------------------------
def test_the_check_command_lists_what_a_source_lacks(base, tmp_path):
    import subprocess
    import sys

    def inject(conn):
        conn.execute("DROP TABLE calls")
        conn.execute("DELETE FROM agent_time")
        loosen(conn, "tickets")
        conn.execute("UPDATE tickets SET status = 'Solved!' WHERE ticket_id % 50 = 0")
        conn.execute("UPDATE tickets SET resolved_at = '2099-01-01 00:00:00' WHERE ticket_id IN "
                     "(SELECT ticket_id FROM tickets WHERE resolved_at IS NOT NULL ORDER BY ticket_id LIMIT 3)")
    run_case(base, tmp_path, {"helpdesk": inject})
    ok = subprocess.run([sys.executable, "-m", "crm_kpis.sources", "check", "--crm-url", f"sqlite:///{base / 'crm.db'}",
                         "--helpdesk-url", f"sqlite:///{base / 'helpdesk.db'}"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 error(s)" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "crm_kpis.sources", "check", "--crm-url", f"sqlite:///{base / 'crm.db'}",
                          "--helpdesk-url", f"sqlite:///{tmp_path / 'helpdesk.db'}"], capture_output=True, text=True)
    assert bad.returncode == 1
    out = " ".join(bad.stdout.split())
    assert "ERROR calls: table calls is missing from helpdesk." in out and "operations.inbound_calls" in out
    assert "WARNING tickets.status: values outside ['open', 'pending', 'solved', 'closed']: 'Solved!'" in out
    assert "WARNING tickets.resolved_at: 3 rows are later than" in out and "(future_resolved_at)" in out
    assert "tickets.created_at" not in out  # no time ahead there


# --- the report of a helpdesk that tracks neither first responses nor calls -----------------------
def test_the_report_says_not_tracked_where_the_helpdesk_records_nothing(base, tmp_path, monkeypatch):
    import subprocess

    def inject(conn):
        conn.execute("DELETE FROM calls")
        conn.execute("UPDATE tickets SET first_response_at = NULL")
    bad = run_case(base, tmp_path, {"helpdesk": inject})
    assert bad.error is None, bad.error
    point_at(monkeypatch, tmp_path)
    start, end = interval(OCT)
    out = tasks.render_report("monthly", start, end)
    text = subprocess.run(["pdftotext", "-layout", out["pdf"], "-"], capture_output=True, text=True, check=True).stdout
    page_one = text.split("\f")[0]
    sla = next(line for line in page_one.splitlines() if "SLA compliance" in line)
    # the tile: n/a with its reason, no "0.0 %", no status badge
    assert "n/a" in page_one and "0.0 %" not in sla and "target" not in sla.lower().replace("off target", "")
    assert "not tracked: no tickets.first_response_at" in " ".join(page_one.split())
    plain = subprocess.run(["pdftotext", out["pdf"], "-"], capture_output=True, text=True, check=True).stdout
    about = " ".join(plain.split())
    assert "Not tracked by the sources" in about and "Service calls (no rows in calls)" in about
    assert "SLA compliance (no tickets.first_response_at)" in about
    for line in text.splitlines():
        if line.strip().startswith(("Service calls", "Calls abandoned", "First response time", "SLA compliance")):
            assert "On target" not in line and "Off target" not in line and "At risk" not in line, line
    shots = Path(__import__("os").environ.get("CRM_KPIS_SCREENSHOTS", tmp_path))
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "3", out["pdf"], str(shots / "not-tracked")],
                   check=True)
