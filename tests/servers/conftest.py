"""Throw-away databases on the local PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306).

These tests fail, not skip, when a server is unreachable: `.ci/run` starts both. Point them
elsewhere with CRM_KPIS_TEST_PG_URL and CRM_KPIS_TEST_MYSQL_URL (admin URLs that may create
databases).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import create_engine, make_url, text

from crm_kpis.sources.connections import engine_for
from crm_kpis.tools.demo.generator import generate, spec_for
from crm_kpis.tools.demo.loader import load_database

PG_ADMIN = os.environ.get("CRM_KPIS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("CRM_KPIS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
SUFFIX = uuid.uuid4().hex[:8]


def _admin(url: str):
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        pytest.fail(f"database server not reachable at {make_url(url).render_as_string()}: {exc}\n"
                    "start it (see .ci/run) or set CRM_KPIS_TEST_PG_URL / CRM_KPIS_TEST_MYSQL_URL", pytrace=False)
    return engine


class ThrowAway:
    """Creates databases on a server and drops them at the end of the session."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.admin = _admin(admin_url)
        self.names: list[str] = []
        self.accounts: list[str] = []  # roles or users to drop after the databases

    def create(self, label: str) -> str:
        name = f"kpitest_{label}_{SUFFIX}"
        with self.admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))  # names are ours, not user input
            conn.execute(text(f"CREATE DATABASE {name}"))
        self.names.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        force = " WITH (FORCE)" if self.admin.dialect.name == "postgresql" else ""
        with self.admin.connect() as conn:
            for name in self.names:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
            for account in self.accounts:
                conn.execute(text(f"DROP {'ROLE' if force else 'USER'} IF EXISTS {account}"))
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres() -> Iterator[ThrowAway]:
    servers = ThrowAway(PG_ADMIN)
    yield servers
    servers.drop_all()


@pytest.fixture(scope="session")
def mariadb() -> Iterator[ThrowAway]:
    servers = ThrowAway(MYSQL_ADMIN)
    yield servers
    servers.drop_all()


@pytest.fixture(scope="session")
def demo_frames():
    return generate(spec_for(date(2026, 10, 1), months=14, seed=11, scale=0.3))


@pytest.fixture(scope="session")
def engines(postgres, mariadb, demo_frames, tmp_path_factory) -> dict[str, dict[str, str]]:
    """The same generated data (14 months to October 2026) on SQLite, PostgreSQL and MariaDB.

    Returns URLs per setup: {"sqlite": {"crm_db": url, "helpdesk_db": url}, "production": ..., "swapped": ...}
    where production is the usual layout (CRM on PostgreSQL, helpdesk on MariaDB) and swapped the
    other way round, so that every SQL file runs on every engine.
    """
    data = demo_frames
    folder = tmp_path_factory.mktemp("sqlite-sources")
    urls = {
        "sqlite": {"crm_db": f"sqlite:///{folder / 'crm.db'}", "helpdesk_db": f"sqlite:///{folder / 'helpdesk.db'}"},
        "production": {"crm_db": postgres.create("crm"), "helpdesk_db": mariadb.create("helpdesk")},
        "swapped": {"crm_db": mariadb.create("crm"), "helpdesk_db": postgres.create("helpdesk")},
    }
    for setup in urls.values():
        load_database(engine_for(setup["crm_db"]), "crm", data["crm"])
        load_database(engine_for(setup["helpdesk_db"]), "helpdesk", data["helpdesk"])
    return urls
