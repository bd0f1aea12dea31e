"""Exactly-once delivery: an intent per recipient before the send, the server's answer after it.

Why: a report sent twice, or sent and logged as not sent, is what users of scheduled BI reports
complain of most. Seen here before this module: a server refusing one recipient made the task
raise after the others had the mail, and its retries gave them four copies while the log said
none; a warehouse outage or a killed worker between the send and the log insert re-sent it; two
runs of one month at once both sent.

The rule, per (report, period, variant, attempt, recipient):

1. the intent is written first (`pending`), with the message's deterministic Message-ID;
2. a sender claims the recipients it will send to with one conditional UPDATE each
   (`pending` → `sending`, with its own token): two runs at once cannot claim the same recipient;
3. one SMTP transaction goes to the claimed recipients, step by step, so that the outcome is known
   per recipient and per step: a recipient refused at RCPT (5xx) is `refused` and never retried; a
   temporary refusal (4xx) or a connection lost before DATA puts it back to `pending` for a retry;
   the server's 250 after DATA makes the accepted ones `sent`. A connection lost *during* DATA is
   ambiguous (the server may have kept the message): those recipients become `unknown` and are not
   sent again; the alert gives the Message-ID to look up in the server's log. At most once, and the
   log says exactly which recipients got it, which were refused, and which cannot be known;
4. the outcome is written with retries (a short warehouse outage must not lose a 250). A claim
   left in `sending` by a worker that died is never re-sent: it is `unknown` at once when the
   claim is the same run's (an earlier try of the task, which Airflow never runs beside a later
   one), else after `STALE_CLAIM` (another run may still be sending).

An `unknown` outcome is never settled quietly: every send that meets one fails for good
(`DeliveryUnknown`) and says who, which Message-ID, and how to send again deliberately (`resend`),
so the failure alert tells a person, whichever run found it.
"""

from __future__ import annotations

import logging
import smtplib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any, TypeVar

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from crm_kpis.history.store import delivery_intents

log = logging.getLogger(__name__)

PENDING, SENDING, SENT, REFUSED, UNKNOWN = "pending", "sending", "sent", "refused", "unknown"
TERMINAL = (SENT, REFUSED, UNKNOWN)
#: A claim older than this was left by a worker that died mid-send (SMTP timeouts are far shorter).
STALE_CLAIM = timedelta(minutes=15)
#: How long the outcome of a send is retried against the warehouse before the task gives up.
OUTCOME_WRITE_TRIES = 6

T = TypeVar("T")


class DeliveryError(RuntimeError):
    """The report could not be delivered to every recipient yet; a retry sends to the pending ones."""


class DeliveryRefused(RuntimeError):
    """The server refused some recipients for good (5xx); no retry will change that."""


class DeliveryUnknown(DeliveryRefused):
    """Whether some recipients got the message cannot be known (the connection was lost during DATA,
    or the sender stopped while sending): never re-sent automatically, a person decides."""


def unknown_error(what: str, message_id: str, unknown: dict[str, str], sent: list[str] | None = None,
                  look: str = "Look the Message-ID up in the mail server's log") -> DeliveryUnknown:
    """The error for recipients whose outcome is unknown (it is what the failure alert says): report
    and period (`what`), who, the Message-ID, why, and how to send again deliberately."""
    by_why: dict[str, list[str]] = {}
    for recipient, why in unknown.items():
        by_why.setdefault(why, []).append(recipient)
    details = "; ".join(f"{', '.join(who)}: {why}" for why, who in by_why.items())
    got = f" Sent by this try: {', '.join(sent)}." if sent else ""
    return DeliveryUnknown(
        f"{what} (Message-ID {message_id}): the outcome is unknown for {', '.join(unknown)} ({details}).{got} "
        f"Nothing is sent to them again automatically. {look}; if it did not "
        "arrive, trigger the period again with the run parameter resend=true (a new delivery: every "
        "recipient of the edition gets a copy).")


