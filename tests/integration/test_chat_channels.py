"""Slack and Teams: each edition posted once, against a real HTTP server process that misbehaves
(tests/webhook_server.py records every post that reached it, so copies are counted from the
channel's side). The posts go through Airflow's own hooks (SlackWebhookHook, HttpHook), with the
webhook URLs in Airflow connections pointing at the local server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from crm_kpis.config.settings import ReportConfig, Variant
from crm_kpis.delivery.chat import deliver_to_channel
from crm_kpis.delivery.intents import DeliveryError, DeliveryRefused, DeliveryUnknown
from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.report import messages
from tests.e2e.helpers import free_port
from tests.integration.test_delivery_faults import intents

OCT = ReportPeriod.parse("monthly", "2026-10")
REPORT = ReportConfig("monthly_executive", "Monthly KPI report", "monthly", to=(), slack="slack_kpis",
                      teams="teams_kpis", variants=(Variant("inside-sales", "rep_team", "Inside Sales", (),
                                                            slack="slack_sales"),))
SUMMARY = {
    "title": "Monthly KPI report · October 2026", "company": "Example Corp", "span": "1–31 October 2026 (UTC)",
    "compared_with": "September 2026", "movers": ["Revenue −6.5 % ($7.6M → $7.1M): orders −3.0 %"],
    "kpis": [{"name": "Revenue", "value": "$7,104,711", "change": "−6.5 %", "yoy": "+12.0 %",
              "status": "at risk", "scope": "", "note": ""},
             {"name": "Win rate", "value": "42.1 %", "change": "+3.9 pp", "yoy": "n/a", "status": "", "scope": "",
              "note": ""}],
    "caveats": ["12 source rows were excluded by data checks"],
    "pdf_path": "/kpi-history/report.pdf?grain=monthly&period=2026-10-01",
}
PDF_URL = "http://127.0.0.1:8080" + SUMMARY["pdf_path"]


@contextmanager
def webhook(tmp_path: Path, *flags: str):
    """The server process, and Slack and Teams connections pointing at it (the URL is the secret)."""
    port, record = free_port(), tmp_path / f"posts-{len(list(tmp_path.glob('posts-*')))}.jsonl"
    proc = subprocess.Popen([sys.executable, str(PROJECT_DIR / "tests" / "webhook_server.py"), "--port", str(port),
                             "--record", str(record), *flags], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    mp = pytest.MonkeyPatch()
    for conn_id in ("slack_kpis", "slack_sales"):
        mp.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(
            {"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{port}/services/T000/B000/{conn_id}"}))
    mp.setenv("AIRFLOW_CONN_TEAMS_KPIS", json.dumps(
        {"conn_type": "http", "host": f"http://127.0.0.1:{port}/workflows/abc/triggers/manual/paths/invoke"
                                      "?api-version=2016-06-01&sig=SECRET"}))
    try:
        yield record
    finally:
        mp.undo()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def posts(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def post(warehouse, channel: str, edition: ReportConfig = REPORT, run="run-1", attempt=0):
    conn_id = dict(edition.channels)[channel]
    payload = messages.PAYLOADS[channel](SUMMARY, PDF_URL)
    return deliver_to_channel(warehouse, edition, OCT, run, channel, conn_id, payload, attempt, f"{run}|1")


def test_slack_and_teams_get_the_summary_once(tmp_path, warehouse):
    with webhook(tmp_path) as record:
        assert post(warehouse, "slack")["status"] == "sent"
        assert post(warehouse, "teams")["status"] == "sent"
        assert post(warehouse, "slack", edition=REPORT.edition("inside-sales"))["status"] == "sent"
        for run in ("run-1", "run-2"):  # a retry, a re-run: nothing is posted again
            assert {post(warehouse, c, run=run)["status"] for c in ("slack", "teams")} == {"skipped"}
    slack, teams, sales = posts(record)
    assert slack["path"] == "/services/T000/B000/slack_kpis" and sales["path"].endswith("/slack_sales")
    assert slack["body"]["text"] == "Monthly KPI report · October 2026: Revenue −6.5 % ($7.6M → $7.1M): orders −3.0 %"
    blocks = slack["body"]["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "Monthly KPI report · October 2026"}}
    fields = [f["text"] for b in blocks if b["type"] == "section" and "fields" in b for f in b["fields"]]
    assert fields[0] == "*Revenue*\n$7,104,711 (−6.5 % vs previous, +12.0 % vs year ago); at risk"
    assert blocks[-1]["elements"][0]["url"] == PDF_URL
    assert teams["path"] == "/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SECRET"
    (card,) = teams["body"]["attachments"]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    content = card["content"]
    assert content["type"] == "AdaptiveCard" and content["version"] == "1.4"
    facts = next(b for b in content["body"] if b["type"] == "FactSet")["facts"]
    assert facts[1] == {"title": "Win rate", "value": "42.1 % (+3.9 pp vs previous, n/a vs year ago)"}
    assert content["actions"] == [{"type": "Action.OpenUrl", "title": "Open the PDF report", "url": PDF_URL}]
    assert intents(warehouse) == {"slack:slack_kpis": "sent", "teams:teams_kpis": "sent", "slack:slack_sales": "sent"}


def test_a_server_error_is_retried_and_posts_once(tmp_path, warehouse):
    with webhook(tmp_path, "--status", "503", "--times", "1") as record:
        with pytest.raises(DeliveryError, match="not yet posted .503 server error"):
            post(warehouse, "teams")
        assert post(warehouse, "teams")["status"] == "sent"  # the task's retry
        assert post(warehouse, "teams")["status"] == "skipped"
    assert len(posts(record)) == 1


@pytest.mark.parametrize("channel", ["slack", "teams"])
def test_a_rate_limit_with_a_short_retry_after_is_waited_out_and_posts_once(tmp_path, warehouse, channel):
    import time

    with webhook(tmp_path, "--status", "429", "--times", "1", "--retry-after", "1") as record:
        started = time.monotonic()
        assert post(warehouse, channel)["status"] == "sent"  # waited 1 s as asked, then posted
        assert time.monotonic() - started >= 1.0
    assert len(posts(record)) == 1


def test_a_long_retry_after_is_left_to_the_tasks_retry_and_said(tmp_path, warehouse):
    with webhook(tmp_path, "--status", "429", "--times", "1", "--retry-after", "120") as record:
        with pytest.raises(DeliveryError, match=r"429 .*\(Retry-After 120 s, longer than the 60 s a post waits; the "
                                                r"task's retry posts it\)"):
            post(warehouse, "slack")
        assert post(warehouse, "slack")["status"] == "sent"  # the task's retry, later
    assert len(posts(record)) == 1


def test_a_revoked_webhook_is_refused_for_good(tmp_path, warehouse):
    with webhook(tmp_path, "--status", "404") as record:
        with pytest.raises(DeliveryRefused, match="refused.*404 invalid_payload"):
            post(warehouse, "slack")
        retry = post(warehouse, "slack")  # the same run's retry: not posted, and still said
        assert retry["status"] == "skipped" and retry["problem"].startswith("refused: 404")
    assert posts(record) == [] and intents(warehouse) == {"slack:slack_kpis": "refused"}


def test_a_post_read_but_never_answered_is_unknown_and_never_reposted(tmp_path, warehouse):
    with webhook(tmp_path, "--drop-after-read", "1") as record:
        with pytest.raises(DeliveryUnknown, match=r"the outcome is unknown for slack:slack_kpis \(slack:slack_kpis: no "
                           "answer after the request was sent.*Look in the channel for the post; if it did not arrive, "
                           "trigger the period again with the run parameter resend=true"):
            post(warehouse, "slack")
        with pytest.raises(DeliveryUnknown):  # a later run posts nothing and says it again, never green
            post(warehouse, "slack", run="run-2")
    assert len(posts(record)) == 1  # it is in the channel once; posting again would make it twice
    assert intents(warehouse) == {"slack:slack_kpis": "unknown"}


def test_a_server_that_is_down_is_pending_and_posts_when_it_is_back(tmp_path, warehouse):
    with webhook(tmp_path) as record:
        live = json.loads(os.environ["AIRFLOW_CONN_SLACK_KPIS"])
        with pytest.MonkeyPatch.context() as mp:  # first the webhook points at a port nobody listens on
            mp.setenv("AIRFLOW_CONN_SLACK_KPIS", json.dumps({**live, "password": f"http://127.0.0.1:{free_port()}/s"}))
            with pytest.raises(DeliveryError, match="cannot connect"):
                post(warehouse, "slack")
        assert intents(warehouse) == {"slack:slack_kpis": "pending"}
        assert post(warehouse, "slack")["status"] == "sent"  # the retry, the service back
    assert len(posts(record)) == 1
