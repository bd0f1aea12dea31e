"""Exactly once under faults: each fault driven against a real SMTP server process that misbehaves.

The server (tests/smtp_fault_server.py) records every message it accepts; the copies each
recipient got are counted from that record, and the delivery log must say exactly who got it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_kpis.config.settings import ReportConfig
from crm_kpis.delivery import intents as delivery
from crm_kpis.delivery.email import deliver
from crm_kpis.delivery.intents import DeliveryError, DeliveryRefused, DeliveryUnknown
from crm_kpis.history.store import delivery_intents, ensure_schema, report_deliveries
from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import engine_for
from tests.e2e.helpers import free_port

OCT = ReportPeriod.parse("monthly", "2026-10")
REPORT = ReportConfig("monthly_executive", "Monthly KPI report", "monthly",
                      to=("ceo@example.com", "cfo@example.com"), cc=("data@example.com",))
EVERYONE = ["ceo@example.com", "cfo@example.com", "data@example.com"]


@contextmanager
def smtp(tmp_path: Path, *flags: str, timeout: float = 10):
    """A fault server process and the Airflow connection pointing at it."""
    port, record = free_port(), tmp_path / f"received-{len(list(tmp_path.glob('received-*')))}.jsonl"
    proc = subprocess.Popen([sys.executable, str(PROJECT_DIR / "tests" / "smtp_fault_server.py"), "--port", str(port),
                             "--record", str(record), *flags], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "kpi@example.com",
                      "timeout": timeout, "retry_limit": 1}}
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))
    try:
        yield record, conn
    finally:
        mp.undo()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def copies(record: Path) -> Counter:
    if not record.exists():
        return Counter()
    return Counter(r for line in record.read_text().splitlines() for r in json.loads(line)["rcpt"])


def intents(engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.recipient: r.state for r in conn.execute(select(delivery_intents.c.recipient, delivery_intents.c.state))}


def logged(engine) -> list[str]:
    with engine.connect() as conn:
        return [r.recipients for r in conn.execute(select(report_deliveries.c.recipients))]


def send(warehouse, pdf, run="run-1", **kw):
    return deliver(warehouse, REPORT, OCT, run, "Monthly KPI report · October 2026", "text", "<p>h</p>", pdf, **kw)


def test_a_refused_recipient_is_reported_and_the_others_get_one_copy(tmp_path, warehouse, pdf):
    with smtp(tmp_path, "--refuse", "cfo@example.com") as (record, _):
        with pytest.raises(DeliveryRefused, match="cfo@example.com refused: 550 5.1.1 mailbox unavailable"):
            send(warehouse, pdf)
        for _ in range(3):  # retries of the task, re-runs of the period: nothing more is sent
            assert send(warehouse, pdf).status == "skipped"
    assert copies(record) == {"ceo@example.com": 1, "data@example.com": 1}
    assert intents(warehouse) == {"ceo@example.com": "sent", "cfo@example.com": "refused", "data@example.com": "sent"}
    assert logged(warehouse) == ["ceo@example.com, data@example.com"]  # the log says exactly who got it


def test_a_temporary_refusal_is_retried_for_that_recipient_only(tmp_path, warehouse, pdf):
    with smtp(tmp_path, "--temp-refuse", "cfo@example.com") as (record, _):
        with pytest.raises(DeliveryError, match="not yet delivered to cfo@example.com .451"):
            send(warehouse, pdf)
        assert send(warehouse, pdf).recipients == ("cfo@example.com",)  # the retry
        assert send(warehouse, pdf).status == "skipped"
    assert copies(record) == dict.fromkeys(EVERYONE, 1)
    assert set(intents(warehouse).values()) == {"sent"}
    assert sorted(logged(warehouse)) == ["ceo@example.com, data@example.com", "cfo@example.com"]


def test_a_server_lost_before_data_is_retried_and_sends_once(tmp_path, warehouse, pdf):
    with smtp(tmp_path, "--drop-before-data", "1") as (record, _):
        with pytest.raises(DeliveryError, match="connection lost before DATA"):
            send(warehouse, pdf)
        assert copies(record) == {}
        assert send(warehouse, pdf).status == "sent"
        assert send(warehouse, pdf).status == "skipped"
    assert copies(record) == dict.fromkeys(EVERYONE, 1)


MESSAGE_ID = "<monthly_executive.2026-10.all.0@crm-kpis.local>"
SAYS_UNKNOWN = (r"monthly_executive for monthly 2026-10 \(UTC\) \(Message-ID <monthly_executive\.2026-10\.all\.0@"
                r"crm-kpis\.local>\): the outcome is unknown for ceo@example\.com, cfo@example\.com, data@example\.com")


def assert_says_how_to_resend(error: pytest.ExceptionInfo) -> None:
    """The error is the failure alert's text: it must say what a person does next."""
    text = str(error.value)
    assert "Nothing is sent to them again automatically" in text
    assert "Look the Message-ID up in the mail server's log" in text and "resend=true" in text


