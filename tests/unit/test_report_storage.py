"""Where rendered reports live (crm_kpis.delivery.reports_store): `reports_url`, through Airflow's
`ObjectStoragePath`, so that the task that sends (or the API server that serves the PDF) need not
be on the disk of the worker that rendered. The distributed run itself is
tests/servers/test_celery_workers.py."""

from __future__ import annotations

from datetime import date

import pytest

from crm_kpis.config.settings import ReportConfig
from crm_kpis.delivery.reports_store import REPORTS_URL_ENV, ReportsUrlError, reports_root, reports_url
from crm_kpis.periods import ReportPeriod

REPORT = ReportConfig("monthly_executive", "Monthly KPI report", "monthly", to=("ceo@example.com",))
OCT = ReportPeriod("monthly", date(2026, 10, 1), "UTC")


def _config(tmp_path, monkeypatch, body: str) -> None:
    path = tmp_path / "reports.yaml"
    path.write_text("timezone: UTC\nreports: {}\n" + body)
    monkeypatch.setenv("CRM_KPIS_CONFIG", str(path))


def test_the_default_is_the_local_folder_of_the_home(tmp_path, monkeypatch):
    monkeypatch.delenv(REPORTS_URL_ENV, raising=False)
    monkeypatch.setenv("CRM_KPIS_HOME", str(tmp_path / "home"))
    _config(tmp_path, monkeypatch, "")
    assert reports_url() == f"file://{tmp_path}/home/reports"
    assert reports_root().protocol == "file"


def test_the_environment_wins_over_the_file(tmp_path, monkeypatch):
    _config(tmp_path, monkeypatch, "reports_url: s3://from-the-file/reports/\nreports_conn_id: aws_reports\n")
    monkeypatch.delenv(REPORTS_URL_ENV, raising=False)
    assert reports_url() == "s3://from-the-file/reports"  # trailing slash dropped
    monkeypatch.setenv(REPORTS_URL_ENV, f"file://{tmp_path}/store")
    assert reports_url() == f"file://{tmp_path}/store"


def test_a_plain_absolute_path_is_a_local_folder_and_a_relative_one_is_refused(tmp_path, monkeypatch):
    _config(tmp_path, monkeypatch, "")
    monkeypatch.setenv(REPORTS_URL_ENV, str(tmp_path / "store"))
    assert str(reports_root()) == f"file://{tmp_path}/store"
    monkeypatch.setenv(REPORTS_URL_ENV, "reports/here")
    with pytest.raises(ReportsUrlError, match=r"must be a URL such as file:///srv/reports or s3://bucket/reports"):
        reports_url()


def test_a_second_worker_reads_what_the_first_wrote_through_the_shared_store(tmp_path, monkeypatch):
    """Two homes, one store: the files are found by report and period, whoever asks; without a
    shared store each home has its own folder and the second worker finds nothing."""
    from crm_kpis.delivery.reports_store import report_files

    _config(tmp_path, monkeypatch, "")
    monkeypatch.setenv(REPORTS_URL_ENV, (tmp_path / "store").as_uri())
    monkeypatch.setenv("CRM_KPIS_HOME", str(tmp_path / "worker1"))
    written = report_files(REPORT, OCT)
    written["pdf"].parent.mkdir(parents=True, exist_ok=True)
    written["pdf"].write_bytes(b"%PDF-1.7 rendered on worker1")
    written["subject"].write_text("Monthly KPI report · October 2026", encoding="utf-8")
    monkeypatch.setenv("CRM_KPIS_HOME", str(tmp_path / "worker2"))
    read = report_files(REPORT, OCT)
    assert read["pdf"].read_bytes() == b"%PDF-1.7 rendered on worker1"
    assert read["subject"].read_text(encoding="utf-8") == "Monthly KPI report · October 2026"
    assert str(read["pdf"]) == f"{(tmp_path / 'store').as_uri()}/monthly_executive/2026-10.pdf"

    monkeypatch.delenv(REPORTS_URL_ENV)  # each worker's own folder: the coupling the store removes
    assert not report_files(REPORT, OCT)["pdf"].exists()
