"""The warehouse's schema, versioned by Alembic: `upgrade` brings any warehouse to the newest revision.

Why Alembic: the warehouse outlives releases and analysts query it; a schema change must be a
reviewed, ordered step that can also rename, retype or re-key (what a hand-kept list of `ADD COLUMN`
statements could not), and a warehouse must say which revision it is at. Revisions live in
`migrations/versions/`; the first one also brings warehouses written before migrations existed.

Several tasks of a run call `upgrade` at once: PostgreSQL and MariaDB serialise it with a
database lock; on SQLite a loser of the race meets "already exists" and checks again
(crm_kpis.history.store.ensure_schema). A warehouse already at the newest revision is recognised
by one query, without Alembic's machinery.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from crm_kpis.history import locks

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: not Alembic's default `alembic_version`: a warehouse may share a database with Airflow's metadata, which has one
VERSION_TABLE = "kpi_schema_version"
LOCK_NAME = "crm_kpis_warehouse_migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def head() -> str:
    """The newest revision there is."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the warehouse migrations have {len(heads)} heads ({heads}); merge them")
    return heads[0]


def current(connection: Connection) -> str | None:
    """The revision the warehouse is at (None: new, or written before migrations)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    return connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # our own name


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the warehouse to `revision` (the newest by default); returns the revision it was at."""
    target = head() if revision == "head" else revision
    with engine.connect() as connection:
        was = current(connection)
        connection.rollback()
        if was == target:
            return was
        try:
            if not locks.take(connection, LOCK_NAME):
                raise RuntimeError(f"the warehouse is being migrated by another task for over {locks.TIMEOUT_S} s")
            was = current(connection)  # another task may have finished it while this one waited
            if was != target:
                command.upgrade(alembic_config(connection), revision)
                log.info("the warehouse schema went from %s to %s", was or "no revision", target)
            connection.commit()
        finally:
            locks.release(connection, LOCK_NAME)
            connection.commit()
    return was