def test_a_connection_lost_during_data_is_unknown_and_never_resent(tmp_path, warehouse, pdf):
    with smtp(tmp_path, "--drop-in-data", "1") as (record, _):
        with pytest.raises(DeliveryUnknown, match=SAYS_UNKNOWN + r" \(ceo@example\.com, cfo@example\.com, "
                           r"data@example\.com: connection lost during DATA") as first:
            send(warehouse, pdf)
        assert_says_how_to_resend(first)
        # a later run of the month is not green either: it sends nothing and says so again
        with pytest.raises(DeliveryUnknown, match=SAYS_UNKNOWN):
            send(warehouse, pdf, run="run-2")
    assert copies(record) == {}  # at most once: the server kept nothing, and we cannot know that
    assert set(intents(warehouse).values()) == {"unknown"}


def test_a_server_that_stalls_in_data_gives_one_copy_and_the_log_says_unknown(tmp_path, warehouse, pdf):
    with smtp(tmp_path, "--stall-data", "4", timeout=1.5) as (record, _):
        with pytest.raises(DeliveryUnknown, match=SAYS_UNKNOWN + r" \(.*timed out"):
            send(warehouse, pdf)
        time.sleep(3)  # the server finishes its stall and keeps the message
        with pytest.raises(DeliveryUnknown, match=SAYS_UNKNOWN):
            send(warehouse, pdf)
    assert copies(record) == dict.fromkeys(EVERYONE, 1)
    assert set(intents(warehouse).values()) == {"unknown"}
    with smtp(tmp_path) as (healthy, _):  # resend is the deliberate way out: a new delivery and Message-ID
        again = send(warehouse, pdf, run="run-2", resend=True)
        assert again.status == "sent" and again.message_id == MESSAGE_ID.replace(".0@", ".1@")
    assert copies(healthy) == dict.fromkeys(EVERYONE, 1)
    with warehouse.connect() as conn:
        states = sorted(conn.execute(select(delivery_intents.c.attempt, delivery_intents.c.state)).all())
    assert states == [(0, "unknown")] * 3 + [(1, "sent")] * 3


def test_a_warehouse_outage_after_the_send_loses_no_outcome_and_sends_once(tmp_path, warehouse, pdf, monkeypatch):
    from sqlalchemy.exc import OperationalError

    real_begin, failures = warehouse.begin, {"left": 2}

    def flaky_begin():
        import traceback

        if failures["left"] and any(f.name == "write" for f in traceback.extract_stack()):
            failures["left"] -= 1
            raise OperationalError("UPDATE delivery_intents", {}, Exception("server closed the connection"))
        return real_begin()

    monkeypatch.setattr(warehouse, "begin", flaky_begin)
    monkeypatch.setattr(delivery.time, "sleep", lambda s: None)
    with smtp(tmp_path) as (record, _):
        assert send(warehouse, pdf).status == "sent"  # the outcome written on the third try
        assert send(warehouse, pdf).status == "skipped"
    assert failures["left"] == 0
    assert copies(record) == dict.fromkeys(EVERYONE, 1)
    assert logged(warehouse) == [", ".join(EVERYONE)]


CLIENT = """
import sys
from pathlib import Path
from crm_kpis.config.settings import ReportConfig
from crm_kpis.periods import ReportPeriod
from crm_kpis.delivery.email import deliver
from crm_kpis.sources.connections import engine_for
report = ReportConfig("monthly_executive", "Monthly KPI report", "monthly",
                      to=("ceo@example.com", "cfo@example.com"), cc=("data@example.com",))
try:
    d = deliver(engine_for(sys.argv[1]), report, ReportPeriod.parse("monthly", "2026-10"), sys.argv[2],
                "Monthly KPI report", "text", "<p>h</p>", Path(sys.argv[3]))
    print(d.status, ",".join(d.recipients))
except Exception as exc:
    print("error", exc)
"""


