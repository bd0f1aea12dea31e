"""A tracking signal that the period's rows already prove is not asked again; one they do not prove
still is, so the answer is the same. Frames made by hand; the SQL files are the product's own."""

from __future__ import annotations

import pandas as pd
import pytest

from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.contract import load_contract
from crm_kpis.sources.signals_in_frames import columns_from_main, shown_by_frames

OCT = ReportPeriod.parse("monthly", "2026-10")
SIGNALS = load_contract().signals


def test_only_columns_taken_unchanged_from_the_main_table_can_prove_a_signal():
    # t.first_response_at from `FROM tickets t`; a.team AS agent_team comes from a joined table
    assert columns_from_main("helpdesk/tickets_first_response.sql") == {"ticket_id", "created_at", "first_response_at"}
    # `acquisition_channel AS channel` is renamed: not customers.channel (there is none)
    assert "channel" not in columns_from_main("crm/customers.sql")
    # churned_at is a CASE over the column (NULL after the period's end): not the column itself
    assert "churned_at" not in columns_from_main("crm/customer_lifetimes.sql")
    # the outermost FROM is a CTE of the file: nothing is known to come unchanged from tickets
    assert columns_from_main("helpdesk/tickets_resolved.sql") == frozenset()
    # a subquery's columns are not the outer table's (opportunities_open selects c.segment inside one)
    assert "segment" not in columns_from_main("crm/opportunities_open.sql")


def frame(**columns):
    return pd.DataFrame(columns)


def test_a_first_response_read_in_the_period_proves_first_responses():
    signal = SIGNALS["first_responses"]
    answered = frame(ticket_id=["t1", "t2"], created_at=pd.to_datetime(["2026-09-30 22:00", "2026-10-02 00:00"]),
                     first_response_at=pd.to_datetime([None, "2026-10-03 09:00"]))
    assert shown_by_frames(signal, {"tickets_first_response": answered}, OCT)


@pytest.mark.parametrize("case", ["all_null", "after_end", "other_table", "renamed_only", "empty"])
def test_rows_that_do_not_prove_a_signal_leave_it_to_the_source(case):
    signal = SIGNALS["first_responses"]
    frames = {
        # no first response at all in the period's rows: the source must be asked (a quiet month)
        "all_null": {"tickets_first_response": frame(ticket_id=["t1"], created_at=pd.to_datetime(["2026-10-02"]),
                                                     first_response_at=pd.to_datetime([None]))},
        # answered on 1 November 00:00 UTC: not before October's end
        "after_end": {"tickets_first_response": frame(ticket_id=["t1"], created_at=pd.to_datetime(["2026-10-02"]),
                                                      first_response_at=pd.to_datetime(["2026-11-01 00:00"]))},
        # a column of the same name in an extract of another table proves nothing about tickets
        "other_table": {"calls": frame(call_id=["c1"], first_response_at=pd.to_datetime(["2026-10-02"]),
                                       queued_at=pd.to_datetime(["2026-10-02"]))},
        # tickets_resolved reads tickets through a CTE: its columns are not trusted as the table's
        "renamed_only": {"tickets_resolved": frame(ticket_id=["t1"], first_response_at=pd.to_datetime(["2026-10-02"]))},
        "empty": {"tickets_first_response": frame(ticket_id=[], created_at=pd.to_datetime([]),
                                                  first_response_at=pd.to_datetime([]))},
    }[case]
    assert not shown_by_frames(signal, frames, OCT)


def test_a_signal_with_a_value_needs_a_row_with_that_value():
    responses = frame(response_id=["r1", "r2"], survey=["csat", "ces"], score=[4, 2],
                      responded_at=pd.to_datetime(["2026-10-05", "2026-10-06"]))
    frames = {"survey_responses": responses}
    assert shown_by_frames(SIGNALS["csat_surveys"], frames, OCT)
    assert shown_by_frames(SIGNALS["ces_surveys"], frames, OCT)
    assert not shown_by_frames(SIGNALS["nps_surveys"], frames, OCT)
    assert shown_by_frames(SIGNALS["surveys"], frames, OCT)  # any row before the end


def test_a_date_signal_is_bounded_by_the_last_day():
    signal = SIGNALS["campaigns"]  # campaigns.started_on, a date
    starting = frame(campaign_id=["k1"], channel=["email"], started_on=pd.to_datetime(["2026-10-31"]),
                     ended_on=pd.to_datetime([None]))
    assert shown_by_frames(signal, {"campaigns_active": starting}, OCT)
    later = starting.assign(started_on=pd.to_datetime(["2026-11-01"]))
    assert not shown_by_frames(signal, {"campaigns_active": later}, OCT)


def test_an_unreadable_time_proves_nothing():
    # a value the typed read could not read arrives as NaT (and is counted there), never as a proof
    signal = SIGNALS["tickets"]
    unreadable = frame(ticket_id=["t1"], created_at=pd.to_datetime([None]), resolved_at=pd.to_datetime([None]),
                       category=["billing"])
    assert not shown_by_frames(signal, {"tickets_created": unreadable}, OCT)
    assert shown_by_frames(signal, {"tickets_created": unreadable.assign(
        created_at=pd.to_datetime(["2026-10-31 23:59"]))}, OCT)


def test_a_signal_the_frames_prove_is_not_asked_of_the_source(monkeypatch):
    """What the area does: signals proven by its frames cost no query (through an adapter each query
    derives the period's tickets again); the others still go to the source."""
    from crm_kpis import compute

    asked = []

    def ask(engine, signal, params, source=None):
        asked.append(signal.name)
        return False

    monkeypatch.setattr(compute, "signal_present", ask)
    monkeypatch.setattr(compute, "engine_for", lambda conn_id: type("E", (), {"dialect": type("D", (), {"name": "sqlite"})})())
    monkeypatch.setattr(compute, "source_settings", lambda conn_id: type("S", (), {"timezone": "UTC", "stack": None})())
    created = frame(ticket_id=["t1"], created_at=pd.to_datetime(["2026-10-02 08:00"]),
                    resolved_at=pd.to_datetime([None]), category=["billing"])
    out = compute.untracked_signals({"tickets", "first_responses"}, OCT, frames={"tickets_created": created})
    assert asked == ["first_responses"]  # tickets is proven by the ticket created on 2 October
    assert out == {"first_responses": "no tickets.first_response_at"}