def held_error(what: str, message_id: str, held: dict[str, dict[str, Any]]) -> DeliveryError:
    """The (retried) error for recipients another run is sending to right now."""
    by = "; ".join(f"{r} by run {row['run_id']} since {row['updated_at']:%Y-%m-%d %H:%M:%S} UTC" for r, row in held.items())
    return DeliveryError(f"{what} (Message-ID {message_id}): being sent by another run ({by}); a retry waits for "
                         f"its outcome (a claim older than {int(STALE_CLAIM.total_seconds() // 60)} min is taken "
                         "for lost and its outcome is unknown)")


@dataclass(frozen=True)
class DeliveryKey:
    report_id: str
    grain: str
    period_start: date
    variant: str
    attempt: int

    @property
    def where(self) -> Any:
        c = delivery_intents.c
        return and_(c.report_id == self.report_id, c.grain == self.grain, c.period_start == self.period_start,
                    c.variant == self.variant, c.attempt == self.attempt)

    def message_id(self, period_key: str) -> str:
        """Deterministic: the same delivery always carries the same Message-ID, whoever sends it."""
        variant = self.variant or "all"
        return f"<{self.report_id}.{period_key}.{variant}.{self.attempt}@crm-kpis.local>"


@dataclass
class Outcome:
    sent: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)  # recipient -> the server's answer
    pending: dict[str, str] = field(default_factory=dict)  # to retry: recipient -> why
    unknown: dict[str, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def with_retries(write: Callable[[], T], what: str, tries: int = OUTCOME_WRITE_TRIES) -> T:
    """A warehouse write retried with back-off (1, 2, 4 … s): an outcome must not be lost to a blip."""
    for attempt in range(tries):
        try:
            return write()
        except OperationalError as exc:
            if attempt == tries - 1:
                raise
            log.warning("%s failed (%s); trying again in %d s", what, str(exc).splitlines()[0], 2 ** attempt)
            time.sleep(2 ** attempt)
    raise AssertionError("unreachable")


def latest_attempt(engine: Engine, report_id: str, grain: str, period_start: date, variant: str) -> tuple[int, str] | None:
    """The newest attempt for a report's period and the run that created it, if any."""
    c = delivery_intents.c
    with engine.connect() as conn:
        row = conn.execute(select(c.attempt, c.created_by).where(and_(
            c.report_id == report_id, c.grain == grain, c.period_start == period_start, c.variant == variant))
            .order_by(c.attempt.desc()).limit(1)).first()
    return None if row is None else (int(row.attempt), str(row.created_by))


def ensure_intents(engine: Engine, key: DeliveryKey, recipients: list[str], message_id: str, run_id: str,
                   created_by: str, channel: str = "email") -> None:
    """Write the pending intent of every recipient not yet recorded (concurrent writers: one wins).

    `created_by` is the DAG run instance that starts this delivery (see email._attempt).
    """
    c = delivery_intents.c
    for recipient in recipients:
        try:
            with engine.begin() as conn:
                exists = conn.execute(select(func.count()).select_from(delivery_intents)
                                      .where(and_(key.where, c.recipient == recipient))).scalar_one()
                if not exists:
                    conn.execute(insert(delivery_intents).values(
                        report_id=key.report_id, grain=key.grain, period_start=key.period_start,
                        variant=key.variant, attempt=key.attempt, recipient=recipient, channel=channel,
                        message_id=message_id, state=PENDING, created_by=created_by, run_id=run_id,
                        updated_at=_now()))
        except IntegrityError:  # another run wrote it between our check and our insert
            pass


def states(engine: Engine, key: DeliveryKey) -> dict[str, dict[str, Any]]:
    c = delivery_intents.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.recipient, c.state, c.detail, c.claim, c.updated_at, c.transport, c.run_id)
                            .where(key.where)).mappings().all()
    return {r["recipient"]: dict(r) for r in rows}


