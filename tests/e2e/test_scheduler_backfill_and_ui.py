"""A real Airflow (standalone: scheduler, LocalExecutor, API server, dag-processor) on the embedded
default, driven the way analysts and ops use it:

- an analyst backfills a week of days with Airflow's own `airflow backfill create`; the scheduler
  runs them; every period is stored once, nobody is emailed; re-running two of those periods gives
  the same numbers and leaves the other periods alone;
- ops log into the UI in headless Chromium, see the DAG list, and open the KPI history view.
"""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from crm_kpis.history.store import kpi_history, kpi_runs, report_deliveries
from crm_kpis.sources.connections import engine_for
from crm_kpis.tools.local_airflow import RunningAirflow, standalone
from tests.e2e.helpers import free_port_block, headless_chromium, screenshot_dir, smtp_server

DAG_ID = "crm_kpis_daily"
FIRST, LAST = date(2026, 10, 1), date(2026, 10, 7)  # inside the demo data (to October 2026)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


DAYS = _days(FIRST, LAST)
RUN_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def airflow(demo_sources, airflow_db, tmp_path_factory, test_home):
    """Standalone Airflow with its own warehouse file and a real SMTP server that must stay empty."""
    warehouse_file = tmp_path_factory.mktemp("backfill") / "warehouse.db"
    with smtp_server() as (inbox, smtp_conn):
        extra = {
            "AIRFLOW_CONN_KPI_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(warehouse_file)}),
            "AIRFLOW_CONN_SMTP_DEFAULT": smtp_conn,
        }
        with standalone(free_port_block(), schedule=False, extra_env=extra) as running:
            running.wait_for_dags({DAG_ID, "crm_kpis_monthly"})
            try:
                yield running, engine_for(f"sqlite:///{warehouse_file}"), inbox
            finally:
                running.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": True})


