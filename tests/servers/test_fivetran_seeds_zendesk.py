"""Conformance of the fivetran_zendesk adapter with Fivetran's own test data for its Zendesk package
(`../shared/data/fivetran/zendesk`: seeds as shipped, typed as its integration-test project types
them), on SQLite and on PostgreSQL in a schema of its own.

Fivetran's seeds are what a real connector writes, and they differ from our demo's rendering: no
`group_member` table, no `_fivetran_deleted` on tickets or comments, tickets solved or closed with
no status history, statuses such as `on-hold`, assignees that are not synced users. The check must
pass on them as shipped; every expectation below is worked out by hand from the seed rows (quoted
in the comments) and, for the cases the seeds lack (a reply, a reopen, an SLA), from rows this test
adds.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from crm_kpis.compute import compute_area
from crm_kpis.periods import ReportPeriod
from crm_kpis.quality.gate import GateConfig, check_freshness
from crm_kpis.sources.connections import engine_for
from tests.fivetran_seeds import checked, seeded_connection
from tests.integration.adapter_helpers import values

ADAPTER = "fivetran_zendesk"

#: the cases the seeds lack, as rows of the seeds' own tables: ticket 90001 comes in on 1 December
#: 2020 at 10:00 (urgent, by email), Arthur Agent (user 1111, the seeds' one agent) answers in public
#: at 12:30, it is solved on the 2nd, reopened on the 3rd and solved again on the 4th at 10:00
ADDED = [
    "INSERT INTO {ticket} (id, created_at, updated_at, status, priority, type, via_channel, assignee_id, group_id) "
    "VALUES (90001, '2020-12-01 10:00:00', '2020-12-04 10:00:00', 'solved', 'urgent', 'incident', 'email', 1111, "
    "360006965034)",
    "INSERT INTO {ticket_comment} (id, ticket_id, user_id, created, public) VALUES "
    "(91, 90001, 2222, '2020-12-01 10:00:00', TRUE), (92, 90001, 1111, '2020-12-01 12:30:00', TRUE)",
    "INSERT INTO {ticket_field_history} (field_name, ticket_id, updated, value) VALUES "
    "('status', 90001, '2020-12-01 10:00:00', 'new'), ('status', 90001, '2020-12-02 10:00:00', 'solved'), "
    "('status', 90001, '2020-12-03 10:00:00', 'open'), ('status', 90001, '2020-12-04 10:00:00', 'solved')",
]


def _hours(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request, postgres, tmp_path, monkeypatch):
    """Zendesk's seeds (and the added rows) in the helpdesk connection, an empty reference CRM beside."""
    return seeded_connection(request.param, postgres, tmp_path, monkeypatch, "zendesk", ADAPTER, "helpdesk", ADDED)


def test_the_seeds_as_shipped_pass_the_check_naming_what_is_not_synced(seeded, capsys):
    loaded = seeded[3]
    assert "group_member" not in loaded and loaded["ticket"] == 10  # the seeds as shipped
    out = checked(seeded, ADAPTER, "helpdesk", capsys)
    assert "Zendesk Support synced by Fivetran: ok" in out, out
    assert "not synced (optional): group_member: no group memberships are synced" in out, out
    assert "not synced (optional): ticket._fivetran_deleted: read as FALSE" in out, out
    assert "not synced (optional): ticket_comment._fivetran_deleted: read as FALSE" in out, out
    assert "not synced (optional): sla_policy_metric_history" not in out  # the seeds have it


