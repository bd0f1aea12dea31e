"""The warehouse's schema by Alembic migrations on SQLite: a new warehouse, warehouses of the
releases before migrations with rows in them, the command, and a database that is not ours."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from crm_kpis.history.migrate import alembic_config, current, head, upgrade
from crm_kpis.history.store import ensure_schema, kpi_history, kpi_runs, metadata, report_deliveries
from crm_kpis.sources.connections import engine_for
from tests.warehouse_migrations import (
    DELIVERY_ROW,
    HISTORY_ROW,
    RUN_ROW,
    assert_upgraded_with_rows_kept,
    differences,
    first_release,
    last_release,
    tables,
)


@pytest.fixture()
def engine(tmp_path):
    return engine_for(f"sqlite:///{tmp_path / 'warehouse.db'}")


def test_a_new_warehouse_gets_the_newest_revision_and_the_tables_the_code_queries(engine):
    assert upgrade(engine) is None
    assert tables(engine) == set(metadata.tables) | {"kpi_schema_version"}
    with engine.connect() as connection:
        assert current(connection) == head() == "0004"
    assert differences(engine) == []


def test_the_last_release_warehouse_is_brought_up_to_date_with_its_rows(engine):
    last_release(engine)
    ensure_schema(engine)  # what every run does first
    assert_upgraded_with_rows_kept(engine, columns_added=False)


def test_a_warehouse_at_revision_0001_gets_the_sync_stamp_with_its_rows_and_can_go_back(engine):
    """Revision 0002, an ordinary one: kpi_runs.latest_sync_ts added to a warehouse that has runs."""
    upgrade(engine, "0001")
    with engine.begin() as connection:
        connection.execute(kpi_history.insert().values(**HISTORY_ROW, note=None, coverage=0.97))
        connection.execute(kpi_runs.insert().values(**RUN_ROW, warnings='["volume: low"]'))
        connection.execute(report_deliveries.insert().values(**DELIVERY_ROW, variant=""))
    assert "latest_sync_ts" not in {c["name"] for c in inspect(engine).get_columns("kpi_runs")}
    assert upgrade(engine) == "0001"
    assert_upgraded_with_rows_kept(engine, columns_added=False)
    with engine.connect() as connection:
        assert connection.execute(select(kpi_runs.c.latest_sync_ts)).scalar_one() is None
    assert differences(engine) == []
    with engine.begin() as connection:  # and back: Alembic's downgrade of the revision
        command.downgrade(alembic_config(connection), "0001")
    assert "latest_sync_ts" not in {c["name"] for c in inspect(engine).get_columns("kpi_runs")}
    with engine.connect() as connection:
        assert current(connection) == "0001" and connection.execute(select(kpi_runs.c.run_id)).scalar_one()


def test_a_first_release_warehouse_gets_the_columns_added_since(engine):
    first_release(engine)
    assert upgrade(engine) is None  # it had no revision
    assert_upgraded_with_rows_kept(engine, columns_added=True)


def test_a_table_of_the_same_name_that_is_not_ours_is_refused_in_words(engine):
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE kpi_runs (id INTEGER PRIMARY KEY, label TEXT)"))
    with pytest.raises(RuntimeError, match=r"kpi_runs lacks grain, period_start.*not this product's table"):
        upgrade(engine)
    with engine.connect() as connection:
        assert current(connection) is None  # nothing was stamped


def test_the_command_says_where_a_warehouse_stands_and_upgrades_it(engine, tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    last_release(engine)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crm_kpis.history", *args, "--url", url],
                              capture_output=True, text=True, timeout=120)

    before = run("current")
    assert before.returncode == 1 and "at no revision; newest 0004 (run upgrade)" in before.stdout
    upgraded = run("upgrade")
    assert upgraded.returncode == 0 and "at 0004 (was without a revision)" in upgraded.stdout, upgraded.stderr
    after = run("current")
    assert after.returncode == 0 and "at 0004; newest 0004" in after.stdout
