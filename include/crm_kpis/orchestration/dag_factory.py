"""The wiring of the daily and monthly KPI DAGs (Airflow 3 Task SDK).

Why one factory for both DAGs: they differ only in grain, schedule and recipients, and two copies
would drift. Nothing heavy is imported here: pandas, SQLAlchemy and WeasyPrint are imported inside
the task bodies, so parsing the DAG files stays cheap.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG, Asset, Param, dag, get_current_context, task, task_group

from crm_kpis.config.settings import dag_id_for, load_settings
from crm_kpis.orchestration.approval import ReportApproval
from crm_kpis.orchestration.deadlines import delivery_deadline
from crm_kpis.orchestration.timetable import PeriodTimetable

AREAS = ("marketing", "sales", "operations")
OWNER = "data-team"
#: Local midnight in the report timezone: each run's data interval is exactly one day or month.
CRONS = {"daily": "0 0 * * *", "monthly": "0 0 1 * *"}
#: The DAGs' start date, before any history: Airflow silently runs no task for a logical date
#: before it, so the configured `history_start` is enforced by the tasks instead, with a message.
START_DATE = (1970, 1, 1)

#: The period as the run names it; a run without a logical date (Airflow 3 allows one) has none.
_PERIOD = "{{ (data_interval_start | ds) if data_interval_start else 'a run without a period' }}"
ALERT_SUBJECT = "[CRM KPIs] {{ ti.dag_id }} failed at {{ ti.task_id }} for " + _PERIOD
ALERT_BODY = """
<p><b>{{ ti.dag_id }}</b> failed at task <b>{{ ti.task_id }}</b> (try {{ ti.try_number }}).</p>
<p>Period: {% if data_interval_start %}{{ data_interval_start }} to {{ data_interval_end }} (end exclusive){% else %}none:
the run has no logical date{% endif %}. Run: {{ run_id }}.</p>
<p>Error: <b>{{ (exception | string).strip().splitlines()[0] if exception else 'unknown' }}</b></p>
{% if exception and (exception | string).strip().splitlines() | length > 1 %}<pre style="white-space:pre-wrap">{{ (exception | string).strip().splitlines()[1:6] | join('\n') }}</pre>
<p>(the full error and its trace are in the log)</p>{% endif %}
<p>Log: <a href="{{ ti.log_url }}">{{ ti.log_url }}</a></p>
<p>Nothing after the failed task ran: a failure before <i>publish_history</i> left the history unchanged,
one before <i>send_report</i> emailed nobody.</p>
"""


#: the mapped task group of the report's editions: `edition.render_report`, `edition.approve_report`,
#: `edition.send_report`, one map index per edition (0 the company-wide report)
EDITION_GROUP = "edition"
APPROVE_TASK = "approve_report"


def edition_name(edition_id: str) -> str:
    """An edition as the grid names its mapped tasks: "company", or the variant's id."""
    return edition_id or "company"


def _approval_decision(map_index: int) -> Any:
    """What an edition's approval chose (its XCom; map index 0 the company-wide report), read by
    the tasks after it in this run."""
    return get_current_context()["ti"].xcom_pull(task_ids=f"{EDITION_GROUP}.{APPROVE_TASK}", map_indexes=map_index)


def history_asset(grain: str) -> Asset:
    """The grain's KPI history as an Airflow Asset: `publish_history` emits an event per published
    period (period and run in its extra), so a BI refresh or another DAG can be scheduled on it."""
    return Asset(name=f"kpi_history/{grain}", uri=f"crm-kpis://kpi_history/{grain}", group="kpi_history")


def failure_alert(to: tuple[str, ...], chat: tuple[tuple[str, str], ...] = ()) -> Any:
    """Airflow's own SMTP notifier, called when a task fails for good (not on a retry), with the
    outbox, an ERROR log line and the alert chat channels beside it (crm_kpis.orchestration.notifiers)."""
    from crm_kpis.orchestration.notifiers import AlertNotifier

    return AlertNotifier(to=list(to), subject=ALERT_SUBJECT, html_content=ALERT_BODY, chat=chat)


