"""Where rendered reports live: Airflow's `ObjectStoragePath` at a configurable base, `reports_url`.

Why not a local folder: the render task writes the PDF, the HTML and the email bodies; the send
task, its retries and the UI's PDF link read them back. With Celery workers on several hosts (or
pods) these run on different machines, and a folder on the disk of the worker that rendered is not
there for the worker that sends. Object storage is shared by every worker and the API server.

`reports_url` is read from the environment (`CRM_KPIS_REPORTS_URL`, as a deployment sets it for
all of its containers) or else from `reports.yaml`; the default is the local folder
`file://<CRM_KPIS_HOME>/reports`, right for one machine. `s3://bucket/prefix` or `gs://…` work
with that provider installed, reached through the Airflow connection named by
`CRM_KPIS_REPORTS_CONN_ID` (or `reports_conn_id` in reports.yaml).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from crm_kpis.config.settings import ReportConfig, load_settings
from crm_kpis.paths import var_dir
from crm_kpis.periods import ReportPeriod

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

REPORTS_URL_ENV = "CRM_KPIS_REPORTS_URL"
REPORTS_CONN_ENV = "CRM_KPIS_REPORTS_CONN_ID"


class ReportFile(Protocol):
    """What the send task needs of a rendered file: a local `Path` or an `ObjectStoragePath`."""

    name: str

    def read_bytes(self) -> bytes: ...


class ReportsUrlError(ValueError):
    """`reports_url` is not a URL the product can write to."""


def reports_url() -> str:
    """The base URL of the rendered reports (environment first, then reports.yaml, then the local default)."""
    url = (os.environ.get(REPORTS_URL_ENV) or load_settings().reports_url or "").strip()
    if not url:
        return (var_dir() / "reports").as_uri()
    if url.startswith("/"):  # a plain absolute path is a local folder
        return url.rstrip("/") or "/"
    if "://" not in url:
        raise ReportsUrlError(f"reports_url {url!r} must be a URL such as file:///srv/reports or "
                              "s3://bucket/reports (or an absolute path)")
    return url.rstrip("/")


def reports_root() -> ObjectStoragePath:
    """The reports' base as an `ObjectStoragePath` (Airflow resolves the filesystem and its connection)."""
    from airflow.sdk import ObjectStoragePath  # at run time only: not at the DAGs' parse

    url = reports_url()
    conn_id = os.environ.get(REPORTS_CONN_ENV) or load_settings().reports_conn_id
    if url.startswith("/"):
        return ObjectStoragePath(f"file://{url}", conn_id=conn_id)
    return ObjectStoragePath(url, conn_id=conn_id)


def where(path: ObjectStoragePath) -> str:
    """How logs and task results name a rendered file: a local path as a path (pdftotext, a file
    manager and `ls` take it), anything else as its URL (s3://bucket/…)."""
    return path.path if path.protocol == "file" else str(path)



def report_files(report: ReportConfig, period: ReportPeriod) -> dict[str, ObjectStoragePath]:
    """Where the render task writes a period's report (or a variant's edition of it) and the send
    task reads it back: `<reports_url>/monthly_executive/2026-11.pdf`, `…/2026-11.segment-enterprise.pdf`.
    Object storage (crm_kpis.delivery.reports_store), so that the two tasks may run on different workers."""
    folder = reports_root() / report.report_id
    stem = f"{period.key}.{report.edition_id}" if report.edition_id else period.key
    return {kind: folder / f"{stem}.{kind}"
            for kind in ("html", "pdf", "email.html", "email.txt", "subject", "message.json")}
