"""The quality gate on real staged data: a period whose load has not arrived is stopped before
anything is published, and an impossible value fails without retries."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from crm_kpis.history.store import read_history, read_run
from crm_kpis.orchestration import tasks
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

AREAS = ("marketing", "sales", "operations")


def interval(period: ReportPeriod):
    return (datetime.combine(period.start_date, datetime.min.time(), UTC),
            datetime.combine(period.end_date, datetime.min.time(), UTC))


def test_a_day_whose_load_has_not_arrived_is_not_published(demo_sources):
    # the demo data ends on 31 October: 1 November's newest record is a day old
    day = ReportPeriod.parse("daily", "2026-11-01")
    start, end = interval(day)
    for area in AREAS:
        tasks.compute_and_stage(area, "daily", start, end, "stale-run")
    with pytest.raises(tasks.QualityGateFailed, match="load looks unfinished"):
        tasks.check_quality("daily", start, end, "stale-run")
    assert read_run(engine_for(WAREHOUSE_CONN_ID), day) is None
    assert read_history(engine_for(WAREHOUSE_CONN_ID), "daily", [day.start_date]).empty


def test_a_complete_day_passes_and_its_warnings_are_published(demo_sources):
    day = ReportPeriod.parse("daily", "2026-10-30")
    start, end = interval(day)
    for area in AREAS:
        tasks.compute_and_stage(area, "daily", start, end, "good-run")
    result = tasks.check_quality("daily", start, end, "good-run")
    assert result["period"] == "2026-10-30"
    tasks.publish("daily", start, end, "good-run", result["warnings"] + ["volume: test warning"])
    assert read_run(engine_for(WAREHOUSE_CONN_ID), day)["warnings"][-1] == "volume: test warning"


def test_an_impossible_value_fails_without_retries(demo_sources, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from crm_kpis.kpis.base import REGISTRY, Measure

    day = ReportPeriod.parse("daily", "2026-10-29")
    start, end = interval(day)
    broken = REGISTRY["operations.csat"]
    monkeypatch.setitem(REGISTRY, "operations.csat", replace(broken, compute=lambda x: [Measure(1.5)]))
    for area in AREAS:
        tasks.compute_and_stage(area, "daily", start, end, "bad-run")
    with pytest.raises(AirflowFailException, match=r"operations.csat = 1.5 is outside \[0.0, 1.0\]"):
        tasks.check_quality("daily", start, end, "bad-run")
