"""Deadline Alerts: ops are told when a scheduled period's report is late, however it went wrong.

Airflow's Deadline Alerts (3.1+) create a deadline when a run is created and fire its callback when
the run has not *succeeded* by then: a run that failed, hangs, or sits queued and never starts all
miss it (Airflow removes a deadline only when its run succeeds). The reference is the run's period
end, not its logical date, so "6 hours after the day" is 06:00 the next day and "24 hours after the
month" is the 2nd, whatever the month's length or a DST change.

Only scheduled runs get a deadline: a backfill or a manual re-run of an old period is past its
deadline the moment it is created, and alerting on it would page ops for work an analyst asked for.
A scheduler that is down creates no run and so no deadline; that needs monitoring outside Airflow.

The reference class is registered by `plugins/crm_kpis_timetable_plugin.py` (Airflow finds custom
references through plugins). The callback runs in the triggerer (`AsyncCallback`), not the executor:
Airflow 3.3 gives an executor callback a workload token that the Execution API refuses connections
to ("Access denied for connection 'smtp_default' by Execution API"), so with `smtp_default` stored
in Airflow's database, the usual way, the deadline alert could never be emailed. The triggerer
reads connections as triggers do, from the database as from a secrets backend or the environment.
"""

from __future__ import annotations

import asyncio
import html
import logging
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import AsyncCallback, BaseDeadlineReference, DeadlineAlert

log = logging.getLogger(__name__)


class PeriodEndDeadline(BaseDeadlineReference):
    """The end of a scheduled run's period (its data interval end); no deadline for other runs."""

    required_kwargs = {"dag_id", "run_id"}

    def _evaluate_with(self, *, session: Any, dag_id: str, run_id: str, **kwargs: Any) -> datetime | None:
        from airflow.models import DagRun  # the scheduler's side: core imports only here
        from sqlalchemy import select

        row = session.execute(
            select(DagRun.data_interval_end, DagRun.run_type).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        ).one_or_none()
        if row is None or row.data_interval_end is None:
            return None
        return row.data_interval_end if str(getattr(row.run_type, "value", row.run_type)) == "scheduled" else None


def delivery_deadline(report_id: str, hours: float, to: tuple[str, ...],
                      chat: tuple[tuple[str, str], ...] = ()) -> DeadlineAlert | None:
    """The DAG's deadline: delivered `hours` after the period's end, else `report_overdue` alerts `to`.

    None when the DAG file is parsed for one run (a worker, `airflow dags test`: Airflow's parsing
    context names the DAG): the scheduler evaluates the deadline from the DAG processor's parse, and
    Airflow 3.3.2's `dag.test()` crashes at the end of a run of a DAG with a deadline.
    """
    from airflow.sdk import get_parsing_context

    if get_parsing_context().dag_id:
        return None
    return DeadlineAlert(
        reference=PeriodEndDeadline(),
        interval=timedelta(hours=hours),
        callback=AsyncCallback("crm_kpis.orchestration.deadlines.report_overdue_in_triggerer",
                               kwargs={"to": list(to), "report_id": report_id, "hours": hours,
                                       "chat": [list(c) for c in chat]}),
        name=f"{report_id} delivered {hours:g} h after the period",
    )


def describe_run(dag_run: dict[str, Any]) -> str:
    """What became of the run, in the words ops need to act on it."""
    state = dag_run.get("state")
    if state == "failed":
        return f"the run failed (ended {dag_run.get('end_date') or 'at an unknown time'})"
    if state == "running":
        return f"the run is still running, since {dag_run.get('start_date')}: it hangs or is slow"
    if state == "queued" or not dag_run.get("start_date"):
        return f"the run was queued at {dag_run.get('queued_at') or 'an unknown time'} and never started " \
               "(no free worker, a full pool, or the executor is down)"
    return f"the run is {state}"


def overdue_message(context: dict[str, Any], report_id: str, hours: float) -> tuple[str, str]:
    """(subject, HTML body) of the deadline alert, from the context Airflow gives a deadline callback."""
    from crm_kpis.config.settings import ui_base_url

    dag_run = context.get("dag_run") or {}
    deadline = (context.get("deadline") or {}).get("deadline_time")
    dag_id, run_id = dag_run.get("dag_id", "?"), dag_run.get("dag_run_id", "?")
    start = str(dag_run.get("data_interval_start") or "")[:10] or "an unknown period"
    link = f"{ui_base_url()}/dags/{dag_id}/runs/{run_id}"
    subject = f"[CRM KPIs] {report_id} for {start} not delivered by its deadline ({hours:g} h after the period)"
    body = (
        f"<p>The report <b>{html.escape(report_id)}</b> for the period starting <b>{html.escape(start)}</b> "
        f"({html.escape(str(dag_run.get('data_interval_start')))} to {html.escape(str(dag_run.get('data_interval_end')))}, "
        f"end exclusive) was not delivered by {html.escape(str(deadline))}.</p>"
        f"<p>What happened: <b>{html.escape(describe_run(dag_run))}</b>.</p>"
        f"<p>Run: {html.escape(run_id)} of {html.escape(dag_id)}: <a href=\"{html.escape(link)}\">{html.escape(link)}</a></p>"
        "<p>Executives have not received this period's report. Once the run succeeds (clear the failed "
        "tasks, or trigger the period again), the report is sent once.</p>"
    )
    return subject, body


def report_overdue(context: dict[str, Any], to: list[str], report_id: str, hours: float,
                   chat: list[list[str]] | None = None) -> None:
    """Deadline callback: the deadline alert to the outbox, the log, the alert chat channels and
    `smtp_default` (crm_kpis.orchestration.notifiers)."""
    from crm_kpis.orchestration.notifiers import AlertNotifier

    subject, body = overdue_message(context, report_id, hours)
    dag_run = context.get("dag_run") or {}
    name = f"deadline-{dag_run.get('dag_id', 'dag')}-{dag_run.get('dag_run_id', 'run')}"
    # notify(), not the notifier's __call__: the text is final, and Jinja must not read braces a run
    # id might contain
    AlertNotifier(to=to, subject=subject, html_content=body, outbox_name=name,
                  chat=[(c[0], c[1]) for c in chat or ()]).notify(context)


async def report_overdue_in_triggerer(context: dict[str, Any], to: list[str], report_id: str, hours: float,
                                      chat: list[list[str]] | None = None) -> None:
    """The deadline callback as the triggerer runs it: `report_overdue` in a thread, since the
    notifier's SMTP and webhook calls block and the triggerer's event loop serves other triggers."""
    await asyncio.to_thread(report_overdue, context, to, report_id, hours, chat)