def claim(engine: Engine, key: DeliveryKey, recipients: list[str], run_id: str) -> tuple[str, list[str]]:
    """Claim the pending recipients (one conditional UPDATE each). A claim its sender cannot still
    hold becomes unknown: this run's own (an earlier try that stopped mid-send), or a stale one."""
    token = uuid.uuid4().hex
    c = delivery_intents.c
    claimed = []
    now = _now()
    with engine.begin() as conn:
        conn.execute(update(delivery_intents).where(and_(
            key.where, c.state == SENDING, or_(c.run_id == run_id, c.updated_at < now - STALE_CLAIM))).values(
            state=UNKNOWN, updated_at=now,
            detail="the sender stopped while sending (worker killed or warehouse unreachable): look the "
                   "Message-ID up in the mail server's log"))
    for recipient in recipients:
        with engine.begin() as conn:
            done = conn.execute(update(delivery_intents).where(and_(
                key.where, c.recipient == recipient, c.state == PENDING)).values(
                state=SENDING, claim=token, run_id=run_id, updated_at=now)).rowcount
        if done == 1:
            claimed.append(recipient)
    return token, claimed


def record(engine: Engine, key: DeliveryKey, token: str, outcome: Outcome, transport: str,
           on_sent: Callable[[Any, list[str]], None] | None = None, sent_detail: str = "250 accepted") -> None:
    """Write each claimed recipient's outcome (only rows this sender claimed), with retries."""
    c = delivery_intents.c

    def write() -> None:
        now = _now()
        with engine.begin() as conn:
            for state, answers in ((SENT, {r: sent_detail for r in outcome.sent}), (REFUSED, outcome.refused),
                                   (UNKNOWN, outcome.unknown), (PENDING, outcome.pending)):
                for recipient, detail in answers.items():
                    conn.execute(update(delivery_intents).where(and_(
                        key.where, c.recipient == recipient, c.claim == token, c.state == SENDING)).values(
                        state=state, detail=detail[:2000], updated_at=now,
                        transport=transport if state in (SENT, UNKNOWN) else None,
                        claim=None if state == PENDING else token))
            if on_sent and outcome.sent:
                on_sent(conn, outcome.sent)

    with_retries(write, "recording the delivery outcome")


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else str(message)
    return f"{code} {text}".strip()


def smtp_transaction(client: smtplib.SMTP, msg: EmailMessage, from_addr: str, recipients: list[str]) -> Outcome:
    """One SMTP transaction, step by step, so that each recipient's outcome is known.

    MAIL and RCPT answers are per recipient (5xx refused for good, 4xx to retry); the final answer
    to DATA decides the accepted ones; a connection lost during DATA leaves them unknown.
    """
    out = Outcome()
    try:
        client.ehlo_or_helo_if_needed()  # sendmail() does this itself; the single steps do not
        code, answer = client.mail(from_addr)
        if code >= 400:
            target = out.refused if code >= 500 else out.pending
            target.update({r: f"MAIL FROM: {_answer(code, answer)}" for r in recipients})
            client.rset()
            return out
        accepted = []
        for recipient in recipients:
            code, answer = client.rcpt(recipient)
            if code in (250, 251):
                accepted.append(recipient)
            elif code >= 500:
                out.refused[recipient] = _answer(code, answer)
            else:
                out.pending[recipient] = _answer(code, answer)
        if not accepted:
            client.rset()
            return out
    except (smtplib.SMTPException, OSError) as exc:  # lost before DATA: nobody got the message
        for r in recipients:
            if r not in out.refused:
                out.pending[r] = f"connection lost before DATA: {exc!r}"
        return out
    try:
        # CRLF line ends, as SMTP wants them (send_message() does this itself; data() does not)
        code, answer = client.data(msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")))
    except smtplib.SMTPDataError as exc:
        target = out.refused if exc.smtp_code >= 500 else out.pending
        target.update({r: f"DATA: {_answer(exc.smtp_code, exc.smtp_error)}" for r in accepted})
        return out
    except (TimeoutError, smtplib.SMTPException, OSError) as exc:
        out.unknown.update({r: f"connection lost during DATA ({exc!r}): the server may have kept the message"
                            for r in accepted})
        return out
    if code == 250:
        out.sent.extend(accepted)
    else:
        (out.refused if code >= 500 else out.pending).update({r: f"DATA: {_answer(code, answer)}" for r in accepted})
    return out