DOC = """
### CRM KPIs: {grain} report

**What it computes**: the {grain} marketing, sales and operations KPIs of
`shared/design/kpi-catalogue.md` ({n_hint}), company-wide and by breakdown (channel, customer
segment, sales team, ticket channel, support team).

**For which period**: exactly the run's data interval, one calendar {unit} in the report timezone
**{tz}** (`include/config/reports.yaml`). The run for {example} starts after that {unit} has ended.
Re-running a run recomputes the same period and gives the same numbers.

**Reads**: connections `crm_db` and `helpdesk_db` (SQL in `include/sql/`; SQLite files under
`var/data/` when the connections are not set).

**Checks**: each compute task first checks the source contract (`python -m crm_kpis.sources check`):
a source lacking a table or column is not read this run; its KPIs are n/a naming both, the gate
warns once and alerts once, and the report's `on_broken_source` holds it for approval (default),
sends it marked INCOMPLETE, or stops the run. Values that cannot be read as their type
are excluded and counted; a KPI whose input is not recorded is n/a, never 0. `check_quality` stops
the run before anything is written or sent when the newest source record is too old (the load has
not finished; retried with back-off), a key extract read far fewer rows than usual, a column is
mostly unreadable, or a value is impossible or implausible against its history (no retry). Softer
findings become warnings in the report.

**Writes**: `kpi_history` in connection `kpi_warehouse`; the period's rows are replaced in one
transaction by `publish_history`. Reports go to `var/reports/{report_id}/`.

**Emails**: report `{report_id}` to {to}. Through connection `smtp_default` when it is set,
otherwise written to `var/outbox/`. Sent once per period: a retry or re-run does not send again
unless the run sets `resend`. Backfill runs do not email unless `deliver` is `yes`.

**Alerts**: a task that fails for good emails {alerts} (connection `smtp_default`) with the error
and a link to its log; every alert is also written to `var/outbox/alerts/`, logged at ERROR and posted
to {alert_chat}, so an alert about the mail server itself still arrives. {deadline}

**Asset**: each published period emits an event of `{asset}` (extra: period, run, KPIs written), to
schedule a BI refresh or another DAG on.

**Params**: `deliver` (auto | yes | no), `resend` (send again although already sent),
`page_size` (A4 | Letter), `test_to` (one address: a test send, marked as such, to it only),
`test_variant` (with `test_to`: one edition only, `company` or a variant id).

**Variants**: {variants}.

**Editions**: the task group `edition` is mapped once per edition (the company-wide report, then
each variant), each rendered (`render_report`), approved (`approve_report`) and sent
(`send_report`) on its own; the grid names each map index after its edition.

**Approval** before sending (`approve_report`, per edition): {approval}.
"""


def _run_identity(run_id: str | None) -> tuple[str, str]:
    """(run type, run instance) of the running DAG run: the instance (id and creation time) is what
    keeps a task's retry on the delivery its first try started (delivery/email.delivery_attempt)."""
    dag_run = get_current_context()["dag_run"]
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    return str(run_type), f"{run_id}|{dag_run.run_after.isoformat()}"


def _skipped_if_said(result: dict[str, Any]) -> dict[str, Any]:
    """Airflow's skipped state, not a green success, when nothing was sent: the grid shows it."""
    if result.get("skip_reason"):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(result["skip_reason"])
    return result


