"""The report email: MIME message, delivery through SMTP or the outbox, and the delivery log.

Why a delivery log: a retried task or a re-run of a period must not email executives the same
report twice. Each recipient's intent is recorded before the send and its outcome after it
(delivery/intents.py); only a run that asks to resend starts a new delivery. The Message-ID is
derived from report, period and delivery, so every copy of one delivery carries the same one.
"""

from __future__ import annotations

import logging
import re
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import TYPE_CHECKING, Any

from markupsafe import escape
from sqlalchemy import Engine, insert

from crm_kpis.config.settings import ReportConfig
from crm_kpis.delivery.intents import (
    REFUSED,
    SENDING,
    SENT,
    UNKNOWN,
    DeliveryError,
    DeliveryKey,
    DeliveryRefused,
    Outcome,
    claim,
    ensure_intents,
    held_error,
    latest_attempt,
    record,
    smtp_transaction,
    states,
    unknown_error,
)
from crm_kpis.history.store import report_deliveries
from crm_kpis.paths import outbox_dir
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import airflow_connection

if TYPE_CHECKING:
    from crm_kpis.delivery.reports_store import ReportFile

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
DEFAULT_FROM = "KPI reports <kpi-reports@example.com>"
#: Common gateways refuse messages over 10–25 MB; base64 adds a third. Warn well below that.
ATTACHMENT_WARN_BYTES = 7 * 1024 * 1024


@dataclass(frozen=True)
class Delivery:
    status: str  # sent, skipped
    transport: str  # smtp, outbox, none
    recipients: tuple[str, ...]  # those who have the report from this delivery
    message_id: str
    subject: str
    location: str
    attachment_bytes: int
    attempt: int = 0
    #: the edition: "" the company-wide report, else the variant's id
    variant: str = ""
    #: recipients of this delivery refused for good or whose outcome cannot be known, with why
    problems: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "recipients": list(self.recipients)}


def mine(rows: dict[str, dict[str, Any]], recipients: list[str]) -> dict[str, dict[str, Any]]:
    """The email recipients' rows of a delivery (its chat posts share the key, as `slack:<conn>`,
    and say their own outcomes)."""
    return {r: row for r, row in rows.items() if r in recipients}


def attachment_name(report: ReportConfig, period: ReportPeriod) -> str:
    """`monthly-kpi-report-2026-10.pdf`; a variant's edition names its member:
    `monthly-kpi-report-enterprise-customer-segment-2026-10.pdf`."""
    slug = re.sub(r"[^a-z0-9]+", "-", report.edition_title.lower()).strip("-")
    return f"{slug}-{period.key}.pdf"


#: The variant name under which test sends are recorded: their own deliveries, never the report's
#: (a variant's edition: "test.<variant id>"; variant ids have no dot).
TEST_VARIANT = "test"


def delivery_variant(report: ReportConfig, test: bool) -> str:
    if not test:
        return report.edition_id
    return f"{TEST_VARIANT}.{report.edition_id}" if report.edition_id else TEST_VARIANT
TEST_SUBJECT = "[TEST] "


def mark_as_test(subject: str, text: str, html: str, test_to: str, run_id: str) -> tuple[str, str, str]:
    """A test send says so where the reader looks first: the subject and the top of the body."""
    note = (f"TEST SEND to {test_to} only (run {run_id}): not the report's delivery; its recipients got "
            "nothing and will get the report as usual.")
    banner = (f'<div style="border:2px solid #8a5d00;background:#fff8e5;color:#1a1a1a;padding:8px 12px;'
              f'margin:0 0 12px;font:14px sans-serif"><b>TEST SEND</b> to {escape(test_to)} only (run '
              f'{escape(run_id)}): not the report\'s delivery; its recipients got nothing and will get the '
              "report as usual.</div>")
    at = re.search(r"<body[^>]*>", html)
    html = html[:at.end()] + banner + html[at.end():] if at else banner + html
    return TEST_SUBJECT + subject, f"{note}\n\n{text}", html


def check_test_address(test_to: str) -> str:
    """The one address a test goes to: refused (for good) unless it is a single plain address."""
    name, address = parseaddr(test_to.strip())
    if not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+", address or "") or "," in test_to:
        raise DeliveryRefused(f"test_to must be one email address such as me@example.com, not {test_to!r}")
    return address


