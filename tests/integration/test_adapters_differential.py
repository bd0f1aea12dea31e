"""Each adapter against the demo business on SQLite: the same business written in the reference
layout and in the adapter's synced layout (`python -m crm_kpis.tools.demo --layout …`) gives, through the
adapter, the KPIs of the reference layout that the adapter covers, to 1e-9, company-wide and per
member, for three months and two days; the others are n/a with the adapter's reason.
(PostgreSQL and MariaDB: tests/servers/test_adapters_servers.py.)"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import date

import pytest

from crm_kpis.sources.adapters import load_adapter
from crm_kpis.tools.demo.generator import generate, spec_for
from crm_kpis.tools.demo.layouts import LAYOUTS
from tests.integration.adapter_helpers import MIN_COMPARED, compare_layouts, write_layouts


@pytest.fixture(scope="module")
def demo_data():
    return generate(spec_for(date(2026, 10, 1), months=14, seed=7, scale=0.3))


@pytest.mark.parametrize("adapter", sorted(LAYOUTS))
def test_the_demo_business_gives_the_same_kpis_through_the_adapter(adapter, demo_data, tmp_path, monkeypatch):
    urls = [f"sqlite:///{tmp_path / name}.db" for name in ("other", "reference", "synced")]
    write_layouts(demo_data, adapter, *urls)
    assert compare_layouts(monkeypatch, adapter, *urls) >= MIN_COMPARED.get(adapter, 100)


@pytest.mark.parametrize("adapter", sorted(LAYOUTS))
def test_the_demo_writes_the_synced_layout(adapter, tmp_path):
    """`python -m crm_kpis.tools.demo --layout <adapter>`: one database in the synced layout, with every
    table and column the adapter reads; the other in the reference tables."""
    database = LAYOUTS[adapter][0]
    urls = {name: f"sqlite:///{tmp_path / name}.db" for name in ("crm", "helpdesk")}
    done = subprocess.run([sys.executable, "-m", "crm_kpis.tools.demo", "--layout", adapter, "--crm-url", urls["crm"],
                           "--helpdesk-url", urls["helpdesk"], "--months", "3", "--scale", "0.1",
                           "--end-month", "2026-10"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / f"{database}.db") as conn:
        columns = {t: {r[1] for r in conn.execute(f'PRAGMA table_info("{t}")')}
                   for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, needed in load_adapter(adapter).synced.items():
        assert set(needed) <= columns.get(table, set()), (table, set(needed) - columns.get(table, set()))
    assert f'{{"adapter": "{adapter}"}}' in done.stdout
