"""Links to a rendered PDF that open without an Airflow account: signed, expiring, one file each.

Why: an executive reads the email or the chat post on his phone and has no Airflow login; a link
behind the login answers him 401. The link carries its own permission instead, for one file and
for the report's `link_days` (reports.yaml):

- where the reports store can presign (S3, GCS, Azure through their fsspec filesystems), the
  store's own presigned URL of the PDF: the API server is not even involved;
- otherwise (a local folder, or a store without presigning) the KPI history plugin's public route
  `/kpi-history/shared/report.pdf?grain=…&period=…&variant=…&expires=…&sig=…`, where `sig` is an
  HMAC-SHA256 of the file's key and the expiry under a secret the workers and the API server
  share. Changing any part of the link (another period, another variant, a later expiry) breaks
  the signature; an expired link is refused with the date it expired.

The secret comes from the environment (`CRM_KPIS_LINK_SECRET`) or the password of the Airflow
connection `crm_kpis_links`, at least 32 characters; there is no default. Without one, messages
carry the link behind the Airflow login and the render log says why.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from crm_kpis.config.settings import ReportConfig, ui_base_url
from crm_kpis.periods import ReportPeriod

log = logging.getLogger(__name__)

LINK_SECRET_ENV = "CRM_KPIS_LINK_SECRET"
LINK_CONN_ID = "crm_kpis_links"
MIN_SECRET_CHARS = 32
#: the plugin's public route (crm_kpis.ui.history_view mounts it without the Airflow login)
SHARED_ROUTE = "/kpi-history/shared/report.pdf"


class LinkRefused(Exception):
    """A shared link that must not open; the message says why in the reader's terms."""

    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


@dataclass(frozen=True)
class SharedLink:
    url: str
    expires_at: datetime  # UTC, naive
    kind: str  # "presigned" (the store's own) or "signed" (the plugin's route)

    @property
    def expires_text(self) -> str:
        return f"{self.expires_at:%d %B %Y, %H:%M} UTC"


def link_secret() -> bytes | None:
    """The signing secret (environment first, then the connection's password); None: not set."""
    secret = os.environ.get(LINK_SECRET_ENV, "")
    if not secret:
        try:
            from airflow.sdk import BaseHook

            secret = BaseHook.get_connection(LINK_CONN_ID).password or ""
        except Exception:  # noqa: BLE001 - no such connection: the same as no secret
            secret = ""
    if not secret:
        return None
    if len(secret) < MIN_SECRET_CHARS:
        raise ValueError(f"the link secret ({LINK_SECRET_ENV} or connection {LINK_CONN_ID}) has {len(secret)} "
                         f"characters; use at least {MIN_SECRET_CHARS} random ones, e.g. "
                         "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")
    return secret.encode()


def _message(grain: str, period_start: date, variant: str, expires: int) -> bytes:
    return f"report.pdf|{grain}|{period_start.isoformat()}|{variant}|{expires}".encode()


def signature(secret: bytes, grain: str, period_start: date, variant: str, expires: int) -> str:
    return hmac.new(secret, _message(grain, period_start, variant, expires), hashlib.sha256).hexdigest()


def signed_query(secret: bytes, grain: str, period_start: date, variant: str, expires_at: datetime) -> str:
    expires = int(expires_at.replace(tzinfo=UTC).timestamp())
    query = {"grain": grain, "period": period_start.isoformat(), "variant": variant, "expires": expires,
             "sig": signature(secret, grain, period_start, variant, expires)}
    return urlencode(query)


def verify(secret: bytes | None, grain: str, period: str, variant: str, expires: str, sig: str,
           now: datetime | None = None) -> date:
    """The period start a shared link opens, or LinkRefused: unsigned servers, tampered, expired."""
    if secret is None:
        raise LinkRefused("Shared links are not enabled on this server (no link secret is set): open the "
                          "report from the KPI history view after logging in to Airflow.", 503)
    try:
        start, when = date.fromisoformat(period), int(expires)
    except ValueError:
        raise LinkRefused("This link is not valid: it is incomplete or was changed.", 403) from None
    expected = signature(secret, grain, start, variant, when)
    if not hmac.compare_digest(expected, sig):
        raise LinkRefused("This link is not valid: it is incomplete or was changed.", 403)
    expired_at = datetime.fromtimestamp(when, UTC)
    if (now or datetime.now(UTC)) >= expired_at:
        raise LinkRefused(f"This link expired on {expired_at:%d %B %Y, %H:%M} UTC. Ask the sender for a new "
                          "one, or open the report from the KPI history view in Airflow.", 410)
    return start


def pdf_link(edition: ReportConfig, period: ReportPeriod, now: datetime) -> SharedLink | None:
    """The link to an edition's PDF that its readers can open without an account, for the report's
    `link_days` from `now` (naive UTC); None, with the reason logged, when none can be made."""
    from crm_kpis.delivery.reports_store import report_files

    expires_at = (now + timedelta(days=edition.link_days)).replace(microsecond=0)
    pdf = report_files(edition, period)["pdf"]
    try:
        url = pdf.sign(expiration=int((expires_at - now).total_seconds()))  # ObjectStoragePath.sign: the store's
    except NotImplementedError:  # a local folder, or a store that cannot presign: the plugin's route
        pass
    else:
        return SharedLink(str(url), expires_at, "presigned")
    secret = link_secret()
    if secret is None:
        log.warning("no shared link for %s %s: set %s (or the connection %s) on the workers and the API "
                    "server; the messages link to the PDF behind the Airflow login", edition.report_id,
                    period.key, LINK_SECRET_ENV, LINK_CONN_ID)
        return None
    query = signed_query(secret, period.grain, period.start_date, edition.edition_id, expires_at)
    return SharedLink(f"{ui_base_url()}{SHARED_ROUTE}?{query}", expires_at, "signed")
