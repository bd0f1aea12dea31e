"""Every bad-row rule: the row is excluded, counted once under its rule, and nothing crashes."""

from datetime import UTC, datetime

import pandas as pd
import pytest

from crm_kpis.quality.rules import Rule, apply_rules, before, duplicate, missing, negative
from crm_kpis.sources.contract import load_contract
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.reading import _parse_timestamps
from crm_kpis.sources.typed_read import MARK, marked_rules, type_frame
from tests.unit.kpi_fixture import frame


def rules(name):
    return EXTRACTS[name].rules


def test_duplicates_keep_the_first_row():
    f = pd.DataFrame({"id": [1, 1, 2, 1], "v": [10, 11, 12, 13]})
    out = apply_rules("t", f, (duplicate("id"),))
    assert out.rejected == {"duplicate": 2}
    assert out.frame["v"].tolist() == [10, 12]


def test_negative_or_missing_amounts():
    f = pd.DataFrame({"amount": [5.0, -0.01, None, 0.0]})
    out = apply_rules("t", f, (negative("amount"),))
    assert out.rejected == {"negative_or_missing_amount": 2}
    assert out.frame["amount"].tolist() == [5.0, 0.0]


def test_impossible_order_of_timestamps_but_missing_is_fine():
    f = frame("created_at resolved_at", [("2026-10-02", "2026-10-01"), ("2026-10-02", None), ("2026-10-02", "2026-10-03")])
    out = apply_rules("t", f, (before("resolved_at", "created_at"),))
    assert out.rejected == {"resolved_at_before_created_at": 1}
    assert len(out.frame) == 2


def test_a_row_breaking_two_rules_is_counted_once():
    f = pd.DataFrame({"id": [1, 1], "amount": [1.0, -1.0]})
    out = apply_rules("t", f, (duplicate("id"), negative("amount")))
    assert out.rejected == {"duplicate": 1}
    assert missing("amount").name == "missing_amount"


def test_orders_rules_on_the_extract():
    f = frame("order_id customer_id ordered_at status total_amount known_customer_id", [
        (1, 1, "2026-10-01", "completed", 10.0, 1),
        (1, 1, "2026-10-01", "completed", 10.0, 1),  # duplicate
        (2, 1, "2026-10-02", "completed", -3.0, 1),  # negative
        (3, 99, "2026-10-03", "completed", 7.0, None),  # orphan: customer 99 does not exist
    ])
    out = apply_rules("orders", f, rules("orders"))
    assert out.rejected == {"duplicate": 1, "negative_or_missing_total_amount": 1, "orphan_customer": 1}
    assert out.frame["order_id"].tolist() == [1]


@pytest.mark.parametrize(("survey", "score", "ok"), [
    ("nps", 0, True), ("nps", 10, True), ("nps", 11, False), ("nps", -1, False),
    ("csat", 1, True), ("csat", 5, True), ("csat", 0, False), ("csat", 6, False),
    ("ces", 1, True), ("ces", 7, True), ("ces", 8, False), ("other", 3, False), ("nps", None, False),
])
def test_survey_scales(survey, score, ok):
    f = frame("response_id survey score known_customer_id", [(1, survey, score, 1)])
    out = apply_rules("survey_responses", f, rules("survey_responses"))
    assert (len(out.frame) == 1) is ok
    assert out.rejected == ({} if ok else {"score_out_of_scale": 1})


def test_tickets_resolved_rules():
    f = frame("ticket_id created_at first_response_at resolved_at", [
        (1, "2026-10-01 10:00", "2026-10-01 11:00", "2026-10-01 12:00"),  # fine
        (2, "2026-10-01 10:00", "2026-10-01 11:00", "2026-10-01 09:00"),  # resolved before created
        (3, "2026-10-01 10:00", "2026-10-01 09:00", "2026-10-01 12:00"),  # responded before created
        (4, "2026-10-01 10:00", "2026-10-01 13:00", "2026-10-01 12:00"),  # first response after resolution
    ])
    out = apply_rules("tickets_resolved", f, rules("tickets_resolved"))
    assert out.rejected == {"resolved_at_before_created_at": 1, "first_response_at_before_created_at": 1,
                            "resolved_at_before_first_response_at": 1}
    assert out.frame["ticket_id"].tolist() == [1]


