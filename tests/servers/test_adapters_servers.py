"""The adapters on PostgreSQL (synced tables in a schema of their own, as Fivetran writes them: the
connection's extra names it) and on MariaDB: the demo business in each synced layout gives, through
its adapter, the KPIs of its reference layout, to 1e-9. (SQLite and the hand-made sets:
tests/integration/test_adapter_zendesk.py and test_adapter_salesforce.py.)"""

from __future__ import annotations

import pytest

from crm_kpis.tools.demo.layouts import LAYOUTS
from tests.integration.adapter_helpers import compare_layouts, write_layouts


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
@pytest.mark.parametrize("adapter", sorted(LAYOUTS))
def test_the_demo_business_gives_the_same_kpis_through_the_adapter(adapter, server, postgres, mariadb, demo_frames,
                                                                   monkeypatch):
    servers = postgres if server == "postgresql" else mariadb
    tag = adapter.split("_")[-1][:4]  # a database per test: an engine of an earlier one may still be open
    urls = [servers.create(f"{tag}{label}") for label in ("other", "ref", "synced")]
    schema = adapter.split("_")[-1] if server == "postgresql" else None
    write_layouts(demo_frames, adapter, *urls, schema)
    assert compare_layouts(monkeypatch, adapter, *urls, schema) > 100
