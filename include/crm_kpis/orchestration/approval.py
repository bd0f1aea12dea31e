"""Approval when in doubt: a person approves the period's report before anyone gets it.

Airflow 3's human-in-the-loop `ApprovalOperator` (standard provider) is the mechanism, once per
edition (the `edition` task group is mapped over the company-wide report and each variant): the
task writes the request (subject, body in Markdown, the edition's PDF link) and waits; an approver
answers in the UI (Required actions) or through the REST API (`PATCH
…/taskInstances/edition.approve_report/<map index>/hitlDetails`, 0 the company-wide report).
Approve lets that edition's `send_report` run; Reject skips it, so nothing of it is sent, and the
answer (who, when) stays in the task's log and its request. Unanswered after `timeout_hours`, the
configured `on_timeout` choice is taken by the scheduler.

When the report's `approval.when` does not ask for it (`never`, or `warnings` and the gate raised
none), or the run sends nothing to the recipients (a backfill, `deliver: no`, a test send), the task
approves at once and says why, so every run's graph shows the step. The period's KPI alerts wait
for every edition and follow the company-wide report's decision: a rejected report sends no
alerts either. A run inside
this process (`dag.test()`: the demo, the tests; local_airflow.run_in_process) has nobody to ask:
it approves at once too, with a warning that names what would have been asked.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

from crm_kpis.config.settings import ReportConfig

log = logging.getLogger(__name__)

#: set by local_airflow.run_in_process while a DAG runs in this process (nobody can answer there)
IN_PROCESS_ENV = "CRM_KPIS_IN_PROCESS_RUN"


class ReportApproval(ApprovalOperator):
    """The approval step between rendering and sending one edition of a report (the company-wide
    report, or a variant's): mapped with its edition's task group, so each is asked on its own."""

    #: the edition, resolved per map index of the `edition` task group (a templated field: Airflow
    #: renders the group's mapped argument into it at run time)
    template_fields = (*ApprovalOperator.template_fields, "edition_id")

    def __init__(self, *, grain: str, report: ReportConfig, edition_id: Any = None, **kwargs: Any) -> None:
        approval = report.approval
        super().__init__(
            subject=f"Send the {report.title}?",
            body="",
            defaults=[self.REJECT if approval.on_timeout == "reject" else self.APPROVE],
            response_timeout=timedelta(hours=approval.timeout_hours),
            **kwargs,
        )
        self.grain = grain
        self.edition_id = edition_id

    @classmethod
    def rejected(cls, decision: Any) -> bool:
        """Whether an approval's result (its XCom) says Reject; no result (not run) is no rejection."""
        return isinstance(decision, dict) and cls.REJECT in (decision.get("chosen_options") or ())

    @staticmethod
    def answered_by(decision: Any) -> str:
        """Who decided, as the approval's result has it ("by jane", "at its timeout", "by configuration")."""
        if not isinstance(decision, dict):
            return "no decision recorded"
        who = decision.get("responded_by_user") or decision.get("approved_by")
        if isinstance(who, dict):
            who = who.get("name") or who.get("id")
        return f"by {who}" if who else "at its timeout"

    def execute(self, context: Any) -> Any:
        from crm_kpis.orchestration.tasks import approval_request

        params = context.get("params") or {}
        run_type = getattr(context["dag_run"].run_type, "value", context["dag_run"].run_type)
        request = approval_request(self.grain, context["data_interval_start"], context["data_interval_end"],
                                   params.get("deliver", "auto"), str(run_type), params.get("test_to") or None,
                                   edition_id=self.edition_id)
        if not request["needed"]:
            log.info("approved without asking: %s", request["reason"])
            return {"chosen_options": [self.APPROVE], "approved_by": "configuration", "reason": request["reason"]}
        if os.environ.get(IN_PROCESS_ENV):
            log.warning("an in-process run cannot wait for a person: approved without asking, although %s "
                        "(the scheduler's runs ask)", request["reason"])
            return {"chosen_options": [self.APPROVE], "approved_by": "in-process run", "reason": request["reason"]}
        self.subject, self.body = request["subject"], request["body"]
        log.info("asking for approval: %s", request["reason"])
        return super().execute(context)
