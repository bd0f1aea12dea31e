"""Every bad-row rule: the row is excluded, counted once under its rule, and nothing crashes."""

import pandas as pd
import pytest

from crm_kpis.quality.rules import apply_rules, before, duplicate, missing, negative
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.reading import _parse_timestamps
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
