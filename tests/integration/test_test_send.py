"""`test_to`: a test send goes to one address only, says so, and is not the report's delivery.

Against a real SMTP server process (tests/smtp_fault_server.py, recording what it accepts): what
each address got is counted there, and the delivery log must not list a test.
"""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesParser

import pytest

from crm_kpis.delivery.intents import DeliveryRefused
from tests.integration.test_delivery_faults import EVERYONE, copies, logged, send, smtp


def received(record) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def test_a_test_goes_to_one_address_marked_and_leaves_the_delivery_alone(tmp_path, warehouse, pdf):
    with smtp(tmp_path) as (record, _):
        test = send(warehouse, pdf, run="run-t", run_instance="run-t|1", test_to="analyst@example.com")
        assert test.status == "sent" and test.recipients == ("analyst@example.com",)
        assert test.message_id == "<monthly_executive.2026-10.test.0@crm-kpis.local>"
        assert send(warehouse, pdf, run="run-t", run_instance="run-t|1", test_to="analyst@example.com").status \
            == "skipped"  # a retry of that run's send task: no second test
        assert copies(record) == {"analyst@example.com": 1}
        assert logged(warehouse) == []  # not a delivery of the report

        real = send(warehouse, pdf, run="run-r")  # the report's own delivery is untouched by the test
        assert real.status == "sent" and sorted(real.recipients) == EVERYONE
        again = send(warehouse, pdf, run="run-t2", run_instance="run-t2|1", test_to="analyst@example.com")
        assert again.message_id == "<monthly_executive.2026-10.test.1@crm-kpis.local>"  # a new run: a new test
    assert copies(record) == {"analyst@example.com": 2, **{r: 1 for r in EVERYONE}}
    assert logged(warehouse) == [", ".join(EVERYONE)]
    first = BytesParser(policy=policy.default).parsebytes(received(record)[0]["data"].encode())
    assert first["Subject"] == "[TEST] Monthly KPI report · October 2026"
    assert first["To"] == "analyst@example.com" and first["Cc"] is None
    assert first.get_body(("plain",)).get_content().startswith("TEST SEND to analyst@example.com only (run run-t)")
    assert "<b>TEST SEND</b> to analyst@example.com only" in first.get_body(("html",)).get_content()


@pytest.mark.parametrize("bad", ["not-an-address", "a@example.com, b@example.com", "ceo@example"])
def test_a_test_address_must_be_one_address(tmp_path, warehouse, pdf, bad):
    with smtp(tmp_path) as (record, _), pytest.raises(DeliveryRefused, match="test_to must be one email address"):
        send(warehouse, pdf, run_instance="r|1", test_to=bad)
    assert copies(record) == {}