def test_kpis_from_the_seeds_worked_out_by_hand(seeded):
    company = {}
    for month in ("2020-08", "2020-10", "2020-11", "2020-12"):
        v = values(ReportPeriod.parse("monthly", month))
        company[month] = {k[0]: val for k, val in v.items() if k[1] == ""}
        if month == "2020-11":
            november = v

    # August: 11071 (28 Aug) and 11013 (27 Aug, status deleted: left out) came in
    assert company["2020-08"]["operations.tickets_created"][0] == 1
    # open at the end of October: 14173 (created 28 Oct) and 11071 (its history solves it in November)
    assert company["2020-10"]["operations.backlog"][0] == 2

    nov = company["2020-11"]
    # resolved in November: 11071 at its last change to solved (14 Nov 11:01:27, then closed the
    # 15th), and 14173, closed with no status history: at its updated_at (11 Nov 17:01:32)
    assert nov["operations.tickets_solved"][0] == 2
    assert nov["operations.backlog"][0] == 0
    hours = [_hours("2020-10-28 12:03:02", "2020-11-11 17:01:32"), _hours("2020-08-28 18:06:36", "2020-11-14 11:01:27")]
    assert nov["operations.resolution_hours"][0] == pytest.approx(sum(hours) / 2, abs=1e-9)
    # 11071 went open, pending, on-hold, … solved, closed: never back from solved, no reopen
    assert nov["operations.reopen_rate"][:3] == (0.0, 0, 2)
    # no agent ever answered in public before December (the comments are by users the seeds do not
    # list, so not agents): first responses are not tracked yet, and SLA compliance with them
    for kpi in ("operations.first_response_hours", "operations.sla_compliance_rate"):
        assert nov[kpi][0] is None
        assert nov[kpi][3] == "not tracked: no public agent comment after a ticket's first comment in ticket_comment"
    # the cases' group (360006965034) is not among the seeds' groups: their team is unknown, and
    # still counted
    teams = {k[2]: val[0] for k, val in november.items() if k[0] == "operations.tickets_solved" and k[1] == "agent_team"}
    assert sum(teams.values()) == 2 and len(teams) == 1, teams
    channels = {k[2]: val[0] for k, val in november.items()
                if k[0] == "operations.tickets_solved" and k[1] == "ticket_channel"}
    assert channels == {"email": 2}

    dec = company["2020-12"]
    # December: 16988 (22 Dec) and the added 90001 came in; 90001 was resolved (4 Dec 10:00), 16988
    # is solved with no history: at its updated_at, 13 January 2021, so still open at the end
    assert dec["operations.tickets_created"][0] == 2
    assert dec["operations.tickets_solved"][0] == 1
    assert dec["operations.backlog"][0] == 1
    assert dec["operations.first_response_hours"][0] == pytest.approx(2.5, abs=1e-9)  # 10:00 → 12:30
    assert dec["operations.resolution_hours"][0] == pytest.approx(72.0, abs=1e-9)  # 1 Dec → 4 Dec 10:00
    assert dec["operations.reopen_rate"][:3] == (1.0, 1, 1)  # solved on the 2nd, open again on the 3rd
    # one public agent message but reopened: no first-contact resolution
    assert dec["operations.fcr_rate"][:3] == (0.0, 0, 1)
    # SLA: policy 1002, the lowest id with calendar-hours targets (1001's are business hours): urgent
    # first reply 120 min; 90001's took 150 min, so missed
    assert dec["operations.sla_compliance_rate"][:3] == (0.0, 0, 1)


def test_a_ticket_s_team_is_its_group_not_its_assignee_s(seeded):
    """Arthur Agent (1111) is in two groups, 360008426314 (Non-Support - (Billing Tickets), the lower
    id) and 360013670454 (Assignment Group 7); ticket 90002, his, is filed under Assignment Group 7
    and solved on 10 December 2020; ticket 90003, filed under no group, is his too, solved the same
    day. December's solved tickets by team: Assignment Group 7 holds 90002 (its own group, not the
    assignee's first), Non-Support - (Billing Tickets) holds 90003 (no group: its assignee's team)."""
    _, url, schema, _ = seeded
    prefix = f'"{schema}".' if schema else ""
    with engine_for(url).begin() as conn:
        conn.execute(text(f'CREATE TABLE {prefix}"group_member" (id BIGINT, user_id BIGINT, group_id BIGINT)'))
        conn.execute(text(f'INSERT INTO {prefix}"group_member" (id, user_id, group_id) VALUES '
                          "(1, 1111, 360008426314), (2, 1111, 360013670454)"))
        conn.execute(text(
            f'INSERT INTO {prefix}"ticket" (id, created_at, updated_at, status, priority, type, via_channel, '
            "assignee_id, group_id) VALUES "
            "(90002, '2020-12-08 10:00:00', '2020-12-10 10:00:00', 'solved', 'normal', 'incident', 'email', 1111, "
            "360013670454), (90003, '2020-12-08 11:00:00', '2020-12-10 11:00:00', 'solved', 'normal', 'incident', "
            "'email', 1111, NULL)"))
        conn.execute(text(
            f'INSERT INTO {prefix}"ticket_field_history" (field_name, ticket_id, updated, value) VALUES '
            "('status', 90002, '2020-12-10 10:00:00', 'solved'), ('status', 90003, '2020-12-10 11:00:00', 'solved')"))
    december = values(ReportPeriod.parse("monthly", "2020-12"))
    teams = {k[2]: v[0] for k, v in december.items() if k[0] == "operations.tickets_solved" and k[1] == "agent_team"}
    assert teams.get("Assignment Group 7") == 1, teams
    assert teams.get("Non-Support - (Billing Tickets)") == 1, teams


