"""Failure alerts: Airflow's SmtpNotifier, with the outbox, the log and chat as the paths that do not
depend on the mail server.

Why a subclass: an alert about a failing mail server went through that same server and never
arrived (a stalled server, a refused login, a connection the executor may not read), and without
an `smtp_default` connection the notifier raised inside the failure callback, so the failure was
reported nowhere but in a log line about the callback. Now every alert, in this order:

1. is written to `<outbox>/alerts/` (a file next to the reports, whatever is down);
2. is logged at ERROR with its subject and that file, so log-based monitoring sees it;
3. is posted to the alert chat channels (`alerts.slack`, `alerts.teams` in reports.yaml), through
   Airflow's hooks, when configured;
4. is emailed through `smtp_default` when it is set; a failure there is logged at ERROR, never
   raised (the alert already went out by 1-3).

One incident, one alert: the tasks of a run that fail for good with the same error (three compute
tasks losing one database) send one alert. The first claims the incident in the warehouse's
delivery log (`delivery_intents`, the same exactly-once record as the reports, keyed by DAG, run
and the error's first line with query files and numbers blanked); the others log that it was
already alerted. Where the warehouse cannot be reached, the alert is sent anyway: a duplicate is
better than a lost alert.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

from crm_kpis.paths import outbox_dir

log = logging.getLogger(__name__)


def plain_text(markup: str) -> str:
    """An alert's HTML as readable text (the text part of the email, the chat post): paragraphs
    and list items on their own lines, links written out."""
    text = re.sub(r'<a [^>]*href="([^"]*)"[^>]*>(.*?)</a>',
                  lambda m: m.group(2) if m.group(2) == m.group(1) else f"{m.group(2)} ({m.group(1)})", markup)
    text = re.sub(r"<li[^>]*>", "- ", text)
    text = re.sub(r"</(p|li|ul|pre|div)>|<br\s*/?>", "\n", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def incident_of(context: Any) -> str:
    """What makes two failures one incident: the error's type and first line, with the query file and
    numbers blanked (three compute tasks losing one database fail on different queries)."""
    exception = context.get("exception")
    if exception is None:
        return ""
    line = (str(exception).strip().splitlines() or [""])[0]
    line = re.sub(r"[\w./-]+\.sql\b", "<query>", line)
    return f"{type(exception).__name__}: {re.sub(r'[0-9]+', '#', line)}"


def already_alerted(context: Any) -> str | None:
    """Who already alerted this run's failure with the same error ("alerted by compute_sales (try 3)"),
    or None: alert now. The claim is the delivery log's (one conditional update: two tasks failing
    at once cannot both win); anything going wrong here is no reason to stay silent, so it alerts."""
    ti = context.get("ti") or context.get("task_instance")
    run_id, incident, start = context.get("run_id"), incident_of(context), context.get("data_interval_start")
    if ti is None or not run_id or not incident:
        return None
    try:
        import hashlib

        from crm_kpis.delivery.intents import DeliveryKey, Outcome, claim, ensure_intents, record, states
        from crm_kpis.history.store import ensure_schema
        from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for

        engine = engine_for(WAREHOUSE_CONN_ID)
        ensure_schema(engine)
        # within the hour: the tasks of one incident fail within seconds; a run cleared and failing
        # again later is news, and alerts again
        hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
        digest = hashlib.sha256(f"{ti.dag_id}|{run_id}|{incident}|{hour}".encode()).hexdigest()[:32]
        key = DeliveryKey(f"failure_alert.{ti.dag_id}"[:80], "run", start.date() if start else date(1970, 1, 1),
                          digest, 0)
        who = f"{ti.task_id} (try {getattr(ti, 'try_number', '?')})"
        ensure_intents(engine, key, ["alert"], f"<{digest}@crm-kpis.local>", str(run_id), who, channel="alert")
        token, claimed = claim(engine, key, ["alert"], str(run_id) + "|" + who)
        if claimed:
            record(engine, key, token, Outcome(sent=["alert"]), "alert", sent_detail=f"alerted by {who}")
            return None
        return str(states(engine, key)["alert"]["detail"] or "another task")
    except Exception as exc:  # the warehouse may be what failed
        log.warning("could not check whether this failure was already alerted (%s): alerting", exc)
        return None


def first_link(markup: str) -> str | None:
    found = re.search(r'href="([^"]+)"', markup)
    return html.unescape(found.group(1)) if found else None


class AlertNotifier(SmtpNotifier):
    """Write the alert to `<outbox>/alerts/`, log it at ERROR, post it to the alert chat channels,
    and email it through `smtp_default` when that is set.

    `outbox_name` names the outbox file when the context has no task instance (a deadline alert);
    `chat` is the alert channels, (channel, connection id) pairs: ("slack", "slack_ops").
    """

    def __init__(self, *args: Any, outbox_name: str | None = None, chat: Sequence[tuple[str, str]] = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox_name = outbox_name
        self.chat = tuple((str(channel), str(conn_id)) for channel, conn_id in chat)

    def notify(self, context: Any) -> None:
        # pandas and SQLAlchemy: not at parse time
        from crm_kpis.delivery.email import send_through_smtp
        from crm_kpis.delivery.intents import Outcome
        from crm_kpis.sources.connections import airflow_connection

        subject = self._subject()
        if (already := already_alerted(context)) is not None:
            log.error("%s (%s); not alerted again: the same failure of this run was %s", subject,
                      incident_of(context), already)
            return
        path = self.write_to_outbox(context)
        log.error("ALERT %s (to %s; a copy is in %s)", subject, ", ".join(self._recipients()), path)
        for channel, conn_id in self.chat:
            self._post(channel, conn_id, subject, context)
        try:
            smtp = airflow_connection(self.smtp_conn_id)
        except Exception as exc:  # e.g. a connection the process may not read (the Execution API's scope)
            log.error("the alert was not emailed: the %s connection cannot be read here (%s); it is in %s",
                      self.smtp_conn_id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__, path)
            return
        if smtp is None:
            log.warning("no %s connection: the alert was written to %s instead of being emailed",
                        self.smtp_conn_id, path)
            return
        # our own message, a readable text part beside the HTML (Airflow's SMTP hook sends HTML
        # only), through the connection the hook opens (its TLS, auth and timeout)
        msg = self._message(context)
        sender = self.from_email or (smtp.extra_dejson or {}).get("from_email") or msg["From"]
        msg.replace_header("From", sender)
        try:
            outcome = send_through_smtp(msg, sender, self._recipients(), self.smtp_conn_id)
        except Exception as exc:  # the mail server is what failed: the outbox, log and chat have it
            outcome = Outcome(pending={r: f"{type(exc).__name__}: {exc}" for r in self._recipients()})
        failed = {**outcome.refused, **outcome.pending, **outcome.unknown}
        if failed:
            log.error("the alert could not be emailed through %s (%s); it is in %s", self.smtp_conn_id,
                      "; ".join(f"{r}: {str(why).splitlines()[0] if str(why) else ''}" for r, why in failed.items()),
                      path)

    def _subject(self) -> str:
        return self.subject or "[CRM KPIs] a task failed"

    def _recipients(self) -> list[str]:
        return [self.to] if isinstance(self.to, str) else list(self.to)

    def _post(self, channel: str, conn_id: str, subject: str, context: Any) -> None:
        """Post the alert to one chat channel; a failure is logged, never raised (one path of several)."""
        from crm_kpis.delivery.chat import POSTERS
        from crm_kpis.report.messages import alert_payload

        ti = context.get("ti") or context.get("task_instance")
        link = getattr(ti, "log_url", None) or first_link(self.html_content or "") or ""
        body = plain_text(self.html_content or "")
        payload = alert_payload(channel, subject, subject, body[:2500], link,
                                button="Open the log" if getattr(ti, "log_url", None) else "Open")
        try:
            outcome = POSTERS[channel](conn_id, payload)
        except Exception as exc:
            log.error("the alert could not be posted to %s:%s (%s)", channel, conn_id, exc)
            return
        if not outcome.sent:
            answers = {**outcome.refused, **outcome.pending, **outcome.unknown}
            log.error("the alert could not be posted to %s:%s (%s)", channel, conn_id, "; ".join(answers.values()))

    def _message(self, context: Any) -> EmailMessage:
        """The alert as an email: the text part is the HTML's own words (plain_text), not a placeholder."""
        msg = EmailMessage()
        msg["Subject"] = self._subject()
        msg["From"] = self.from_email or "crm-kpis@localhost"
        msg["To"] = ", ".join(self._recipients())
        msg.set_content(plain_text(self.html_content or "") + "\n")
        msg.add_alternative(self.html_content or "", subtype="html")
        return msg

    def write_to_outbox(self, context: Any) -> Path:
        msg = self._message(context)
        ti = context.get("ti") or context.get("task_instance")
        name = self.outbox_name or "-".join(str(part) for part in (
            getattr(ti, "dag_id", "dag"), getattr(ti, "task_id", "task"), context.get("run_id") or "run",
            getattr(ti, "try_number", 0)))
        folder = outbox_dir() / "alerts"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (re.sub(r"[^A-Za-z0-9_.-]+", "_", name) + ".eml")
        path.write_bytes(bytes(msg))
        return path
