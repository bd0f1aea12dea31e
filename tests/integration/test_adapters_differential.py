"""Each adapter against the demo business on SQLite: the same business written in the reference
layout and in the adapter's synced layout (`python -m crm_kpis.demo --layout …`) gives, through the
adapter, the KPIs of the reference layout that the adapter covers, to 1e-9, company-wide and per
member, for three months and two days; the others are n/a with the adapter's reason.
(PostgreSQL and MariaDB: tests/servers/test_adapters_servers.py.)"""

from __future__ import annotations

from datetime import date

import pytest

from crm_kpis.demo.generator import generate, spec_for
from crm_kpis.demo.layouts import LAYOUTS
from tests.integration.adapter_helpers import compare_layouts, write_layouts


@pytest.fixture(scope="module")
def demo_data():
    return generate(spec_for(date(2026, 10, 1), months=14, seed=7, scale=0.3))


@pytest.mark.parametrize("adapter", sorted(LAYOUTS))
def test_the_demo_business_gives_the_same_kpis_through_the_adapter(adapter, demo_data, tmp_path, monkeypatch):
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("other", "reference", "synced")]
    write_layouts(demo_data, adapter, *urls)
    assert compare_layouts(monkeypatch, adapter, *urls) > 100
