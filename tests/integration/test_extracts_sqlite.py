"""The SQL extracts on a real SQLite database: period bounds, bad rows, and an independent check."""

import sqlite3
from datetime import date

import pytest
from sqlalchemy import text

from crm_kpis.compute import compute_area
from crm_kpis.paths import SQL_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import CRM_CONN_ID, HELPDESK_CONN_ID, engine_for
from crm_kpis.sources.loading import load_extracts
from crm_kpis.sources.reading import read_query
from crm_kpis.sources.sql_files import run_script

OCTOBER = ReportPeriod.parse("monthly", "2026-10")


@pytest.fixture()
def tiny_crm(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'crm.db'}")
    run_script(engine, SQL_DIR / "schema" / "sqlite" / "crm.sql")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO customers VALUES (1, '2025-01-01 00:00:00', 'smb', 'US', 'email', NULL, NULL, NULL)"))
        for order_id, ts, amount in [
            (1, "2026-09-30 23:59:59", 1.0),   # before start: out
            (2, "2026-10-01 00:00:00", 10.0),  # exactly start: in
            (3, "2026-10-15 12:00:00.5", 20.0),  # fractional seconds: in
            (4, "2026-10-31 23:59:59", 40.0),  # last second: in
            (5, "2026-11-01 00:00:00", 80.0),  # exactly end: out
            (6, "2026-10-20 00:00:00", -5.0),  # negative amount: excluded and counted
        ]:
            conn.execute(text("INSERT INTO orders VALUES (:i, 1, :t, 'completed', :a, NULL, NULL)"),
                         {"i": order_id, "t": ts, "a": amount})
        for rid, survey, score in [(1, "nps", 10), (2, "nps", 11), (3, "csat", 0), (4, "csat", 5), (5, "weird", 3)]:
            conn.execute(text("INSERT INTO survey_responses VALUES (:i, 1, :s, :v, '2026-10-05 10:00:00', NULL, NULL)"),
                         {"i": rid, "s": survey, "v": score})
    return engine


def test_half_open_period_in_sql(tiny_crm):
    frame = read_query(tiny_crm, "crm/orders.sql", OCTOBER.sql_params())
    assert sorted(frame["order_id"]) == [2, 3, 4, 6]


def test_berlin_period_bounds_in_sql(tiny_crm):
    # October in Berlin is [30 Sep 22:00 UTC, 31 Oct 23:00 UTC): order 1 (30 Sep 23:59:59 UTC) is in,
    # order 4 (31 Oct 23:59:59 UTC = 1 Nov 00:59:59 CET) and 5 are out
    berlin = ReportPeriod("monthly", date(2026, 10, 1), "Europe/Berlin")
    frame = read_query(tiny_crm, "crm/orders.sql", berlin.sql_params())
    assert sorted(frame["order_id"]) == [1, 2, 3, 6]


def test_bad_rows_are_excluded_and_counted(tiny_crm, monkeypatch):
    monkeypatch.setattr("crm_kpis.sources.loading.engine_for", lambda conn_id: tiny_crm)
    loaded = load_extracts({"orders", "survey_responses"}, OCTOBER)
    assert loaded.rows_read == {"orders": 4, "survey_responses": 5}
    assert loaded.rejected == {
        "orders": {"negative_or_missing_total_amount": 1},
        # the unknown survey kind is outside the contract's allowed values; NPS 11 and CSAT 0 out of scale
        "survey_responses": {"unknown_survey_value": 1, "score_out_of_scale": 2},
    }
    assert sorted(loaded.frames["orders"]["order_id"]) == [2, 3, 4]
    assert sorted(loaded.frames["survey_responses"]["response_id"]) == [1, 4]


def _sql(db, query, params=()):
    with sqlite3.connect(db) as conn:
        return conn.execute(query, params).fetchone()[0]