def _backfill(airflow: RunningAirflow, first: date, last: date, *extra_args: str) -> dict[str, str]:
    """`airflow backfill create` as the README documents it; waits for the scheduler to finish it."""
    result = airflow.backfill(DAG_ID, first.isoformat(), last.isoformat(), "--max-active-runs", "2", *extra_args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    wanted = {f"backfill__{(d + timedelta(days=1)).isoformat()}T00:00:00+00:00" for d in _days(first, last)}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        runs = airflow.api("GET", f"/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
        states = {r["dag_run_id"]: r["state"] for r in runs if r["dag_run_id"] in wanted}
        if len(states) == len(wanted) and all(s in ("success", "failed") for s in states.values()):
            airflow.wait_backfills_completed(DAG_ID)  # the next backfill of the DAG may start now
            return states
        time.sleep(3)
    raise AssertionError(f"backfill not finished in {RUN_TIMEOUT_S} s: {states}; log {airflow.log_file}")


def _history(engine) -> dict[tuple, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(select(kpi_history).where(kpi_history.c.grain == "daily")).mappings().all()
    return {(r["period_start"], r["kpi_id"], r["dimension"], r["member"]):
            (r["value"], r["numerator"], r["denominator"], r["run_id"], r["computed_at"]) for r in rows}


def test_a_backfill_through_the_scheduler_stores_every_period_once_and_emails_nobody(airflow, test_home):
    running, warehouse, inbox = airflow
    outbox = test_home / "outbox"
    outbox_before = set(outbox.iterdir()) if outbox.exists() else set()
    started = time.monotonic()
    states = _backfill(running, FIRST, LAST)
    took = time.monotonic() - started
    assert set(states.values()) == {"success"}, states
    print(f"\nbackfill of {len(DAYS)} daily periods through the scheduler: {took:.0f} s")

    with warehouse.connect() as conn:
        runs = conn.execute(select(kpi_runs.c.period_start, kpi_runs.c.run_id, kpi_runs.c.values_written)
                            .where(kpi_runs.c.grain == "daily")).all()
        per_period = dict(conn.execute(select(kpi_history.c.period_start, func.count())
                                       .where(kpi_history.c.grain == "daily").group_by(kpi_history.c.period_start)).all())
        deliveries = conn.execute(select(func.count()).select_from(report_deliveries)).scalar_one()
    assert sorted(r.period_start for r in runs) == DAYS  # each period once, no other period
    for r in runs:
        assert r.run_id == f"backfill__{(r.period_start + timedelta(days=1)).isoformat()}T00:00:00+00:00"
        assert per_period[r.period_start] == r.values_written > 200  # 52 KPIs and their breakdowns
    assert deliveries == 0 and inbox.messages == []
    assert (set(outbox.iterdir()) if outbox.exists() else set()) == outbox_before  # no email written instead

    # what ops see in the UI's task log: the numbers, not an empty log (make airflow logs at INFO)
    from urllib.parse import quote

    run_id = quote(f"backfill__{(FIRST + timedelta(days=1)).isoformat()}T00:00:00+00:00", safe="")
    log = json.dumps(running.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/compute_sales/logs/1"))
    assert "extract orders:" in log and "rows read" in log and "staged sales" in log, log[:2000]
    publish = json.dumps(running.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/publish_history/logs/1"))
    assert "rows written" in publish, publish[:2000]

    # each published period is an event of the Asset kpi_history/daily, with its period and run
    (asset,) = [a for a in running.api("GET", "/assets?limit=100")["assets"] if a["name"] == "kpi_history/daily"]
    assert asset["uri"] == "crm-kpis://kpi_history/daily"
    events = running.api("GET", f"/assets/events?asset_id={asset['id']}&limit=100")["asset_events"]
    by_period = {e["extra"]["period"]: e for e in events if e["source_run_id"].startswith("backfill__")}
    assert sorted(by_period) == [d.isoformat() for d in DAYS]
    for day in DAYS:
        extra = by_period[day.isoformat()]["extra"]
        assert extra["run_id"] == by_period[day.isoformat()]["source_run_id"]
        assert extra["grain"] == "daily" and extra["kpis"] > 40 and extra["rows_written"] > 200


def test_rerunning_existing_periods_gives_identical_numbers_and_leaves_the_others(airflow):
    running, warehouse, inbox = airflow
    before = _history(warehouse)
    assert before, "the backfill test stores the week first"
    again = (date(2026, 10, 3), date(2026, 10, 4))
    states = _backfill(running, *again, "--reprocess-behavior", "completed")
    assert set(states.values()) == {"success"}, states
    after = _history(warehouse)
    assert after.keys() == before.keys()  # no duplicates, nothing added or lost
    for key, (value, num, den, run_id, computed_at) in after.items():
        old = before[key]
        assert (value, num, den, run_id) == old[:4], key  # bit-identical values; same run re-queued
        assert (computed_at > old[4]) == (key[0] in again), key  # only the re-run periods were rewritten
    assert inbox.messages == []


# --- the UI in a real browser -------------------------------------------------------------------
def _log_in(browser, wait, running) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    browser.get(f"{running.base_url}/dags")
    wait.until(ec.url_contains("/auth/login"))
    wait.until(ec.presence_of_element_located((By.NAME, "username"))).send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(running.password)
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[type=submit]"))).click()
    wait.until(lambda b: "/auth/login" not in b.current_url)


def test_ops_log_in_see_the_dags_and_open_the_kpi_history(airflow, test_home, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    running, warehouse, inbox = airflow
    shots = screenshot_dir(test_home)
    # the last two days of the week shown were never computed: no history rows and no runs (as after
    # a failed load), a trailing gap
    gap = [date(2026, 10, 6), date(2026, 10, 7)]
    with warehouse.begin() as conn:
        conn.execute(kpi_history.delete().where(kpi_history.c.period_start.in_(gap)))
    for day in gap:
        from urllib.parse import quote

        running.api("DELETE", f"/dags/{DAG_ID}/dagRuns/" + quote(f"backfill__{(day + timedelta(days=1)).isoformat()}"
                                                                f"T00:00:00+00:00", safe=""))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser = headless_chromium(downloads)
    wait = WebDriverWait(browser, 60)
    try:
        browser.get(f"{running.base_url}/kpi-history/")  # the app itself refuses anonymous visitors
        assert "Not authenticated" in browser.page_source
        _log_in(browser, wait, running)

        browser.get(f"{running.base_url}/dags")
        wait.until(ec.presence_of_element_located((By.PARTIAL_LINK_TEXT, "crm_kpis_monthly")))
        wait.until(ec.presence_of_element_located((By.PARTIAL_LINK_TEXT, DAG_ID)))
        time.sleep(1)  # let the run bars finish drawing
        browser.save_screenshot(str(shots / "airflow-dag-list.png"))

        # a shared link with its query opens that view: daily revenue, the 7 days up to 7 October
        browser.get(f"{running.base_url}/plugin/kpi-history?grain=daily&kpi=sales.revenue&periods=7&until=2026-10-07")
        frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe")))
        browser.switch_to.frame(frame)
        wait.until(lambda b: "kpi=sales.revenue" in b.execute_script("return location.search"))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table#history tbody tr")))
        assert "Revenue" in browser.find_element(By.TAG_NAME, "p").text or "<b>Revenue</b>" in browser.page_source
        rows = browser.find_elements(By.CSS_SELECTOR, "table#history tbody tr")
        assert [r.find_element(By.TAG_NAME, "td").text for r in rows] == [
            "2026-10-06 .. 2026-10-07", "2026-10-05", "2026-10-04", "2026-10-03", "2026-10-02", "2026-10-01"]
        gaps = browser.find_elements(By.CSS_SELECTOR, "ul.gaps li")
        assert [g.text.split(" (")[0] for g in gaps] == ["not computed: 2026-10-06 .. 2026-10-07"]
        svg = browser.find_element(By.CSS_SELECTOR, "svg.trend")
        labels = [t.text for t in svg.find_elements(By.TAG_NAME, "text")]
        assert sum(1 for t in labels if t.startswith("2026-10-")) >= 3 and any("$" in t or "USD" in t or t[0].isdigit()
                                                                               for t in labels)
        browser.switch_to.default_content()
        time.sleep(1)
        browser.save_screenshot(str(shots / "airflow-kpi-history-gap.png"))

        # the CSV export downloads the series, the gap included
        browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe"))
        browser.find_element(By.PARTIAL_LINK_TEXT, "Download CSV").click()
        end = time.monotonic() + 30
        while time.monotonic() < end and not list(downloads.glob("*.csv")):
            time.sleep(0.5)
        (csv_file,) = downloads.glob("*.csv")
        lines = csv_file.read_text().splitlines()
        assert [line.split(",")[0] for line in lines[1:]] == [f"2026-10-0{n}" for n in range(1, 8)]
        assert [line.split(",")[9] for line in lines[1:]].count("not computed") == 2

        # the gap's button creates the backfill through the REST API, as the logged-in user
        browser.find_element(By.CSS_SELECTOR, "button.backfill").click()
        # (on SQLite the page tries again while Airflow answers 503 "database is locked")
        result = lambda b: b.find_element(By.CSS_SELECTOR, "ul.gaps .result").text  # noqa: E731
        wait.until(lambda b: result(b).startswith(("backfill ", "not created")))
        assert result(browser).startswith("backfill ") and "created" in result(browser), result(browser)
        browser.switch_to.default_content()
        states = _wait_runs(running, {f"backfill__{(d + timedelta(days=1)).isoformat()}T00:00:00+00:00" for d in gap})
        assert set(states.values()) == {"success"}, states
        running.wait_backfills_completed(DAG_ID)
        browser.refresh()
        browser.switch_to.frame(wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe"))))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "table#history tbody tr")))
        assert not browser.find_elements(By.CSS_SELECTOR, "ul.gaps li")  # filled
        assert len(browser.find_elements(By.CSS_SELECTOR, "table#history tbody tr")) == 7
        browser.switch_to.default_content()
        time.sleep(1)
        browser.save_screenshot(str(shots / "airflow-kpi-history.png"))

        # a run link opens that run's page in the UI (the iframe may not navigate the top window)
        browser.switch_to.frame(browser.find_element(By.CSS_SELECTOR, "iframe"))
        link = browser.find_element(By.CSS_SELECTOR, "a.run")
        run_id = link.text
        link.click()
        browser.switch_to.default_content()
        wait.until(lambda b: "/dags/crm_kpis_daily/runs/" in b.current_url)
        wait.until(lambda b: run_id in b.find_element(By.TAG_NAME, "body").text)
        browser.save_screenshot(str(shots / "airflow-run-from-history.png"))

        # the downloaded CSV shown as text, to look at (Chromium would download a .csv URL again)
        browser.get("about:blank")
        browser.execute_script("const pre = document.createElement('pre'); pre.textContent = arguments[0];"
                               "pre.style.font = '13px monospace'; document.body.appendChild(pre);",
                               f"{csv_file.name}\n\n{csv_file.read_text()}")
        browser.save_screenshot(str(shots / "airflow-kpi-history-csv.png"))
    finally:
        browser.quit()
    assert inbox.messages == []  # the backfill from the button emailed nobody
    for name in ("airflow-dag-list.png", "airflow-kpi-history.png", "airflow-kpi-history-gap.png"):
        assert (shots / name).stat().st_size > 20_000, f"{name} looks empty"
    print(f"\nscreenshots: {shots}")


def _wait_runs(running, wanted: set[str]) -> dict[str, str]:
    end = time.monotonic() + RUN_TIMEOUT_S
    states: dict[str, str] = {}
    while time.monotonic() < end:
        runs = running.api("GET", f"/dags/{DAG_ID}/dagRuns?run_type=backfill&limit=100")["dag_runs"]
        states = {r["dag_run_id"]: r["state"] for r in runs if r["dag_run_id"] in wanted}
        if len(states) == len(wanted) and all(s in ("success", "failed") for s in states.values()):
            return states
        time.sleep(3)
    raise AssertionError(f"runs not finished: {states}")
