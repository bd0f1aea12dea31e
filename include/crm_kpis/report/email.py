"""The report email: MIME message, delivery through SMTP or the outbox, and the delivery log.

Why a delivery log: a retried task or a re-run of a period must not email executives the same
report twice. Before sending, the log is asked whether this report for this period went out;
only a run that asks to resend sends again. The Message-ID is derived from report and period,
so a mail client that sees the same message twice can fold it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlalchemy import Engine, and_, insert, select

from crm_kpis.config import ReportConfig, outbox_dir
from crm_kpis.history import report_deliveries
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import airflow_connection

log = logging.getLogger(__name__)

SMTP_CONN_ID = "smtp_default"
DEFAULT_FROM = "KPI reports <kpi-reports@example.com>"
#: Common gateways refuse messages over 10–25 MB; base64 adds a third. Warn well below that.
ATTACHMENT_WARN_BYTES = 7 * 1024 * 1024


class DeliveryError(RuntimeError):
    """The report could not be delivered; nothing was recorded as sent."""


@dataclass(frozen=True)
class Delivery:
    status: str  # sent, skipped
    transport: str  # smtp, outbox, none
    recipients: tuple[str, ...]
    message_id: str
    subject: str
    location: str
    attachment_bytes: int

    def as_dict(self) -> dict[str, object]:
        return {**self.__dict__, "recipients": list(self.recipients)}


def attachment_name(report: ReportConfig, period: ReportPeriod) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", report.title.lower()).strip("-")
    return f"{slug}-{period.key}.pdf"


def build_message(
    report: ReportConfig, period: ReportPeriod, subject: str, text: str, html: str, pdf: Path,
    from_email: str, sent_at: datetime, resend_count: int = 0,
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = from_email
    msg["To"] = ", ".join(report.to)
    if report.cc:
        msg["Cc"] = ", ".join(report.cc)
    if report.reply_to:
        msg["Reply-To"] = report.reply_to
    msg["Date"] = format_datetime(sent_at.replace(tzinfo=UTC))
    idstring = f"{report.report_id}.{period.key}" + (f".resend{resend_count}" if resend_count else "")
    msg["Message-ID"] = make_msgid(idstring=idstring, domain="crm-kpis.local")
    msg["X-CRM-KPIs-Report"] = f"{report.report_id} {period.key}"
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                       filename=attachment_name(report, period))
    return msg


def previous_deliveries(engine: Engine, report: ReportConfig, period: ReportPeriod) -> int:
    with engine.connect() as conn:
        rows = conn.execute(select(report_deliveries.c.id).where(and_(
            report_deliveries.c.report_id == report.report_id,
            report_deliveries.c.grain == period.grain,
            report_deliveries.c.period_start == period.start_date,
        ))).all()
    return len(rows)


def _send_smtp(msg: EmailMessage, recipients: list[str]) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as hook:
        # The hook builds its own MIME (HTML only); ours adds the plain-text part, so we send it
        # through the client the hook opened (with its TLS, auth and retry settings).
        client = hook._smtp_client  # noqa: SLF001 - the hook offers no public send-this-message call
        if client is None:
            raise DeliveryError("SMTP connection could not be opened")
        refused = client.send_message(msg, to_addrs=recipients)
    if refused:
        raise DeliveryError(f"SMTP server refused recipients: {refused}")


def _from_email(smtp_conn: object | None) -> str | None:
    """The sender named in the SMTP connection's extras, if any."""
    extra = getattr(smtp_conn, "extra_dejson", None) or {}
    return extra.get("from_email")


def deliver(
    engine: Engine, report: ReportConfig, period: ReportPeriod, run_id: str, subject: str, text: str,
    html: str, pdf: Path, resend: bool = False, sent_at: datetime | None = None,
) -> Delivery:
    """Send the report once per period (or again when `resend`), and record that it went out."""
    sent_at = sent_at or datetime.now(UTC).replace(tzinfo=None)
    earlier = previous_deliveries(engine, report, period)
    recipients = [*report.to, *report.cc, *report.bcc]
    if earlier and not resend:
        log.info("%s for %s was already delivered %d time(s); not sending again (set resend to send)",
                 report.report_id, period, earlier)
        return Delivery("skipped", "none", tuple(recipients), "", subject, "", pdf.stat().st_size)
    if not recipients:
        raise DeliveryError(f"report {report.report_id} has no recipients in the reports configuration")
    size = pdf.stat().st_size
    if size > ATTACHMENT_WARN_BYTES:
        log.warning("attachment is %.1f MB; some mail gateways refuse messages this large", size / 2**20)
    smtp_conn = airflow_connection(SMTP_CONN_ID)  # looked up once: None means the outbox
    from_email = report.from_email or _from_email(smtp_conn) or DEFAULT_FROM
    msg = build_message(report, period, subject, text, html, pdf, from_email, sent_at, earlier)
    if smtp_conn is not None:
        transport = "smtp"
        _send_smtp(msg, recipients)
        location = f"smtp via connection {SMTP_CONN_ID}"
    else:
        transport = "outbox"
        outbox = outbox_dir()
        outbox.mkdir(parents=True, exist_ok=True)
        target = outbox / f"{report.report_id}-{period.key}" \
            f"{'-resend' + str(earlier) if earlier else ''}.eml"
        target.write_bytes(msg.as_bytes())
        location = str(target)
    with engine.begin() as conn:
        conn.execute(insert(report_deliveries).values(
            report_id=report.report_id, grain=period.grain, period_start=period.start_date, run_id=run_id,
            transport=transport, recipients=", ".join(recipients), subject=subject,
            message_id=str(msg["Message-ID"]), attachment_bytes=size, sent_at=sent_at,
        ))
    log.info("delivered %s for %s by %s to %d recipients (%s, %d bytes attached)", report.report_id, period,
             transport, len(recipients), location, size)
    return Delivery("sent", transport, tuple(recipients), str(msg["Message-ID"]), subject, location, size)
