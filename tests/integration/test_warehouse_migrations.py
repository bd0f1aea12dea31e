"""The warehouse's schema by Alembic migrations on SQLite: a new warehouse, warehouses of the
releases before migrations with rows in them, the command, and a database that is not ours."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import text

from crm_kpis.history.migrate import current, head, upgrade
from crm_kpis.history.store import ensure_schema, metadata
from crm_kpis.sources.connections import engine_for
from tests.warehouse_migrations import assert_upgraded_with_rows_kept, differences, first_release, last_release, tables


@pytest.fixture()
def engine(tmp_path):
    return engine_for(f"sqlite:///{tmp_path / 'warehouse.db'}")


def test_a_new_warehouse_gets_the_newest_revision_and_the_tables_the_code_queries(engine):
    assert upgrade(engine) is None
    assert tables(engine) == set(metadata.tables) | {"kpi_schema_version"}
    with engine.connect() as connection:
        assert current(connection) == head() == "0001"
    assert differences(engine) == []


def test_the_last_release_warehouse_is_brought_up_to_date_with_its_rows(engine):
    last_release(engine)
    ensure_schema(engine)  # what every run does first
    assert_upgraded_with_rows_kept(engine, columns_added=False)


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
    assert before.returncode == 1 and "at no revision; newest 0001 (run upgrade)" in before.stdout
    upgraded = run("upgrade")
    assert upgraded.returncode == 0 and "at 0001 (was without a revision)" in upgraded.stdout, upgraded.stderr
    after = run("current")
    assert after.returncode == 0 and "at 0001; newest 0001" in after.stdout
