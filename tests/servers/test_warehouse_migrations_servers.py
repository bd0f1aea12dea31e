"""The warehouse migrations on PostgreSQL and MariaDB: from the releases before migrations with rows
in them, and three tasks migrating a new warehouse at once (one version row, no error)."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import text

from crm_kpis.history.migrate import head
from crm_kpis.history.store import ensure_schema, metadata
from crm_kpis.sources.connections import engine_for
from tests.warehouse_migrations import assert_upgraded_with_rows_kept, differences, first_release, last_release, tables


@pytest.fixture(params=["postgresql", "mariadb"])
def engine(request, postgres, mariadb):
    servers = postgres if request.param == "postgresql" else mariadb
    return engine_for(servers.create(f"wh{uuid.uuid4().hex[:6]}"))


def test_the_last_release_warehouse_is_brought_up_to_date_with_its_rows(engine):
    last_release(engine)
    ensure_schema(engine)
    assert_upgraded_with_rows_kept(engine, columns_added=False)


def test_a_first_release_warehouse_gets_the_columns_added_since(engine):
    first_release(engine)
    ensure_schema(engine)
    assert_upgraded_with_rows_kept(engine, columns_added=True)


def test_three_tasks_migrating_a_new_warehouse_at_once(engine):
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def task() -> None:
        start.wait()
        try:
            ensure_schema(engine_for(engine.url.render_as_string(hide_password=False)))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=task) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert tables(engine) == set(metadata.tables) | {"kpi_schema_version"}
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM kpi_schema_version")).scalars().all() == [head()]
    assert differences(engine) == []
