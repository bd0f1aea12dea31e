"""`make airflow`: Airflow's standalone mode starts with the project's DAGs, requires a login, and
stops with every child process (the check mode starts it, uses the REST API, and stops it)."""

import subprocess
import sys

from tests.e2e.helpers import free_port_block, port_is_free


def test_standalone_starts_lists_the_dags_and_stops_cleanly(airflow_db):
    port = free_port_block()
    result = subprocess.run([sys.executable, "-m", "crm_kpis.tools.local_airflow", "--port", str(port), "--check"],
                            capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DAGs seen through the API: crm_kpis_daily, crm_kpis_monthly" in result.stdout
    assert f"Airflow UI: http://127.0.0.1:{port}" in result.stdout and "Login: admin / " in result.stdout
    assert "Airflow stopped." in result.stdout
    # the executor forks one worker per task slot, sized to the machine (Airflow's default forked 32)
    from crm_kpis.tools.local_airflow import task_slots

    assert f"Tasks at once: {task_slots()} (AIRFLOW__CORE__PARALLELISM)" in result.stdout
    assert f"LocalExecutor worker processes: {task_slots()}\n" in result.stdout, result.stdout
    assert all(port_is_free(port + i) for i in (0, 1, 2)), "a component still listens after stopping"


def test_the_embedded_metadata_database_waits_for_a_busy_writer_instead_of_failing(airflow_db):
    """SQLite's driver gives up after 5 s by default ("database is locked"); Airflow's processes
    sharing the embedded database must wait longer (CI saw a backfill creation fail)."""
    import sqlite3
    import threading
    import time

    from airflow import settings
    from sqlalchemy import text

    blocker = sqlite3.connect(settings.engine.url.database, check_same_thread=False, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock, as a busy scheduler would
    release = threading.Timer(6.5, blocker.execute, args=("COMMIT",))
    release.start()
    started = time.monotonic()
    try:
        with settings.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS crm_kpis_lock_probe (x INTEGER)"))
            conn.execute(text("DROP TABLE crm_kpis_lock_probe"))
    finally:
        release.join()
        blocker.close()
    waited = time.monotonic() - started
    assert 6.0 <= waited < 60, f"the write waited {waited:.1f} s for the lock (6.5 s held)"
