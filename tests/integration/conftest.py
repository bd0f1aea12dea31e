"""Fixtures shared by the delivery tests: an empty warehouse and a stand-in PDF."""

from __future__ import annotations

import pytest

from crm_kpis.history.store import ensure_schema
from crm_kpis.sources.connections import engine_for


@pytest.fixture()
def warehouse(tmp_path):
    """An empty warehouse (SQLite file) with the project's tables."""
    engine = engine_for(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ensure_schema(engine)
    return engine


@pytest.fixture()
def pdf(tmp_path):
    path = tmp_path / "r.pdf"
    path.write_bytes(b"%PDF-1.7 test")
    return path