def test_kpis_match_plain_sql_on_demo_data(demo_sources):
    """An independent computation in plain SQL of a few KPIs, against the pipeline's values."""
    crm, helpdesk = demo_sources / "crm.db", demo_sources / "helpdesk.db"
    b = ("2026-10-01 00:00:00", "2026-11-01 00:00:00")
    sales = {(v.kpi_id, v.dimension, v.member): v.value for v in compute_area("sales", OCTOBER).values}
    ops = {(v.kpi_id, v.dimension, v.member): v.value for v in compute_area("operations", OCTOBER).values}
    revenue = _sql(crm, "SELECT SUM(total_amount) FROM orders WHERE status='completed' AND ordered_at >= ? AND ordered_at < ?", b)
    orders = _sql(crm, "SELECT COUNT(*) FROM orders WHERE status='completed' AND ordered_at >= ? AND ordered_at < ?", b)
    assert sales[("sales.revenue", "", "")] == pytest.approx(revenue, rel=1e-12)
    assert sales[("sales.orders", "", "")] == orders
    assert sales[("sales.aov", "", "")] == pytest.approx(revenue / orders, rel=1e-12)
    smb = _sql(crm, "SELECT SUM(o.total_amount) FROM orders o JOIN customers c USING (customer_id) "
                    "WHERE c.segment='smb' AND o.status='completed' AND o.ordered_at >= ? AND o.ordered_at < ?", b)
    assert sales[("sales.revenue", "segment", "smb")] == pytest.approx(smb, rel=1e-12)
    active_start = _sql(crm, "SELECT COUNT(*) FROM customers WHERE created_at < ? AND (churned_at IS NULL OR churned_at >= ?)",
                        (b[0], b[0]))
    churned = _sql(crm, "SELECT COUNT(*) FROM customers WHERE churned_at >= ? AND churned_at < ?", b)
    assert sales[("sales.churn_rate", "", "")] == pytest.approx(churned / active_start, rel=1e-12)
    won = _sql(crm, "SELECT COUNT(*) FROM opportunities WHERE outcome='won' AND closed_at >= ? AND closed_at < ?", b)
    closed = _sql(crm, "SELECT COUNT(*) FROM opportunities WHERE closed_at >= ? AND closed_at < ?", b)
    assert sales[("sales.win_rate", "", "")] == pytest.approx(won / closed, rel=1e-12)
    created = _sql(helpdesk, "SELECT COUNT(*) FROM tickets WHERE created_at >= ? AND created_at < ?", b)
    assert ops[("operations.tickets_created", "", "")] == created
    sla = _sql(helpdesk, """
        SELECT AVG(CASE WHEN (julianday(t.first_response_at) - julianday(t.created_at)) * 1440 <= p.first_response_minutes
                         AND (julianday(t.resolved_at) - julianday(t.created_at)) * 1440 <= p.resolution_minutes
                        THEN 1.0 ELSE 0.0 END)
        FROM tickets t JOIN sla_policies p USING (priority)
        WHERE t.resolved_at >= ? AND t.resolved_at < ?""", b)
    assert ops[("operations.sla_compliance_rate", "", "")] == pytest.approx(sla, abs=1e-9)


def test_every_area_computes_on_demo_data(demo_sources):
    for grain, key in (("monthly", "2026-10"), ("daily", "2026-10-15")):
        period = ReportPeriod.parse(grain, key)
        for area in ("marketing", "sales", "operations"):
            result = compute_area(area, period)
            company = {v.kpi_id: v.value for v in result.values if v.dimension == ""}
            assert len(company) == result.summary()["kpis"] > 10
            # the demo data supports a value for every KPI of a month (n/a would hide a broken query)
            if grain == "monthly":
                assert all(v is not None for v in company.values()), {k for k, v in company.items() if v is None}


def test_connections_fall_back_to_the_embedded_default(test_home):
    assert str(engine_for(CRM_CONN_ID).url.database).startswith(str(test_home))
    assert str(engine_for(HELPDESK_CONN_ID).url.database).endswith("helpdesk.db")


def test_reading_extracts_at_once_gives_what_reading_them_one_by_one_gives(demo_sources, monkeypatch):
    """Extracts of a task are read at once (the connection's `parallel_reads`) and checked in their
    order as they arrive: the frames, counts and excluded keys cannot depend on which read ended first."""
    import json

    from crm_kpis.sources.extracts import EXTRACTS

    def loaded(parallel: int):
        for conn, name in (("CRM_DB", "crm.db"), ("HELPDESK_DB", "helpdesk.db")):
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn}", json.dumps(
                {"conn_type": "sqlite", "host": str(demo_sources / name), "extra": {"parallel_reads": parallel}}))
        return load_extracts(set(EXTRACTS), OCTOBER)

    one, many = loaded(1), loaded(6)
    assert one.rows_read == many.rows_read and sum(one.rows_read.values()) > 10_000
    assert (one.rejected, one.excluded, one.extremes, one.repeats) == (many.rejected, many.excluded, many.extremes,
                                                                        many.repeats)
    assert one.frames.keys() == many.frames.keys()
    for name, frame in one.frames.items():
        assert frame.equals(many.frames[name]), name
