"""Failure alerts: Airflow's SmtpNotifier, and the outbox when no mail server is configured.

Why a subclass: without an `smtp_default` connection the notifier raised a traceback inside the
failure callback, so the failure was reported nowhere but in a log line about the callback. Ops
without SMTP (the embedded default, a first deployment) still get the alert, as a file in the
outbox next to the reports, and the log says where it is.
"""

from __future__ import annotations

import logging
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from crm_kpis.paths import outbox_dir

log = logging.getLogger(__name__)


class AlertNotifier(SmtpNotifier):
    """Email the alert through `smtp_default`, or write it to `<outbox>/alerts/` when it is not set.

    `outbox_name` names the outbox file when the context has no task instance (a deadline alert).
    """

    def __init__(self, *args: Any, outbox_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox_name = outbox_name

    def notify(self, context: Any) -> None:
        from crm_kpis.sources.connections import airflow_connection  # pandas and SQLAlchemy: not at parse time

        if airflow_connection(self.smtp_conn_id) is not None:
            super().notify(context)
            return
        path = self.write_to_outbox(context)
        log.warning("no %s connection: the failure alert was written to %s instead of being emailed",
                    self.smtp_conn_id, path)

    def write_to_outbox(self, context: Any) -> Path:
        msg = EmailMessage()
        msg["Subject"] = self.subject or "[CRM KPIs] a task failed"
        msg["From"] = self.from_email or "crm-kpis@localhost"
        msg["To"] = ", ".join([self.to] if isinstance(self.to, str) else list(self.to))
        msg.set_content("This alert is HTML; open the .eml file in a mail client.")
        msg.add_alternative(self.html_content or "", subtype="html")
        ti = context.get("ti") or context.get("task_instance")
        name = self.outbox_name or "-".join(str(part) for part in (
            getattr(ti, "dag_id", "dag"), getattr(ti, "task_id", "task"), context.get("run_id") or "run",
            getattr(ti, "try_number", 0)))
        folder = outbox_dir() / "alerts"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".eml")
        path.write_bytes(bytes(msg))
        return path