def make_kpi_dag(grain: str) -> DAG:
    settings = load_settings()
    tz = settings.timezone
    report = settings.report_for_grain(grain)
    unit = "day" if grain == "daily" else "month"
    history = history_asset(grain)
    deadline = (delivery_deadline(report.report_id, report.deliver_by_hours, settings.alerts_to, settings.alerts_chat)
                if report.deliver_by_hours is not None and settings.alerted else None)

    @dag(
        dag_id=dag_id_for(grain),
        description=f"{grain.title()} CRM KPIs: compute, store history, render PDF, email {report.report_id}",
        schedule=PeriodTimetable(CRONS[grain], tz, grain),
        start_date=pendulum.datetime(*START_DATE, tz=tz),
        catchup=False,
        max_active_runs=1,
        deadline=deadline,
        tags=["kpi", "crm", grain],
        default_args={
            "owner": OWNER,
            "retries": 2,
            "retry_delay": timedelta(minutes=2),
            "retry_exponential_backoff": True,
            "max_retry_delay": timedelta(minutes=30),
            **({"on_failure_callback": failure_alert(settings.alerts_to, settings.alerts_chat)}
               if settings.alerted else {}),
        },
        params={
            "deliver": Param("auto", enum=["auto", "yes", "no"],
                             description="auto: email unless the run is a backfill; yes: always; no: never"),
            "resend": Param(False, type="boolean",
                            description="email again although this period's report was already sent"),
            "page_size": Param("A4", enum=["A4", "Letter"], description="PDF page size"),
            "test_to": Param("", type="string", maxLength=254,
                             description="a test send: only this address gets the report, marked as a test; "
                                         "not the report's delivery (its recipients get nothing)"),
            "test_variant": Param("", type="string", maxLength=80,
                                  description="with test_to: send only this edition (company, or a variant id; "
                                              "empty: the company-wide report and every variant)"),
        },
        doc_md=DOC.format(
            grain=grain, unit=unit, tz=tz, report_id=report.report_id, to=", ".join(report.to) or "nobody",
            variants="; ".join(f"{v.variant_id} ({v.label}) to {', '.join(v.to)}" for v in report.variants) or "none",
            approval={"never": "never asked", "warnings": "asked when the quality gate raised warnings",
                      "always": "asked for every run"}[report.approval.when]
            + (f" (unanswered after {report.approval.timeout_hours:g} h: {report.approval.on_timeout})"
               if report.approval.when != "never" else ""),
            example="2026-10-05" if grain == "daily" else "October 2026",
            n_hint="KPIs of grain D" if grain == "daily" else "KPIs of grains D and M",
            alerts=", ".join(settings.alerts_to) or "nobody (set alerts.to in reports.yaml)",
            alert_chat=", ".join(f"{c} connection {conn}" for c, conn in settings.alerts_chat)
            or "no chat channel (set alerts.slack or alerts.teams)",
            asset=history.name,
            deadline=(f"**Deadline**: a scheduled run's report not delivered {report.deliver_by_hours:g} h after "
                      f"its period's end (failed, hung or never started) alerts the same addresses."
                      if deadline else "No delivery deadline (set `deliver_by_hours` and `alerts.to`)."),
        ),
    )
    def kpi_dag() -> None:
        @task(doc_md="Extract this area's inputs for the period, check rows, compute its KPIs, stage them.")
        def compute(area: str, data_interval_start: Any = None, data_interval_end: Any = None,
                    run_id: str | None = None) -> dict[str, Any]:
            from crm_kpis.orchestration.tasks import compute_and_stage

            return compute_and_stage(area, grain, data_interval_start, data_interval_end, run_id)

        @task(doc_md="Quality gate: freshness, volume and value ranges of the staged period. A hard failure "
                     "stops the run before the history changes or anyone is emailed.")
        def check_quality(data_interval_start: Any = None, data_interval_end: Any = None,
                          run_id: str | None = None) -> dict[str, Any]:
            from crm_kpis.orchestration.tasks import check_quality as gate

            return gate(grain, data_interval_start, data_interval_end, run_id)

        @task(outlets=[history],
              doc_md=f"Replace the period's rows in kpi_history with this run's staged values, in one "
                     f"transaction; then emit an event of the Asset `{history.name}` (period and run in its extra).")
        def publish_history(gate_result: dict[str, Any], data_interval_start: Any = None,
                            data_interval_end: Any = None, run_id: str | None = None) -> dict[str, Any]:
            from crm_kpis.orchestration.tasks import asset_event_extra, publish

            result = publish(grain, data_interval_start, data_interval_end, run_id, gate_result.get("warnings"))
            get_current_context()["outlet_events"][history].extra = asset_event_extra(grain, data_interval_start,
                                                                                      run_id, result)
            return result

        @task(map_index_template="{{ edition }}",
              doc_md="Render this edition's PDF report and email bodies from the history (one mapped "
                     "task per edition: the company-wide report, then each variant's).")
        def render_report(edition_id: str, data_interval_start: Any = None, data_interval_end: Any = None,
                          params: dict[str, Any] | None = None) -> dict[str, Any]:
            from crm_kpis.orchestration.tasks import render_report as render

            get_current_context()["edition"] = edition_name(edition_id)  # the grid's name of the mapped task
            return render(grain, data_interval_start, data_interval_end, (params or {}).get("page_size", "A4"),
                          edition_id=edition_id)

        @task(retries=3, map_index_template="{{ edition }}",
              doc_md="Email this edition once per period (SMTP or the outbox) and post it to its chat "
                     "channels; log the delivery.")
        def send_report(edition_id: str, data_interval_start: Any = None, data_interval_end: Any = None,
                        run_id: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
            from crm_kpis.orchestration.tasks import send_report as send

            context = get_current_context()
            context["edition"] = edition_name(edition_id)
            # Reject skips nothing downstream of a mapped approval in Airflow 3.3.2 (docs/airflow-gaps.md):
            # the send reads its own edition's decision, so a rejected edition is never sent
            decision = _approval_decision(context["ti"].map_index)
            if ReportApproval.rejected(decision):
                return _skipped_if_said({"status": "rejected", "skip_reason": (
                    f"not sent: the {edition_name(edition_id)} edition was rejected at approval "
                    f"({ReportApproval.answered_by(decision)})")})
            params = params or {}
            run_type, run_instance = _run_identity(run_id)
            return _skipped_if_said(send(
                grain, data_interval_start, data_interval_end, run_id, deliver_param=params.get("deliver", "auto"),
                resend=bool(params.get("resend", False)), run_type=run_type, run_instance=run_instance,
                test_to=params.get("test_to") or None, test_variant=params.get("test_variant") or None,
                edition_id=edition_id))

        # after every edition, whatever a variant's approver chose (a rejected edition is skipped,
        # not failed); the company-wide report's own decision is the one that holds the alerts
        @task(retries=3, trigger_rule="none_failed",
              doc_md="KPI alerts (`kpi_alerts` in reports.yaml): each rule that fires for the period "
                     "is sent to its owners once, after the gate passed, the history was published and "
                     "the company-wide report was approved (a rejected report sends no alerts).")
        def send_kpi_alerts(data_interval_start: Any = None, data_interval_end: Any = None,
                            run_id: str | None = None, params: dict[str, Any] | None = None) -> dict[str, Any]:
            from crm_kpis.orchestration.tasks import send_kpi_alerts as alerts

            if ReportApproval.rejected(_approval_decision(0)):
                return _skipped_if_said({"status": "rejected", "skip_reason": (
                    "not sent: the company-wide report was rejected at approval, so are its KPI alerts")})
            run_type, run_instance = _run_identity(run_id)
            return _skipped_if_said(alerts(grain, data_interval_start, data_interval_end, run_id,
                                           deliver_param=(params or {}).get("deliver", "auto"), run_type=run_type,
                                           run_instance=run_instance))

        @task_group(group_id=EDITION_GROUP, tooltip="One edition of the report: rendered, approved and sent on its own")
        def edition(edition_id: str) -> None:
            approve = ReportApproval(
                task_id=APPROVE_TASK, grain=grain, report=report, edition_id=edition_id,
                map_index_template="{{ task.edition_id or 'company' }}",
                doc_md="Approval when in doubt (`approval` in reports.yaml): a person approves this edition "
                       "before it is sent, always or when the quality gate raised warnings; Reject sends "
                       "nothing of it. Otherwise approved at once, with the reason.")
            render_report(edition_id) >> approve >> send_report(edition_id)

        computed = [compute.override(task_id=f"compute_{area}")(area) for area in AREAS]
        checked = check_quality()
        computed >> checked
        published = publish_history(checked)
        # one mapped group per edition (the company-wide report, then each variant's), so an edition
        # is rendered, approved, retried and seen in the grid on its own; the list is reports.yaml's
        editions = edition.expand(edition_id=[e.edition_id for e in report.editions()])
        published >> editions >> send_kpi_alerts()

    return kpi_dag()
