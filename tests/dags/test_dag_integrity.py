"""DAG integrity and policy: imports, ids, owner, tags, retries, docs, and the timetable's periods."""

import os
import subprocess
import sys
from datetime import UTC, date, datetime

import pendulum
import pytest

from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod

DAG_IDS = {"crm_kpis_daily", "crm_kpis_monthly"}


def core_timetable(dag):
    """The scheduler's timetable for a DAG (the SDK class only declares it)."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


@pytest.fixture(scope="module")
def bag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_DIR / "dags"))


def test_no_import_errors_and_expected_dags(bag):
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == DAG_IDS


@pytest.mark.parametrize("dag_id", sorted(DAG_IDS))
def test_policy(bag, dag_id):
    dag = bag.get_dag(dag_id)
    assert "kpi" in dag.tags and dag_id.split("_")[-1] in dag.tags
    assert dag.doc_md and "For which period" in dag.doc_md
    assert dag.catchup is False and dag.max_active_runs == 1
    assert set(dag.params.keys()) == {"deliver", "resend", "page_size", "test_to", "test_variant"}
    assert {t.task_id for t in dag.tasks} == {
        "compute_marketing", "compute_sales", "compute_operations", "check_quality", "publish_history",
        "edition.render_report", "edition.approve_report", "edition.send_report", "send_kpi_alerts",
    }
    for t in dag.tasks:
        assert t.owner == "data-team"
        callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        assert any(isinstance(c, SmtpNotifier) for c in callbacks), t.task_id
        assert t.retries >= 2, t.task_id
        assert t.retry_exponential_backoff
    assert dag.get_task("check_quality").upstream_task_ids == {"compute_marketing", "compute_sales", "compute_operations"}
    assert dag.get_task("publish_history").upstream_task_ids == {"check_quality"}
    # one mapped group per edition: each rendered, approved and sent on its own, after the history
    assert dag.get_task("edition.render_report").upstream_task_ids == {"publish_history"}
    assert dag.get_task("edition.approve_report").upstream_task_ids == {"edition.render_report"}
    assert dag.get_task("edition.send_report").upstream_task_ids == {"edition.approve_report"}
    # KPI alerts after every edition (a rejected variant is skipped, not failed), on the company's approval
    alerts = dag.get_task("send_kpi_alerts")
    assert alerts.upstream_task_ids == {"edition.send_report"} and alerts.trigger_rule == "none_failed"
    group = dag.task_group_dict["edition"]
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    from crm_kpis.config.settings import load_settings

    assert isinstance(group, MappedTaskGroup)
    editions = [e.edition_id for e in load_settings().report_for_grain(dag_id.split("_")[-1]).editions()]
    assert group._expand_input.value["edition_id"] == editions and editions[0] == ""  # 0: the company's


@pytest.mark.parametrize(("dag_id", "run_after", "start", "end"), [
    # a manual run at a period's start is that period's run, as the scheduler creates it
    ("crm_kpis_monthly", datetime(2026, 10, 1), datetime(2026, 10, 1), datetime(2026, 11, 1)),
    ("crm_kpis_daily", datetime(2026, 10, 5), datetime(2026, 10, 5), datetime(2026, 10, 6)),
    # at any other instant (the trigger form's default, now): the last complete period before it
    ("crm_kpis_monthly", datetime(2026, 11, 17, 9, 30), datetime(2026, 10, 1), datetime(2026, 11, 1)),
    ("crm_kpis_daily", datetime(2026, 10, 6, 8, 0), datetime(2026, 10, 5), datetime(2026, 10, 6)),
])
def test_data_interval_is_one_period(bag, dag_id, run_after, start, end):
    from crm_kpis.orchestration.timetable import PeriodTimetable

    dag = bag.get_dag(dag_id)
    assert isinstance(core_timetable(dag), PeriodTimetable)
    interval = core_timetable(dag).infer_manual_data_interval(run_after=pendulum.instance(run_after, tz="UTC"))
    assert (interval.start, interval.end) == (pendulum.instance(start, tz="UTC"), pendulum.instance(end, tz="UTC"))
    period = ReportPeriod.from_data_interval(dag_id.split("_")[-1], interval.start, interval.end, "UTC")
    assert period.start_date == start.date()


@pytest.mark.parametrize(("dag_id", "last", "expected"), [
    ("crm_kpis_daily", (datetime(2026, 10, 4), datetime(2026, 10, 5)), (datetime(2026, 10, 5), datetime(2026, 10, 6))),
    ("crm_kpis_monthly", (datetime(2026, 9, 1), datetime(2026, 10, 1)), (datetime(2026, 10, 1), datetime(2026, 11, 1))),
])
def test_scheduled_runs_are_consecutive_periods_keyed_by_their_start(bag, dag_id, last, expected):
    from airflow.timetables.base import DataInterval, TimeRestriction
    from airflow.utils.types import DagRunType

    utc = [pendulum.instance(d, tz="UTC") for d in (*last, *expected)]
    info = core_timetable(bag.get_dag(dag_id)).next_dagrun_info(
        last_automated_data_interval=DataInterval(utc[0], utc[1]),
        restriction=TimeRestriction(earliest=None, latest=None, catchup=True),
    )
    assert (info.data_interval.start, info.data_interval.end) == (utc[2], utc[3])
    assert info.logical_date == utc[2]  # backfill --from-date/--to-date name period starts
    assert info.run_after == utc[3]  # the run starts once the period has ended
    run_id = core_timetable(bag.get_dag(dag_id)).generate_run_id(
        run_type=DagRunType.SCHEDULED, run_after=info.run_after, data_interval=info.data_interval)
    assert run_id == f"scheduled__{'2026-10' if 'monthly' in dag_id else '2026-10-05'}"  # the run names its period


def test_berlin_timetable_gives_the_25_hour_day(monkeypatch, airflow_db):
    """In a non-UTC report timezone the schedule follows local midnight across the DST change."""
    monkeypatch.setenv("CRM_KPIS_TIMEZONE", "Europe/Berlin")
    from crm_kpis.orchestration.dag_factory import make_kpi_dag

    dag = make_kpi_dag("daily")
    interval = core_timetable(dag).infer_manual_data_interval(run_after=pendulum.datetime(2026, 10, 25, tz="Europe/Berlin"))
    assert interval.start == datetime(2026, 10, 24, 22, tzinfo=UTC)  # 25 Oct 00:00 CEST
    assert interval.end == datetime(2026, 10, 25, 23, tzinfo=UTC)  # 26 Oct 00:00 CET
    period = ReportPeriod.from_data_interval("daily", interval.start, interval.end, "Europe/Berlin")
    assert period.start_date == date(2026, 10, 25) and period.hours == 25


def test_parsing_a_dag_file_imports_nothing_heavy():
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]);"
        "heavy = [m for m in ('pandas', 'sqlalchemy.orm', 'weasyprint', 'crm_kpis.kpis') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    heavy_from_us = []
    for name in ("crm_kpis_daily.py", "crm_kpis_monthly.py"):
        out = subprocess.run([sys.executable, "-c", code, str(PROJECT_DIR / "dags" / name)],
                             capture_output=True, text=True, env=os.environ.copy(), check=True).stdout.strip()
        heavy_from_us += [m for m in out.split(",") if m in ("weasyprint", "crm_kpis.kpis")]
    assert heavy_from_us == []


@pytest.mark.parametrize(("dag_id", "hours"), [("crm_kpis_daily", 6), ("crm_kpis_monthly", 24)])
def test_the_scheduler_sees_a_delivery_deadline_after_the_periods_end(bag, dag_id, hours):
    """As the DAG processor parses (no parsing context): a deadline at the period's end + deliver_by_hours,
    which survives serialization (the plugin registers the custom reference for the scheduler)."""
    from datetime import timedelta

    from airflow.serialization.definitions.deadline import SerializedReferenceModels
    from airflow.serialization.serialized_objects import DagSerialization

    from crm_kpis.orchestration.deadlines import PeriodEndDeadline

    (alert,) = bag.get_dag(dag_id).deadline
    assert isinstance(alert.reference, PeriodEndDeadline) and alert.interval == timedelta(hours=hours)
    assert alert.callback.path == "crm_kpis.orchestration.deadlines.report_overdue_in_triggerer"
    assert type(alert.callback).__name__ == "AsyncCallback"  # the triggerer may read connections; the executor may not
    assert alert.callback.kwargs["to"] == ["data-ops@example.com"]
    serialized = DagSerialization.serialize_dag(bag.get_dag(dag_id))
    (encoded,) = serialized["deadline"]
    from airflow.serialization.decoders import decode_deadline_alert

    decoded = decode_deadline_alert(encoded)
    assert isinstance(decoded.reference, SerializedReferenceModels.SerializedCustomReference)
    assert isinstance(decoded.reference.inner_ref, PeriodEndDeadline)


def test_a_parse_for_one_run_carries_no_deadline(monkeypatch):
    """A worker or `airflow dags test` parses with Airflow's parsing context set: no deadline there."""
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "crm_kpis_daily")
    from crm_kpis.config.settings import load_settings
    from crm_kpis.orchestration.dag_factory import make_kpi_dag

    assert load_settings().report_for_grain("daily").deliver_by_hours == 6
    assert not make_kpi_dag("daily").deadline
