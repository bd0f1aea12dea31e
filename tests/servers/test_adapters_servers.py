"""The adapters on PostgreSQL (synced tables in a schema of their own, as Fivetran writes them: the
connection's extra names it) and on MariaDB: the demo business in each synced layout gives, through
its adapter, the KPIs of its reference layout, to 1e-9. (SQLite and the hand-made sets:
tests/integration/test_adapter_zendesk.py and test_adapter_salesforce.py.)"""

from __future__ import annotations

import pytest

from crm_kpis.tools.demo.layouts import LAYOUTS
from tests.integration.adapter_helpers import MIN_COMPARED, compare_layouts, write_layouts, write_original_names


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
@pytest.mark.parametrize("adapter", sorted(LAYOUTS))
def test_the_demo_business_gives_the_same_kpis_through_the_adapter(adapter, server, postgres, mariadb, demo_frames,
                                                                   monkeypatch):
    servers = postgres if server == "postgresql" else mariadb
    tag = adapter.removeprefix("fivetran_").replace("_", "")[:6]  # a database per test: an earlier engine may be open
    urls = [servers.create(f"{tag}{label}") for label in ("other", "ref", "synced")]
    schema = adapter.split("_")[-1] if server == "postgresql" else None
    write_layouts(demo_frames, adapter, *urls, schema)
    assert compare_layouts(monkeypatch, adapter, *urls, schema) >= MIN_COMPARED.get(adapter, 100)


def test_salesforce_with_its_original_api_names_on_postgresql(postgres, demo_frames, monkeypatch):
    """PostgreSQL keeps the case of quoted names: `"Opportunity"."CreatedDate"` is read as the
    adapter's `opportunity.created_date`, with the same KPIs as the reference layout."""
    urls = [postgres.create(f"sfapi{label}") for label in ("other", "ref", "synced")]
    assert "Opportunity" in write_original_names(demo_frames, *urls, "salesforce")
    assert compare_layouts(monkeypatch, "fivetran_salesforce", *urls, "salesforce") > 100


def test_the_check_names_the_schema_it_searched(postgres, demo_frames, capsys):
    """Fivetran writes each connector into a schema of its own: the check takes it on the command line
    and says where it looked, so a wrong schema reads as one, not as a connector missing every table."""
    from crm_kpis.sources.check_command import main

    urls = [postgres.create(f"chk{label}") for label in ("other", "ref", "synced")]
    write_layouts(demo_frames, "fivetran_zendesk", *urls, "zendesk")
    assert main(["check", "--crm-url", urls[0], "--helpdesk-url", urls[2], "--helpdesk-adapter", "fivetran_zendesk",
                 "--helpdesk-schema", "zendesk"]) == 0
    out = capsys.readouterr().out
    assert "adapter fivetran_zendesk, schema zendesk)" in out and "Zendesk Support synced by Fivetran: ok" in out
    assert "adapter reference, the connection's default schema (public))" in out
    assert main(["check", "--crm-url", urls[0], "--helpdesk-url", urls[2], "--helpdesk-adapter", "fivetran_zendesk",
                 "--helpdesk-schema", "zendesks"]) == 1
    out = capsys.readouterr().out
    assert "schema zendesks)" in out and "fivetran_zendesk needs the synced table ticket (schema zendesks); it is missing" in out
    assert main(["check", "--crm-url", urls[0], "--crm-schema", "crm", "--helpdesk-url", urls[2],
                 "--helpdesk-adapter", "fivetran_zendesk", "--helpdesk-schema", "zendesk"]) == 1
    assert "== crm_db: cannot be read: --crm-schema 'crm' without an adapter: the reference layout reads the " \
           "connection's own tables" in \
        capsys.readouterr().out