def test_other_extract_rules():
    social = pd.DataFrame({"impressions": [100, 10], "engagements": [5, 20], "mentions": [1, 1]})
    assert apply_rules("s", social, rules("social_activity")).rejected == {"engagements_above_impressions": 1}
    opps = frame("opportunity_id created_at closed_at outcome", [(1, "2026-10-01", "2026-10-02", None),
                                                                  (2, "2026-10-01", "2026-10-02", "won")])
    assert apply_rules("o", opps, rules("opportunities_closed")).rejected == {"closed_without_outcome": 1}
    calls = frame("call_id queued_at answered_at ended_at", [(1, "2026-10-01 10:00", "2026-10-01 09:59", "2026-10-01 10:05")])
    assert apply_rules("c", calls, rules("calls")).rejected == {"answered_at_before_queued_at": 1}
    time = pd.DataFrame({"hours_logged": [8.0, -1.0], "hourly_cost": [30.0, 30.0]})
    assert apply_rules("a", time, rules("agent_time")).rejected == {"negative_or_missing_hours_logged_hourly_cost": 1}


def test_empty_extract_passes_through():
    f = frame("order_id total_amount known_customer_id", [])
    out = apply_rules("orders", f, rules("orders"))
    assert out.rejected == {} and out.frame.empty


def test_timestamps_with_offsets_become_utc_and_unreadable_ones_missing():
    f = pd.DataFrame({"created_at": ["2026-10-01 10:00:00", "2026-10-01T12:00:00+02:00", "not a time", None]})
    out = _parse_timestamps(f)
    assert out["created_at"].tolist()[:2] == [pd.Timestamp("2026-10-01 10:00:00")] * 2
    assert out["created_at"].isna().tolist() == [False, False, True, True]


# --- times that have not happened yet ----------------------------------------------------------
READ_AT = datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC)


def test_a_time_later_than_the_reading_plus_the_tolerance_is_marked_future():
    f = pd.DataFrame({"ticket_id": [1, 2, 3, 4, 5],
                      "created_at": ["2026-12-01 09:00:00"] * 5,
                      "resolved_at": ["2026-12-06 11:00:00",   # before the reading
                                      "2026-12-07 11:59:59",   # 23:59:59 ahead: within 24 h (a clock ahead)
                                      "2026-12-07 12:00:01",   # 24 h and 1 s ahead
                                      "2099-01-01 00:00:00",   # a placeholder year
                                      None]})                  # not resolved: nothing to judge
    out, reads = type_frame(f, "helpdesk/tickets_resolved.sql", "UTC", READ_AT, 24.0)
    assert out[MARK + "future_resolved_at"].tolist() == [False, False, True, True, False]
    assert MARK + "future_created_at" not in out.columns and reads == {}  # readable, only not yet happened
    checked = apply_rules("tickets_resolved", out, tuple(
        Rule(rule, lambda fr, c=col: fr[c]) for rule, col in marked_rules(out)))
    assert checked.rejected == {"future_resolved_at": 2} and checked.frame["ticket_id"].tolist() == [1, 2, 5]


def test_the_tolerance_is_the_connections_and_a_local_zone_is_read_first():
    # Berlin wall time 2026-12-06 13:30 is 12:30 UTC: half an hour after the reading
    f = pd.DataFrame({"ticket_id": [1], "created_at": ["2026-12-06 13:30:00"]})
    out, _ = type_frame(f.copy(), "helpdesk/tickets_created.sql", "Europe/Berlin", READ_AT, 0.0)
    assert out[MARK + "future_created_at"].tolist() == [True]
    out, _ = type_frame(f.copy(), "helpdesk/tickets_created.sql", "Europe/Berlin", READ_AT, 1.0)
    assert MARK + "future_created_at" not in out.columns
    # the same wall time read as UTC is 1.5 h after the reading: beyond a 1 h tolerance
    out, _ = type_frame(f.copy(), "helpdesk/tickets_created.sql", "UTC", READ_AT, 1.0)
    assert out[MARK + "future_created_at"].tolist() == [True]


def test_a_planned_date_may_lie_ahead():
    f = pd.DataFrame({"subscription_id": [1], "term_ends_at": ["2031-01-31 00:00:00"], "segment": ["smb"],
                      "renewed": [0]})
    out, _ = type_frame(f, "crm/subscriptions_term_end.sql", "UTC", READ_AT, 24.0)
    assert [c for c in out.columns if c.startswith(MARK)] == []
    assert load_contract().tables["subscriptions"].columns["term_ends_at"].planned
    assert not load_contract().tables["subscriptions"].columns["started_at"].planned
