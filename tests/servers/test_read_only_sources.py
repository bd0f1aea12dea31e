"""The deployment's source accounts (deploy/*-init.sh) can read every extract and write nothing."""

from __future__ import annotations

import os
import subprocess

import pytest
from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import loading
from crm_kpis.sources.connections import CRM_CONN_ID, HELPDESK_CONN_ID, engine_for
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.loading import load_extracts
from crm_kpis.tools.demo.loader import load_database
from tests.servers.conftest import SUFFIX

OCTOBER = ReportPeriod.parse("monthly", "2026-10")


def run_init(script: str, env: dict[str, str]) -> None:
    result = subprocess.run(["bash", str(PROJECT_DIR / "deploy" / script)], env={**os.environ, **env},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def reads_and_cannot_write(conn_id: str, reader_url: str, table: str, monkeypatch) -> None:
    monkeypatch.setattr(loading, "engine_for", lambda c: engine_for(reader_url))
    names = {n for n, e in EXTRACTS.items() if e.conn_id == conn_id}
    loaded = load_extracts(names, OCTOBER)
    assert sum(loaded.rows_read.values()) > 100
    with pytest.raises(DBAPIError, match="(?i)denied|permission"), engine_for(reader_url).begin() as conn:
        conn.execute(text(f"DELETE FROM {table}"))


def test_crm_reader_on_postgresql(postgres, demo_frames, monkeypatch):
    owner_url = postgres.create("ro_crm")
    url = make_url(owner_url)
    reader = f"crm_reader_{SUFFIX}"
    postgres.accounts.append(reader)
    run_init("crm-db-init.sh", {"POSTGRES_USER": url.username, "POSTGRES_DB": url.database, "PGHOST": url.host,
                                "PGPORT": str(url.port), "CRM_READER_USER": reader, "CRM_READER_PASSWORD": "pw"})
    load_database(engine_for(owner_url), "crm", demo_frames["crm"])  # tables created after the grant
    reader_url = url.set(username=reader, password="pw").render_as_string(hide_password=False)
    reads_and_cannot_write(CRM_CONN_ID, reader_url, "orders", monkeypatch)


def test_helpdesk_reader_on_mariadb(mariadb, demo_frames, monkeypatch):
    owner_url = mariadb.create("ro_hd")
    url = make_url(owner_url)
    reader = f"hd_reader_{SUFFIX}"
    mariadb.accounts.append(reader)
    run_init("helpdesk-db-init.sh", {"MARIADB_ROOT_PASSWORD": url.password or "", "MARIADB_DATABASE": url.database,
                                     "MYSQL_HOST": url.host, "HELPDESK_READER_USER": reader,
                                     "HELPDESK_READER_PASSWORD": "pw"})
    load_database(engine_for(owner_url), "helpdesk", demo_frames["helpdesk"])
    reader_url = url.set(username=reader, password="pw").render_as_string(hide_password=False)
    reads_and_cannot_write(HELPDESK_CONN_ID, reader_url, "tickets", monkeypatch)