def build_message(
    report: ReportConfig, period: ReportPeriod, subject: str, text: str, html: str, pdf: bytes | None,
    from_email: str, sent_at: datetime, resend_count: int = 0, message_id: str | None = None,
    to: list[str] | None = None,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = from_email
    msg["To"] = ", ".join(to if to is not None else report.to)
    if report.cc and to is None:
        msg["Cc"] = ", ".join(report.cc)
    if report.reply_to:
        msg["Reply-To"] = report.reply_to
    msg["Date"] = format_datetime(sent_at.replace(tzinfo=UTC))
    msg["Message-ID"] = message_id or DeliveryKey(report.report_id, period.grain, period.start_date, "",
                                                  resend_count).message_id(period.key)
    msg["X-CRM-KPIs-Report"] = f"{report.report_id} {period.key}" + (f" {report.edition_id}" if report.edition_id else "")
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if pdf is not None:  # a KPI alert has no attachment
        msg.add_attachment(pdf, maintype="application", subtype="pdf",
                           filename=attachment_name(report, period))
    return msg


def _from_email(smtp_conn: object | None) -> str | None:
    """The sender named in the SMTP connection's extras, if any."""
    extra = getattr(smtp_conn, "extra_dejson", None) or {}
    return extra.get("from_email")


def delivery_attempt(engine: Engine, report: ReportConfig, period: ReportPeriod, run_instance: str, resend: bool,
             variant: str = "") -> int:
    """Which delivery this run works on: the first (0), or with `resend` a new one once per DAG run
    (`run_instance`: its id and creation time; a retry of the run's task continues the delivery it
    started instead of starting another, which is what keeps a crash from sending twice)."""
    latest = latest_attempt(engine, report.report_id, period.grain, period.start_date, variant)
    if latest is None:
        return 0
    attempt, created_by = latest
    return attempt + 1 if resend and created_by != run_instance else attempt


def send_through_smtp(msg: EmailMessage, from_addr: str, recipients: list[str],
                      conn_id: str = SMTP_CONN_ID) -> Outcome:
    """Send our own MIME message (a text part and an HTML part) through the Airflow SMTP connection."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    try:
        hook = SmtpHook(smtp_conn_id=conn_id).__enter__()
    except Exception as exc:  # the server is down or refuses the connection: nobody got it, retry
        return Outcome(pending={r: f"cannot connect: {exc!r}" for r in recipients})
    try:
        # The hook builds its own MIME (HTML only); ours adds the plain-text part, so we drive the
        # client the hook opened (its TLS, auth and timeout settings) one SMTP step at a time.
        client = hook._smtp_client  # noqa: SLF001 - the hook offers no public send-this-message call
        if client is None:
            return Outcome(pending={r: "SMTP connection could not be opened" for r in recipients})
        return smtp_transaction(client, msg, from_addr, recipients)
    finally:
        with suppress(Exception):
            hook.__exit__(None, None, None)


def _summary(current: dict[str, dict[str, Any]]) -> str:
    by_state: dict[str, list[str]] = {}
    for recipient, row in sorted(current.items()):
        by_state.setdefault(row["state"], []).append(recipient)
    return "; ".join(f"{state}: {', '.join(rs)}" for state, rs in sorted(by_state.items()))


def deliver(
    engine: Engine, report: ReportConfig, period: ReportPeriod, run_id: str, subject: str, text: str,
    html: str, pdf: ReportFile | None, resend: bool = False, sent_at: datetime | None = None, run_instance: str | None = None,
    test_to: str | None = None,
) -> Delivery:
    """Send the report once per period and recipient (again when `resend`), exactly once (delivery.py).

    `run_instance` identifies the DAG run across its tasks' retries (default: the run id).
    `test_to`: send to that one address only, marked as a test, as a delivery of its own (variant
    "test", one per DAG run, exactly once like any other) that is not the report's: the report's
    recipients get nothing, `report_deliveries` does not list it, and the real delivery is unchanged.
    """
    run_instance = run_instance or run_id
    sent_at = sent_at or datetime.now(UTC).replace(tzinfo=None)
    variant = delivery_variant(report, test_to is not None)
    if test_to is not None:
        recipients = [check_test_address(test_to)]
        subject, text, html = mark_as_test(subject, text, html, recipients[0], run_id)
        attempt = delivery_attempt(engine, report, period, run_instance, True, variant)  # a new test per DAG run
    else:
        recipients = list(dict.fromkeys([*report.to, *report.cc, *report.bcc]))
        if not recipients:
            raise DeliveryError(f"report {report.report_id} has no recipients in the reports configuration")
        attempt = delivery_attempt(engine, report, period, run_instance, resend, variant)
    key = DeliveryKey(report.report_id, period.grain, period.start_date, variant, attempt)
    message_id = key.message_id(period.key)
    content = pdf.read_bytes() if pdf is not None else None  # read once: it may be in object storage
    size = len(content) if content is not None else 0
    ensure_intents(engine, key, recipients, message_id, run_id, run_instance)
    token, claimed = claim(engine, key, recipients, run_id)
    what = (f"{report.report_id}" + (f" variant {report.edition_id}" if report.edition_id else "") + f" for {period}"
            + (" (test)" if test_to is not None else ""))
    if not claimed:
        current = mine(states(engine, key), recipients)
        unknown = {r: str(row["detail"]) for r, row in current.items() if row["state"] == UNKNOWN}
        if unknown:  # whichever run finds it says it: the run that met it may have died
            raise unknown_error(what, message_id, unknown)
        if held := {r: row for r, row in current.items() if row["state"] == SENDING}:
            raise held_error(what, message_id, held)
        log.info("%s (delivery %d): nothing left to send (%s); set resend to send again",
                 what, attempt, _summary(current))
        have = tuple(r for r, row in current.items() if row["state"] == SENT)
        # refusals an earlier try of this same run met (a later run of the period is not told again)
        problems = {r: f"{row['state']}: {row['detail']}" for r, row in current.items()
                    if row["state"] == REFUSED and row["run_id"] == run_id}
        return Delivery("skipped", "none", have, message_id, subject, "", size, attempt, report.edition_id, problems)
    if size > ATTACHMENT_WARN_BYTES:
        log.warning("attachment is %.1f MB; some mail gateways refuse messages this large", size / 2**20)
    smtp_conn = airflow_connection(SMTP_CONN_ID)  # looked up once: None means the outbox
    from_email = report.from_email or _from_email(smtp_conn) or DEFAULT_FROM
    msg = build_message(report, period, subject, text, html, content, from_email, sent_at, attempt, message_id,
                        to=recipients if test_to is not None else None)
    if smtp_conn is not None:
        transport, location = "smtp", f"smtp via connection {SMTP_CONN_ID}"
        outcome = send_through_smtp(msg, parseaddr(from_email)[1] or from_email, claimed)
    else:
        transport = "outbox"
        outbox = outbox_dir()
        outbox.mkdir(parents=True, exist_ok=True)
        suffix = f"-test{attempt}" if test_to is not None else (f"-resend{attempt}" if attempt else "")
        edition = f".{report.edition_id}" if report.edition_id else ""
        target = outbox / f"{report.report_id}{edition}-{period.key}{suffix}.eml"
        target.write_bytes(msg.as_bytes())
        location = str(target)
        outcome = Outcome(sent=list(claimed))

    def log_delivery(conn: Any, sent: list[str]) -> None:
        if test_to is not None:
            return  # a test is not a delivery of the report: its intents alone record it
        conn.execute(insert(report_deliveries).values(
            report_id=report.report_id, variant=report.edition_id, grain=period.grain,
            period_start=period.start_date, run_id=run_id,
            transport=transport, recipients=", ".join(sent), subject=subject, message_id=message_id,
            attachment_bytes=size, sent_at=sent_at))

    record(engine, key, token, outcome, transport, log_delivery)
    for recipient, answer in {**outcome.refused, **outcome.unknown, **outcome.pending}.items():
        log.warning("%s: %s: %s", what, recipient, answer)
    # the delivery as it stands now: logged, and what another sender left unknown or holds is said too
    after = mine(states(engine, key), recipients)
    log.info("%s (delivery %d, %s) by %s: sent to %d of %d claimed recipients (%s); now %s",
             what, attempt, message_id, transport, len(outcome.sent), len(claimed), location, _summary(after))
    if outcome.pending:
        raise DeliveryError(f"{what}: not yet delivered to "
                            f"{', '.join(f'{r} ({a})' for r, a in outcome.pending.items())}; a retry sends to "
                            f"them only (sent: {', '.join(outcome.sent) or 'nobody'})")
    unknown = {**{r: str(row["detail"]) for r, row in after.items() if row["state"] == UNKNOWN and r not in claimed},
               **outcome.unknown}
    if unknown:
        raise unknown_error(what, message_id, unknown, outcome.sent)
    if outcome.refused:
        raise DeliveryRefused(f"{what} (Message-ID {message_id}): sent to {', '.join(outcome.sent) or 'nobody'}; "
                              + "; ".join(f"{r} refused: {a}" for r, a in outcome.refused.items()))
    if held := {r: row for r, row in after.items() if row["state"] == SENDING}:
        raise held_error(what, message_id, held)
    return Delivery("sent", transport, tuple(outcome.sent), message_id, subject, location, size, attempt,
                    report.edition_id)