def client(warehouse_file: Path, run: str, pdf: Path, conn: dict) -> subprocess.Popen:
    env = {**os.environ, "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(conn)}
    return subprocess.Popen([sys.executable, "-c", CLIENT, f"sqlite:///{warehouse_file}", run, str(pdf)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_worker_killed_between_the_send_and_the_log_never_sends_twice(tmp_path, warehouse, pdf, monkeypatch):
    with smtp(tmp_path, "--stall-data", "2") as (record, conn):
        worker = client(tmp_path / "warehouse.db", "run-1", pdf, conn)
        deadline = time.monotonic() + 20
        while not intents(warehouse) or set(intents(warehouse).values()) != {"sending"}:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        lock = sqlite3.connect(tmp_path / "warehouse.db", timeout=30)
        lock.execute("BEGIN EXCLUSIVE")  # the warehouse stalls: the worker cannot log its 250
        while not copies(record):
            assert time.monotonic() < deadline, worker.communicate()
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)  # killed after the server accepted, before the log
        worker.wait(timeout=10)
        lock.rollback()
        lock.close()
        # another run of the month, while the claim is recent: it may still be sending, so wait (retried)
        with pytest.raises(DeliveryError, match=r"being sent by another run \(ceo@example\.com by run run-1 since"):
            send(warehouse, pdf, run="run-2")
        monkeypatch.setattr(delivery, "STALE_CLAIM", timedelta(0))
        with pytest.raises(DeliveryUnknown, match=SAYS_UNKNOWN + r" \(.*the sender stopped while sending"):
            send(warehouse, pdf, run="run-2")  # the claim went stale: unknown, said, never re-sent
    assert copies(record) == dict.fromkeys(EVERYONE, 1)
    assert set(intents(warehouse).values()) == {"unknown"}  # the log says it cannot know, never "not sent"


def test_a_run_killed_inside_data_is_told_by_its_retry_and_never_resent(tmp_path, warehouse, pdf):
    """kill -9 while the server is inside DATA: the task's retry (same run) knows its earlier try
    died mid-send, so the outcome is unknown at once and the retry fails for good, saying so."""
    with smtp(tmp_path, "--stall-data", "3") as (record, conn):
        worker = client(tmp_path / "warehouse.db", "run-1", pdf, conn)
        deadline = time.monotonic() + 20
        while not copies(record):  # the server holds the message and has not answered yet
            assert time.monotonic() < deadline, worker.communicate()
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert set(intents(warehouse).values()) == {"sending"}
        with pytest.raises(DeliveryUnknown, match=SAYS_UNKNOWN + r" \(.*the sender stopped while sending") as retry:
            send(warehouse, pdf, run="run-1")
        assert_says_how_to_resend(retry)
        with pytest.raises(DeliveryUnknown):  # and every later run says it too
            send(warehouse, pdf, run="run-3")
        time.sleep(3)
    assert copies(record) == dict.fromkeys(EVERYONE, 1)
    assert set(intents(warehouse).values()) == {"unknown"}


def test_two_runs_of_the_same_month_at_once_send_one_copy(tmp_path, warehouse, pdf):
    for trial in range(3):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        engine = engine_for(f"sqlite:///{folder / 'warehouse.db'}")
        ensure_schema(engine)
        with smtp(folder, "--stall-data", "0.5") as (record, conn):
            runs = [client(folder / "warehouse.db", f"run-{n}", pdf, conn) for n in (1, 2)]
            outputs = sorted(p.communicate(timeout=60)[0].strip() for p in runs)
        assert copies(record) == dict.fromkeys(EVERYONE, 1), outputs
        assert set(intents(engine).values()) == {"sent"}, outputs


def test_a_chat_post_of_unknown_outcome_does_not_make_the_email_unknown(tmp_path, warehouse, pdf):
    """The edition's chat posts share its delivery key (recipient `slack:<conn>`); each says its own
    outcome, so an unknown post fails the task by itself and the email is judged by its recipients."""
    from sqlalchemy import update

    key = delivery.DeliveryKey("monthly_executive", "monthly", OCT.start_date, "", 0)
    delivery.ensure_intents(warehouse, key, ["slack:slack_kpis"], MESSAGE_ID, "run-1", "run-1|x", channel="slack")
    with warehouse.begin() as conn:
        conn.execute(update(delivery_intents).values(state="unknown", detail="no answer after the request was sent"))
    with smtp(tmp_path) as (record, _):
        sent = send(warehouse, pdf)
        assert sent.status == "sent" and sorted(sent.recipients) == sorted(EVERYONE)
        assert send(warehouse, pdf).status == "skipped"  # the retry: the email went out, nothing more to say
    assert copies(record) == dict.fromkeys(EVERYONE, 1)
