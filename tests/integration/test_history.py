"""The history store: a period is replaced in one transaction, re-runs give identical rows."""

import pytest
from sqlalchemy import func, select

from crm_kpis.compute import AreaResult
from crm_kpis.history.store import (
    PublishError,
    ensure_schema,
    kpi_history,
    publish_period,
    read_history,
    read_run,
    stage_area,
)
from crm_kpis.kpis.base import KpiValue
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import engine_for

AREAS = ("marketing", "sales", "operations")
OCT = ReportPeriod.parse("monthly", "2026-10")
SEP = ReportPeriod.parse("monthly", "2026-09")


@pytest.fixture()
def warehouse(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ensure_schema(engine)
    return engine


def stage_all(engine, run_id, period, revenue=100.0):
    for area in AREAS:
        values = [KpiValue(f"{area}.x", revenue, None, None), KpiValue(f"{area}.x", revenue / 2, None, None, "segment", "smb"),
                  KpiValue(f"{area}.r", None, 0.0, 0.0)]
        # the same duplicated order 17, read by an extract of each area: one source row excluded
        stage_area(engine, run_id, AreaResult(area, period, values, {"orders": 5}, {"orders": {"duplicate": 1}},
                                              excluded={"orders": {"duplicate": {"keys": {"17": 1}}}}))


def rows(engine, period):
    h = read_history(engine, period.grain, [period.start_date])
    cols = h[["kpi_id", "dimension", "member", "value", "numerator", "denominator"]]
    # NULL is read back as NaN; compare it as None (NaN != NaN)
    return sorted((tuple(None if v != v else v for v in r) for r in cols.itertuples(index=False, name=None)), key=str)


def count(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(kpi_history)).scalar_one()


def test_rerunning_a_period_replaces_its_rows(warehouse):
    stage_all(warehouse, "run1", OCT)
    first = publish_period(warehouse, OCT, "run1", AREAS)
    assert (first.kpis, first.rows_written, first.rows_replaced, first.rows_rejected) == (6, 9, 0, 1)
    before = rows(warehouse, OCT)
    stage_all(warehouse, "run2", OCT)
    second = publish_period(warehouse, OCT, "run2", AREAS)
    assert second.rows_replaced == 9
    assert rows(warehouse, OCT) == before
    assert count(warehouse) == 9
    assert read_run(warehouse, OCT)["run_id"] == "run2"
    # a zero-denominator KPI is stored as no value with its parts
    assert ("marketing.r", "", "", None, 0.0, 0.0) in before


def test_other_periods_are_untouched(warehouse):
    stage_all(warehouse, "sep", SEP, revenue=50.0)
    publish_period(warehouse, SEP, "sep", AREAS)
    sep_rows = rows(warehouse, SEP)
    stage_all(warehouse, "oct", OCT)
    publish_period(warehouse, OCT, "oct", AREAS)
    stage_all(warehouse, "oct2", OCT, revenue=70.0)
    publish_period(warehouse, OCT, "oct2", AREAS)
    assert rows(warehouse, SEP) == sep_rows
    assert count(warehouse) == 18


def test_incomplete_staging_leaves_history_unchanged(warehouse):
    stage_all(warehouse, "good", OCT)
    publish_period(warehouse, OCT, "good", AREAS)
    before = rows(warehouse, OCT)
    stage_area(warehouse, "partial", AreaResult("sales", OCT, [KpiValue("sales.x", 1.0, None, None)]))
    with pytest.raises(PublishError, match="no staged results"):
        publish_period(warehouse, OCT, "partial", AREAS)
    assert rows(warehouse, OCT) == before


def test_staging_for_another_period_is_refused(warehouse):
    stage_all(warehouse, "run", SEP)
    with pytest.raises(PublishError, match="not monthly 2026-10"):
        publish_period(warehouse, OCT, "run", AREAS)


def test_an_older_warehouse_gets_the_columns_added_since(tmp_path):
    from sqlalchemy import inspect, text

    engine = engine_for(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as conn:  # kpi_runs as first released, without `warnings`
        conn.execute(text("CREATE TABLE kpi_runs (grain VARCHAR(10), period_start DATE, timezone VARCHAR(64), "
                          "run_id VARCHAR(250), computed_at DATETIME, kpis INTEGER, values_written INTEGER, "
                          "rows_read TEXT, rows_rejected TEXT, latest_source_ts DATETIME, "
                          "PRIMARY KEY (grain, period_start))"))
    ensure_schema(engine)
    ensure_schema(engine)  # idempotent
    assert "warnings" in {c["name"] for c in inspect(engine).get_columns("kpi_runs")}
    stage_all(engine, "run", OCT)
    publish_period(engine, OCT, "run", AREAS, ["volume: low"])
    assert read_run(engine, OCT)["warnings"] == ["volume: low"]


def test_a_schema_created_meanwhile_by_another_task_is_checked_again(tmp_path, monkeypatch):
    """Three compute tasks create a new warehouse's tables at once; the one that loses the race
    between its check and its CREATE ("table kpi_runs already exists") checks again, and only a
    different error is raised. Driven here: the first try meets the error another task caused."""
    from sqlalchemy import inspect
    from sqlalchemy.exc import OperationalError

    from crm_kpis.history import store as h
    from crm_kpis.sources.connections import engine_for as engine_of

    engine = engine_of(f"sqlite:///{tmp_path / 'warehouse.db'}")
    real, calls = h._create_schema, []

    def racing(e):
        calls.append(1)
        if len(calls) == 1:
            real(e)  # the other task's CREATE went through first ...
            raise OperationalError("CREATE TABLE kpi_runs", {}, Exception("table kpi_runs already exists"))
        real(e)

    monkeypatch.setattr(h, "_create_schema", racing)
    h.ensure_schema(engine)
    assert len(calls) == 2 and "kpi_runs" in inspect(engine).get_table_names()
    monkeypatch.setattr(h, "_create_schema", lambda e: (_ for _ in ()).throw(
        OperationalError("CREATE", {}, Exception("disk I/O error"))))
    with pytest.raises(OperationalError, match="disk I/O error"):
        h.ensure_schema(engine)


def test_the_run_keeps_the_newest_record_and_the_stalest_sync_of_its_areas(warehouse):
    """The freshness check's measures, kept with the run: the newest record over the areas, and the
    stalest last sync of the sources that stamp theirs (an area reading none: no sync)."""
    from datetime import datetime

    from crm_kpis.history.store import read_run

    stamps = {"sales": (datetime(2026, 10, 30, 9), datetime(2026, 11, 1, 1)),
              "marketing": (datetime(2026, 10, 31, 22), None),
              "operations": (datetime(2026, 10, 29, 8), datetime(2026, 10, 31, 23, 30))}
    for area, (record, sync) in stamps.items():
        stage_area(warehouse, "run1", AreaResult(area, OCT, [KpiValue(f"{area}.x", 1.0, None, None)],
                                                 latest_source_ts=record, latest_sync_ts=sync))
    publish_period(warehouse, OCT, "run1", AREAS)
    run = read_run(warehouse, OCT)
    assert run["latest_source_ts"] == datetime(2026, 10, 31, 22)
    assert run["latest_sync_ts"] == datetime(2026, 10, 31, 23, 30)
