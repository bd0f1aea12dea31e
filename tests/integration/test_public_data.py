"""Sales KPIs on real public data (CDNOW, Chinook), against plain SQL on the original data.

The pipeline reads the data through the reference-schema mapping (crm_kpis.tools.demo.public_data);
the expectations are computed in SQL written here, on the data as published, so a mistake in
the mapping or in a KPI shows as a difference.
"""

import sqlite3
from datetime import date

import pytest

from crm_kpis.compute import prepare_frames
from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import Inputs
from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.loading import load_extracts
from crm_kpis.tools.demo.loader import load_database
from crm_kpis.tools.demo.public_data import cdnow_tables, chinook_tables

DATA = PROJECT_DIR.parent / "shared" / "data"
CDNOW, CHINOOK = DATA / "cdnow" / "CDNOW_master.txt", DATA / "chinook" / "Chinook_Sqlite.sqlite"
KPIS = ("sales.revenue", "sales.orders", "sales.aov", "sales.new_customers", "sales.repeat_purchase_rate")


def months(first: date, count: int) -> list[ReportPeriod]:
    p = ReportPeriod("monthly", first)
    return [p.shift(i) for i in range(count)]


def pipeline_values(engine, period, monkeypatch, kpi_ids=KPIS):
    monkeypatch.setattr("crm_kpis.sources.loading.engine_for", lambda conn_id: engine)
    defs = [REGISTRY[k] for k in kpi_ids]
    loaded = load_extracts({n for d in defs for n in d.inputs}, period)
    assert loaded.rejected == {}, loaded.rejected
    x = Inputs(period, prepare_frames(loaded.frames))
    return {(v.kpi_id, v.dimension, v.member): v.value for d in defs for v in d.evaluate(x)}


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cdnow")
    engine = engine_for(f"sqlite:///{folder / 'crm.db'}")
    load_database(engine, "crm", cdnow_tables(CDNOW))
    raw = sqlite3.connect(":memory:")  # the original file, parsed plainly
    raw.execute("CREATE TABLE raw (customer_id INTEGER, d TEXT, cds INTEGER, dollars REAL)")
    with open(CDNOW) as f:
        rows = [line.split() for line in f][1:]
    raw.executemany("INSERT INTO raw VALUES (?, ?, ?, ?)", [(int(a), b, int(c), float(d)) for a, b, c, d in rows])
    raw.execute("CREATE INDEX raw_customer ON raw (customer_id, d)")
    return engine, raw


@pytest.fixture(scope="module")
def chinook(tmp_path_factory):
    folder = tmp_path_factory.mktemp("chinook")
    engine = engine_for(f"sqlite:///{folder / 'crm.db'}")
    load_database(engine, "crm", chinook_tables(CHINOOK))
    return engine, sqlite3.connect(f"file:{CHINOOK}?mode=ro", uri=True)


def test_cdnow_sales_kpis_match_plain_sql_every_month(cdnow, monkeypatch):
    engine, raw = cdnow
    total = 0.0
    for period in months(date(1997, 1, 1), 18):
        lo, hi = period.start_date.strftime("%Y%m%d"), period.end_date.strftime("%Y%m%d")
        revenue, orders = raw.execute("SELECT SUM(dollars), COUNT(*) FROM raw WHERE d >= ? AND d < ?", (lo, hi)).fetchone()
        new = raw.execute("SELECT COUNT(*) FROM (SELECT MIN(d) AS first_d FROM raw GROUP BY customer_id) "
                          "WHERE first_d >= ? AND first_d < ?", (lo, hi)).fetchone()[0]
        buyers, repeat = raw.execute("""
            SELECT COUNT(*), SUM(CASE WHEN EXISTS (SELECT 1 FROM raw p WHERE p.customer_id = b.customer_id AND p.d < ?)
                                      THEN 1 ELSE 0 END)
            FROM (SELECT DISTINCT customer_id FROM raw WHERE d >= ? AND d < ?) b""", (lo, lo, hi)).fetchone()
        got = pipeline_values(engine, period, monkeypatch)
        assert got[("sales.revenue", "", "")] == pytest.approx(revenue, abs=1e-6), period
        assert got[("sales.orders", "", "")] == orders
        assert got[("sales.aov", "", "")] == pytest.approx(revenue / orders, rel=1e-12)
        assert got[("sales.new_customers", "", "")] == new
        assert got[("sales.repeat_purchase_rate", "", "")] == pytest.approx(repeat / buyers, rel=1e-12)
        total += got[("sales.revenue", "", "")]
    assert total == pytest.approx(2_500_315.63, abs=0.005)  # published total, 1997-01 .. 1998-06


def test_chinook_sales_kpis_match_plain_sql(chinook, monkeypatch):
    engine, src = chinook
    total, by_rep = 0.0, {}
    for period in months(date(2021, 1, 1), 60):
        lo, hi = f"{period.start_date} 00:00:00", f"{period.end_date} 00:00:00"
        revenue, orders = src.execute("SELECT COALESCE(SUM(Total), 0), COUNT(*) FROM Invoice "
                                      "WHERE InvoiceDate >= ? AND InvoiceDate < ?", (lo, hi)).fetchone()
        got = pipeline_values(engine, period, monkeypatch, ("sales.revenue", "sales.orders", "sales.aov"))
        assert got[("sales.revenue", "", "")] == pytest.approx(revenue, abs=1e-9), period
        assert got[("sales.orders", "", "")] == orders
        if orders:
            assert got[("sales.aov", "", "")] == pytest.approx(revenue / orders, rel=1e-12)
        for (kpi, dim, member), v in got.items():
            if kpi == "sales.revenue" and dim == "rep_team":
                by_rep[member] = by_rep.get(member, 0.0) + v
        total += got[("sales.revenue", "", "")]
        smb = src.execute("""SELECT COALESCE(SUM(i.Total), 0) FROM Invoice i JOIN Customer c USING (CustomerId)
                             WHERE c.Company IS NULL AND i.InvoiceDate >= ? AND i.InvoiceDate < ?""", (lo, hi)).fetchone()[0]
        assert got.get(("sales.revenue", "segment", "smb"), 0.0) == pytest.approx(smb, abs=1e-9)
    # published reference numbers (shared/data/chinook/README.md)
    assert total == pytest.approx(2328.60, abs=0.005)
    assert by_rep["Jane Peacock"] == pytest.approx(833.04, abs=0.005)
    assert by_rep["Margaret Park"] == pytest.approx(775.40, abs=0.005)
    assert by_rep["Steve Johnson"] == pytest.approx(720.16, abs=0.005)