def test_a_helpdesk_without_sla_policies_loses_only_sla_compliance(seeded, capsys):
    """`sla_policy_metric_history` is optional in Fivetran's package (`using_sla_policy_metric_history`):
    without it the check passes, says so, and only SLA compliance is n/a, with the reason."""
    _, url, schema, _ = seeded
    with engine_for(url).begin() as conn:
        conn.execute(text(f'DROP TABLE {f"{chr(34)}{schema}{chr(34)}." if schema else ""}"sla_policy_metric_history"'))
    out = checked(seeded, ADAPTER, "helpdesk", capsys)
    assert "not synced (optional): sla_policy_metric_history: no SLA policies are synced" in out, out
    dec = {k[0]: val for k, val in values(ReportPeriod.parse("monthly", "2020-12")).items() if k[1] == ""}
    assert dec["operations.sla_compliance_rate"][0] is None
    assert dec["operations.sla_compliance_rate"][3] == (
        "not tracked: no SLA policy with calendar-hours first_reply_time targets is synced (sla_policy_metric_history)")
    assert dec["operations.tickets_solved"][0] == 1 and dec["operations.reopen_rate"][:3] == (1.0, 1, 1)


def test_freshness_is_judged_by_the_sync_not_by_a_quiet_month(seeded):
    """November 2020 is quiet (its newest record, 11071's resolution on the 14th, is over two weeks
    before the end): by the records the gate would stop it as unfinished; the sync stamps (newest
    `_fivetran_synced` of ticket, user and group: the group rows', 2021-01-19 20:08:24.256) say the load
    got past the month, so it passes; a sync that stalled before the month's end stops it."""
    crm, url, schema, _ = seeded
    november = ReportPeriod.parse("monthly", "2020-11")
    result = compute_area("operations", november)
    assert result.latest_sync_ts == datetime(2021, 1, 19, 20, 8, 24, 256000)
    # by its records (11071's resolution, 14 November) the helpdesk would look unfinished
    assert result.latest_source_ts == datetime(2020, 11, 14, 11, 1, 27)  # shown with the run
    assert check_freshness(november, result.latest_source_ts, GateConfig())[0].level == "fail"
    assert result.latest_unsynced_ts is None  # the area's other source, the empty reference CRM, has no record
    assert check_freshness(november, result.latest_unsynced_ts, GateConfig(), result.latest_sync_ts) == []

    prefix = f'"{schema}".' if schema else ""
    with engine_for(url).begin() as conn:
        for name in ("ticket", "user", "group"):
            conn.execute(text(f"UPDATE {prefix}\"{name}\" SET _fivetran_synced = '2020-11-20 06:00:00'"))
    stalled = compute_area("operations", november)
    assert stalled.latest_sync_ts == datetime(2020, 11, 20, 6, 0)
    (finding,) = check_freshness(november, stalled.latest_unsynced_ts, GateConfig(), stalled.latest_sync_ts)
    assert finding.level == "fail" and "the sync looks stalled" in finding.message
