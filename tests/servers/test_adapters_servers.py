"""The fivetran_zendesk adapter on PostgreSQL (synced tables in a schema of their own, as Fivetran
writes them: the connection's extra names it) and on MariaDB: the demo business in Zendesk's synced
layout gives, through the adapter, the operations KPIs of its reference layout, to 1e-9. (SQLite
and the hand-made set: tests/integration/test_adapter_zendesk.py.)"""

from __future__ import annotations

import pytest

from crm_kpis.demo.layouts import fivetran_zendesk, load_layout
from crm_kpis.demo.loader import load_database
from crm_kpis.sources import engine_for
from tests.integration.test_adapter_zendesk import ADAPTER, PERIODS, assert_same_through_the_adapter, point, values


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_the_demo_business_gives_the_same_kpis_through_the_adapter(server, postgres, mariadb, demo_frames,
                                                                   monkeypatch):
    servers = postgres if server == "postgresql" else mariadb
    crm, reference, synced = (servers.create(f"zd{label}") for label in ("crm", "ref", "synced"))
    load_database(engine_for(crm), "crm", demo_frames["crm"])
    load_database(engine_for(reference), "helpdesk", demo_frames["helpdesk"])
    schema = "zendesk" if server == "postgresql" else None
    load_layout(engine_for(synced), fivetran_zendesk(demo_frames["helpdesk"]), schema)
    compared = 0
    for period in PERIODS:
        point(monkeypatch, crm, reference)
        expected = values(period)
        point(monkeypatch, crm, synced, ADAPTER, schema)
        compared += assert_same_through_the_adapter(expected, values(period), period)
    assert compared > 150
