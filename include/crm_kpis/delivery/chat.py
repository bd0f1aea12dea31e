"""Slack and Microsoft Teams: the report posted to a chat channel, exactly once per edition.

Through Airflow's own hooks, with the webhook URL (a secret) in an Airflow connection: Slack's
`SlackWebhookHook` (connection type `slackwebhook`, the URL or its token as the password) and, for
a Teams Workflows webhook (Teams has no Airflow provider), the HTTP provider's `HttpHook`
(connection type `http`, the whole Workflows URL as the host).

Exactly once, as for email (delivery/intents.py): the intent is recorded first, per (report, period,
edition, attempt) with the channel's connection as its recipient (`slack:slack_kpis`), claimed by
one sender, and its outcome written from the server's answer. A webhook has no idempotency key, so
the outcome decides what a retry may do: 2xx is sent; a connection refused (nothing reached the
server), 429 or 5xx is pending and retried; any other 4xx (a revoked webhook, a payload refused)
is refused for good; a timeout or a connection lost once the request was written is unknown and
never posted again (the server may have it). The hooks' own retries are off for that reason.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import Engine

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
    record,
    states,
    unknown_error,
)
from crm_kpis.periods import ReportPeriod

log = logging.getLogger(__name__)

#: seconds to wait for the chat service's answer (then the outcome is unknown, never re-posted)
TIMEOUT_S = 30


#: the longest Retry-After a post waits for in the task (a longer one is left to the task's retry)
RETRY_AFTER_MAX_S = 60.0


def _by_status(target: str, status: int, body: str) -> Outcome:
    answer = f"{status} {body.strip()[:300]}".strip()
    if 200 <= status < 300:
        return Outcome(sent=[target])
    if status == 429 or status >= 500:
        return Outcome(pending={target: answer})
    return Outcome(refused={target: answer})


def retry_after(headers: Any) -> float | None:
    """Seconds a `Retry-After` header asks to wait (a number of seconds or an HTTP date), or None."""
    raw = str((headers or {}).get("Retry-After") or (headers or {}).get("retry-after") or "").strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(raw) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def honouring_retry_after(target: str, post: Callable[[], tuple[int, str, Any]]) -> Outcome:
    """Post, and when the service answers 429 or 503 with a Retry-After up to `RETRY_AFTER_MAX_S`,
    wait that long and post again (twice at most: nothing was accepted, so nothing can double). A
    longer wait is left to the task's retry, and the outcome says so."""
    for attempt in range(3):
        status, body, headers = post()
        wait = retry_after(headers) if status in (429, 503) else None
        if wait is not None and wait <= RETRY_AFTER_MAX_S and attempt < 2:
            log.info("%s answered %d with Retry-After %g s: posting again after that", target, status, wait)
            time.sleep(wait)
            continue
        outcome = _by_status(target, status, body)
        if wait is not None and outcome.pending:
            outcome.pending[target] += (f" (Retry-After {wait:g} s" + (f", longer than the {RETRY_AFTER_MAX_S:g} s a "
                                        "post waits" if wait > RETRY_AFTER_MAX_S else "") + "; the task's retry posts it)")
        return outcome
    raise AssertionError("unreachable")


def _not_connected(exc: BaseException) -> bool:
    """True when the request cannot have reached the server (refused, no route, unknown host)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError | socket.gaierror):
            return True
        if type(seen).__name__ in ("NewConnectionError", "ConnectTimeout", "NameResolutionError"):
            return True
        seen = getattr(seen, "reason", None) if isinstance(seen, urllib.error.URLError) else (seen.__cause__ or seen.__context__)
    return False


def _transport_failure(target: str, exc: BaseException) -> Outcome:
    what = f"{type(exc).__name__}: {exc}"[:300]
    if _not_connected(exc):
        return Outcome(pending={target: f"cannot connect: {what}"})
    return Outcome(unknown={target: f"no answer after the request was sent ({what}): the post may be in the "
                                    "channel; look before posting it again"})


def post_slack(conn_id: str, payload: dict[str, Any]) -> Outcome:
    from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

    target = f"slack:{conn_id}"
    try:
        client = SlackWebhookHook(slack_webhook_conn_id=conn_id, timeout=TIMEOUT_S, retry_handlers=[]).client
    except Exception as exc:  # a connection that is missing or has no URL: nothing was posted
        return Outcome(refused={target: f"the connection cannot be used: {exc}"})
    def post() -> tuple[int, str, Any]:
        response = client.send_dict(payload)
        return int(response.status_code), str(response.body or ""), response.headers

    try:
        return honouring_retry_after(target, post)
    except Exception as exc:
        return _transport_failure(target, exc)


def post_teams(conn_id: str, payload: dict[str, Any]) -> Outcome:
    from airflow.providers.http.hooks.http import HttpHook

    target = f"teams:{conn_id}"
    try:
        hook = HttpHook(method="POST", http_conn_id=conn_id)
        hook.get_conn()
    except Exception as exc:
        return Outcome(refused={target: f"the connection cannot be used: {exc}"})
    def post() -> tuple[int, str, Any]:
        response = hook.run(None, json=payload, headers={"Content-Type": "application/json"},
                            extra_options={"check_response": False, "timeout": TIMEOUT_S})
        return int(response.status_code), response.text or "", response.headers

    try:
        return honouring_retry_after(target, post)
    except Exception as exc:
        return _transport_failure(target, exc)


POSTERS: dict[str, Callable[[str, dict[str, Any]], Outcome]] = {"slack": post_slack, "teams": post_teams}


def deliver_to_channel(engine: Engine, report: ReportConfig, period: ReportPeriod, run_id: str, channel: str,
                       conn_id: str, payload: dict[str, Any], attempt: int, run_instance: str) -> dict[str, Any]:
    """Post one edition to one chat channel once (under the edition's delivery `attempt`)."""
    target = f"{channel}:{conn_id}"
    key = DeliveryKey(report.report_id, period.grain, period.start_date, report.edition_id, attempt)
    post_id = key.message_id(period.key)
    ensure_intents(engine, key, [target], post_id, run_id, run_instance, channel=channel)
    token, claimed = claim(engine, key, [target], run_id)
    what = f"{report.report_id}" + (f" variant {report.edition_id}" if report.edition_id else "") + \
        f" for {period} to {target}"
    if not claimed:
        row = states(engine, key)[target]
        if row["state"] == UNKNOWN:  # whichever run finds it says it: the run that met it may have died
            raise unknown_error(what, post_id, {target: str(row["detail"])}, look="Look in the channel for the post")
        if row["state"] == SENDING:
            raise held_error(what, post_id, {target: row})
        log.info("%s (delivery %d): nothing left to post (%s)", what, attempt, row["state"])
        problem = f"{row['state']}: {row['detail']}" if row["state"] == REFUSED and row["run_id"] == run_id else ""
        return {"channel": channel, "target": target, "status": "skipped", "state": row["state"], "problem": problem}
    outcome = POSTERS[channel](conn_id, payload)
    record(engine, key, token, outcome, channel, sent_detail=f"posted at {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    if outcome.pending:
        raise DeliveryError(f"{what}: not yet posted ({outcome.pending[target]}); a retry posts it")
    if outcome.unknown:
        raise unknown_error(what, post_id, outcome.unknown, look="Look in the channel for the post")
    if outcome.refused:
        raise DeliveryRefused(f"{what} (refused): {outcome.refused[target]}")
    log.info("%s (delivery %d): posted", what, attempt)
    return {"channel": channel, "target": target, "status": "sent", "state": SENT, "problem": ""}
