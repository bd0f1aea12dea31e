"""Source connections on PostgreSQL and MariaDB: URI and JSON forms, driver extras kept, the
contract checked against the server's own catalogue."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import make_url, text

from crm_kpis.sources.connections import CRM_CONN_ID, HELPDESK_CONN_ID, engine_for, source_settings
from crm_kpis.sources.contract_checks import schema_problems


def _uri(url: str, scheme: str, query: str) -> str:
    u = make_url(url)
    auth = u.username + (f":{u.password}" if u.password else "")
    return f"{scheme}://{auth}@{u.host}:{u.port}/{u.database}?{query}"


def test_postgres_uri_keeps_driver_options(postgres, monkeypatch):
    url = postgres.create("conn_pg")
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB",
                       _uri(url, "postgres", "sslmode=disable&application_name=crm_kpis_test&timezone=America%2FNew_York"))
    with engine_for(CRM_CONN_ID).connect() as conn:
        assert conn.execute(text("SHOW application_name")).scalar_one() == "crm_kpis_test"
    assert source_settings(CRM_CONN_ID).timezone == "America/New_York"


def test_source_sessions_run_without_jit_unless_the_connection_asks_for_it(postgres):
    """The product's session options come first, so that a connection's own `-c jit=on` wins."""
    import adbc_driver_postgresql.dbapi as adbc

    from crm_kpis.sources.reading import source_session_uri

    url = make_url(postgres.create("conn_jit"))
    for own, expected in (({}, "off"), ({"options": "-c jit=on"}, "on"),
                          ({"options": "-c application_name=mine"}, "off")):
        with adbc.connect(source_session_uri(url.update_query_dict(own)), autocommit=True) as conn, \
                conn.cursor() as cur:
            cur.execute("SELECT current_setting('jit')")
            assert cur.fetchone()[0] == expected


def test_mysql_json_form_keeps_the_charset(mariadb, monkeypatch):
    u = make_url(mariadb.create("conn_my"))
    monkeypatch.setenv("AIRFLOW_CONN_HELPDESK_DB", json.dumps({
        "conn_type": "mysql", "host": u.host, "port": u.port, "login": u.username, "password": u.password or "",
        "schema": u.database, "extra": {"charset": "utf8mb4", "timezone": "Europe/Paris"}}))
    with engine_for(HELPDESK_CONN_ID).connect() as conn:
        assert conn.execute(text("SELECT @@character_set_client")).scalar_one() == "utf8mb4"
    assert source_settings(HELPDESK_CONN_ID).timezone == "Europe/Paris"


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_the_contract_names_a_missing_column_from_the_servers_catalogue(server, request):
    url = request.getfixturevalue(server).create(f"contract_{server[:2]}")
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE calls (call_id VARCHAR(20), direction VARCHAR(10), queued_at TIMESTAMP NULL, "
                          "answered_at TIMESTAMP NULL, ended_at TIMESTAMP NULL, is_callback INTEGER, "
                          "outcome VARCHAR(20), agent_id VARCHAR(20), customer_id VARCHAR(20))"))
    problems = schema_problems(engine, {"calls": ("call_id", "direction", "queued_at", "ticket_id"),
                                        "agents": ("agent_id", "team")})
    lines = sorted(p.line() for p in problems)
    assert any(line.startswith("ERROR agents: table agents is missing") for line in lines), lines
    assert any(line.startswith("ERROR calls.ticket_id: column ticket_id (id) is missing") for line in lines), lines
    assert not any("call_id" in line for line in lines)  # a text id is fine: ids may be text
