"""The fivetran_zendesk adapter on SQLite: a synced Zendesk read as the reference helpdesk.

- differential: the demo business written in Zendesk's synced layout (crm_kpis.tools.demo.layouts) gives,
  through the adapter, the same operations KPIs as its reference layout, to 1e-9, company-wide and
  per member, monthly and daily; the KPIs the adapter cannot give are n/a with its reason;
- a small hand-made synced set with the awkward cases (a ticket solved twice, one reopened and open
  again, a deleted ticket, an agent in two groups, an agent's description that is no reply, text
  ids, an old SLA version, business-hours targets, a target stored as text), worked out by hand;
- a database that lacks a synced table or column fails in the adapter's terms;
- the coverage table in the README is the one the adapter's declaration gives.
(On PostgreSQL and MariaDB: tests/servers/test_adapters_servers.py.)
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from crm_kpis.compute import compute_area
from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.adapters import load_adapter
from crm_kpis.sources.coverage import coverage_table
from tests.integration.adapter_helpers import hand_made_source, point, values

ADAPTER = "fivetran_zendesk"


# --- a hand-made synced Zendesk, worked out by hand -----------------------------------------------
HAND_MADE = """
CREATE TABLE ticket (id TEXT, created_at TEXT, status TEXT, priority TEXT, type TEXT, via_channel TEXT,
                     assignee_id TEXT, requester_id TEXT, _fivetran_deleted INTEGER);
CREATE TABLE ticket_field_history (ticket_id TEXT, field_name TEXT, value TEXT, updated TEXT, user_id TEXT);
CREATE TABLE ticket_comment (id TEXT, ticket_id TEXT, user_id TEXT, created TEXT, public INTEGER,
                             _fivetran_deleted INTEGER);
CREATE TABLE "user" (id TEXT, name TEXT, role TEXT, _fivetran_deleted INTEGER);
CREATE TABLE "group" (id TEXT, name TEXT, _fivetran_deleted INTEGER);
CREATE TABLE group_member (id TEXT, user_id TEXT, group_id TEXT, _fivetran_deleted INTEGER);
CREATE TABLE sla_policy_metric_history ("index" INTEGER, sla_policy_id TEXT, sla_policy_updated_at TEXT,
                                        business_hours INTEGER, metric TEXT, priority TEXT, target TEXT);
INSERT INTO "user" VALUES ('a1', 'Ann', 'agent', 0), ('a2', 'Bo', 'admin', 0), ('u1', 'U1', 'end-user', 0),
                          ('u2', 'U2', 'end-user', 0), ('u3', 'U3', 'end-user', 0);
INSERT INTO "group" VALUES ('g1', 'Tier 1', 0), ('g2', 'Tier 2', 0);
-- Ann is in both groups (the one of lowest id counts: Tier 1); Bo's old Tier 1 membership is deleted
INSERT INTO group_member VALUES ('m1', 'a1', 'g2', 0), ('m2', 'a1', 'g1', 0), ('m3', 'a2', 'g2', 0),
                                ('m4', 'a2', 'g1', 1);
INSERT INTO ticket VALUES
  ('z1', '2026-10-01 09:00:00', 'solved', 'normal', 'question', 'email', 'a1', 'u1', 0),
  ('z2', '2026-10-03 08:00:00', 'closed', 'high', 'incident', 'voice', 'a2', 'u2', 0),
  ('z3', '2026-10-05 08:00:00', 'solved', 'normal', 'question', 'email', 'a1', 'u3', 1),
  ('z4', '2026-10-20 08:00:00', 'new', 'low', 'task', 'chat', 'a1', 'u3', 0),
  ('z5', '2026-10-10 10:00:00', 'solved', 'urgent', 'problem', 'web', 'a1', 'u1', 0),
  ('z6', '2026-10-12 08:00:00', 'open', 'normal', 'question', 'email', 'a2', 'u2', 0);
INSERT INTO ticket_field_history VALUES
  ('z1', 'status', 'new', '2026-10-01 09:00:00', 'u1'), ('z1', 'status', 'open', '2026-10-01 10:30:00', 'a1'),
  ('z1', 'status', 'solved', '2026-10-02 09:00:00', 'a1'), ('z1', 'priority', 'normal', '2026-10-01 09:00:00', 'u1'),
  ('z2', 'status', 'new', '2026-10-03 08:00:00', 'u2'), ('z2', 'status', 'open', '2026-10-03 09:00:00', 'a2'),
  ('z2', 'status', 'solved', '2026-10-03 10:00:00', 'a2'), ('z2', 'status', 'open', '2026-10-03 12:00:00', 'u2'),
  ('z2', 'status', 'solved', '2026-10-04 08:00:00', 'a2'), ('z2', 'status', 'closed', '2026-10-07 08:00:00', 'a2'),
  ('z3', 'status', 'new', '2026-10-05 08:00:00', 'u3'), ('z3', 'status', 'solved', '2026-10-05 09:00:00', 'a1'),
  ('z4', 'status', 'new', '2026-10-20 08:00:00', 'u3'),
  ('z5', 'status', 'new', '2026-10-10 10:00:00', 'a1'), ('z5', 'status', 'solved', '2026-10-10 13:00:00', 'a1'),
  ('z6', 'status', 'new', '2026-10-12 08:00:00', 'u2'), ('z6', 'status', 'solved', '2026-10-13 08:00:00', 'a2'),
  ('z6', 'status', 'open', '2026-10-14 08:00:00', 'u2');
INSERT INTO ticket_comment VALUES
  ('c1', 'z1', 'u1', '2026-10-01 09:00:00', 1, 0), ('c2', 'z1', 'a1', '2026-10-01 10:30:00', 1, 0),
  ('c3', 'z2', 'u2', '2026-10-03 08:00:00', 1, 0), ('c4', 'z2', 'a2', '2026-10-03 08:10:00', 0, 0),
  ('c5', 'z2', 'a2', '2026-10-03 09:00:00', 1, 0), ('c6', 'z2', 'u2', '2026-10-03 12:00:00', 1, 0),
  ('c7', 'z2', 'a2', '2026-10-03 13:00:00', 1, 0), ('c8', 'z3', 'u3', '2026-10-05 08:00:00', 1, 0),
  ('c9', 'z3', 'a1', '2026-10-05 08:30:00', 1, 0), ('c10', 'z4', 'u3', '2026-10-20 08:00:00', 1, 0),
  ('c11', 'z5', 'a1', '2026-10-10 10:00:00', 1, 0), ('c12', 'z5', 'a1', '2026-10-10 12:00:00', 1, 0),
  ('c13', 'z6', 'u2', '2026-10-12 08:00:00', 1, 0), ('c14', 'z6', 'a2', '2026-10-12 08:30:00', 1, 0),
  ('c15', 'z1', 'a1', '2026-10-01 09:30:00', 1, 1);
-- policy p1: an old version (high: 30 min), the current one (high: 60), business-hours targets that
-- are not read; policy p2 (a higher id) is not read either; targets synced as text
INSERT INTO sla_policy_metric_history VALUES
  (0, 'p1', '2025-01-01 00:00:00', 0, 'first_reply_time', 'high', '30'),
  (1, 'p1', '2025-01-01 00:00:00', 0, 'requester_wait_time', 'high', '600'),
  (0, 'p1', '2026-01-01 00:00:00', 0, 'first_reply_time', 'normal', '120'),
  (1, 'p1', '2026-01-01 00:00:00', 0, 'requester_wait_time', 'normal', '1440'),
  (2, 'p1', '2026-01-01 00:00:00', 0, 'first_reply_time', 'high', '60'),
  (3, 'p1', '2026-01-01 00:00:00', 0, 'requester_wait_time', 'high', '1440'),
  (4, 'p1', '2026-01-01 00:00:00', 0, 'first_reply_time', 'urgent', '60'),
  (5, 'p1', '2026-01-01 00:00:00', 0, 'requester_wait_time', 'urgent', '240'),
  (6, 'p1', '2026-01-01 00:00:00', 1, 'first_reply_time', 'urgent', '600'),
  (0, 'p2', '2026-01-01 00:00:00', 0, 'first_reply_time', 'urgent', '1');
"""


@pytest.fixture()
def hand_made(tmp_path, monkeypatch):
    return hand_made_source(tmp_path, monkeypatch, ADAPTER, HAND_MADE)


def test_the_hand_made_zendesk_worked_out_by_hand(hand_made):
    v = values(ReportPeriod.parse("monthly", "2026-10"))
    company = {k[0]: val for k, val in v.items() if k[1] == ""}
    # created in October, the deleted z3 left out: z1 z2 z4 z5 z6
    assert company["operations.tickets_created"][0] == 5
    # resolved in October: z1 (2 Oct), z2 (its last solve, 4 Oct), z5; z6 was solved, then reopened: open
    assert company["operations.tickets_solved"][0] == 3
    assert company["operations.backlog"][0] == 2  # z4 and z6 open at the end
    # first replies: z1 1.5 h (the deleted comment at 0.5 h is not one), z2 1 h (the private note is
    # not), z5 2 h (Ann's description at 0 h is no reply), z6 0.5 h: median of 0.5, 1, 1.5, 2
    assert company["operations.first_response_hours"][0] == pytest.approx((1 + 1.5) / 2, abs=1e-9)
    assert company["operations.resolution_hours"][0] == pytest.approx((24 + 24 + 3) / 3, abs=1e-9)
    assert company["operations.reopen_rate"][:3] == (pytest.approx(1 / 3), 1, 3)  # z2 was reopened once
    # one public agent message and no reopen: z1 only (z5 has two: description and reply)
    assert company["operations.fcr_rate"][:3] == (pytest.approx(1 / 3), 1, 3)
    # SLA (current p1, calendar hours): z1 normal 90 ≤ 120 and 1440 ≤ 1440: met; z2 high 60 ≤ 60 and
    # 1440 ≤ 1440: met (the old 30-minute version would have missed); z5 urgent 120 > 60: missed
    assert company["operations.sla_compliance_rate"][:3] == (pytest.approx(2 / 3), 2, 3)
    assert company["operations.solved_same_day_rate"][:3] == (pytest.approx(1 / 3), 1, 3)  # z5
    solved = {k[2]: val[0] for k, val in v.items() if k[0] == "operations.tickets_solved" and k[1] == "agent_team"}
    assert solved == {"Tier 1": 2, "Tier 2": 1}  # Ann (two groups) in Tier 1: z1, z5; Bo: z2
    channels = {k[2]: val[0] for k, val in v.items() if k[0] == "operations.tickets_created" and k[1] == "ticket_channel"}
    assert channels == {"email": 2, "phone": 1, "chat": 1, "web": 1}  # voice is the phone
    assert company["operations.inbound_calls"][3] == \
        "not tracked: not recorded by fivetran_zendesk (Zendesk Talk calls are not read)"
    assert company["operations.complaint_resolution_rate"][3].startswith("not tracked: Zendesk has no complaint")


def test_a_missing_synced_column_is_named_in_the_adapters_terms(hand_made):
    with sqlite3.connect(hand_made) as conn:
        conn.execute("ALTER TABLE ticket_field_history DROP COLUMN field_name")
    result = compute_area("operations", ReportPeriod.parse("monthly", "2026-10"))
    why = "fivetran_zendesk needs ticket_field_history.field_name; the column is missing"
    assert result.broken == {"helpdesk_db: fivetran_zendesk": f"helpdesk_db: fivetran_zendesk cannot be read ({why})"}
    notes = {v.kpi_id: v.note for v in result.values if v.dimension == ""}
    assert notes["operations.tickets_created"] == f"not tracked: {result.broken['helpdesk_db: fivetran_zendesk']}"


def test_an_adapter_on_the_wrong_connection_or_misspelt_is_refused(tmp_path, monkeypatch):
    from crm_kpis.sources.connections import source_settings
    from crm_kpis.sources.errors import SourceConfigError

    point(monkeypatch, f"sqlite:///{tmp_path / 'crm.db'}", f"sqlite:///{tmp_path / 'h.db'}", helpdesk_adapter=ADAPTER)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "crm.db"),
                                                          "extra": {"adapter": "fivetran_zendesk"}}))
    with pytest.raises(SourceConfigError, match="reads a synced helpdesk, not the crm"):
        source_settings("crm_db")
    monkeypatch.setenv("AIRFLOW_CONN_HELPDESK_DB", json.dumps({"conn_type": "sqlite", "host": str(tmp_path / "h.db"),
                                                               "extra": {"adapter": "fivetran_zendsk"}}))
    with pytest.raises(SourceConfigError, match="'fivetran_zendsk' does not exist; the adapters are: reference, "):
        source_settings("helpdesk_db")


def test_the_readme_has_the_coverage_the_adapter_declares():
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert coverage_table(load_adapter(ADAPTER)) in readme
    done = subprocess.run([sys.executable, "-m", "crm_kpis.sources", "coverage", "--adapter", ADAPTER],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == coverage_table(load_adapter(ADAPTER)).strip()


def test_the_report_says_under_each_approximated_kpi_how_the_adapter_reads_it(hand_made):
    from crm_kpis.report.context import approximations_in_use

    said = approximations_in_use()
    assert set(said) == set(load_adapter(ADAPTER).approximations)
    assert said["operations.first_response_hours"].startswith(
        "From Zendesk Support synced by Fivetran (fivetran_zendesk): first reply = the first public comment")


def test_only_tickets_active_since_the_period_start_are_derived_and_no_value_changes(hand_made, monkeypatch):
    """tickets.sql derives a ticket's times only if it changed since the period's start. Proof: every
    October day, October and November give the values of the same helpdesk without `updated_at`
    (where every ticket is derived, nothing bounding it), with z2's updated_at stale (before its
    last solve and its close, as a sync may write it): a change in the status history or a comment
    since the start makes a ticket derived, not only its own updated_at. November has no activity at
    all: its backlog still holds z4 and z6, and the first reply is tracked (a signal reads all of
    history, whatever the period)."""
    import sqlite3

    days = [ReportPeriod.parse("daily", f"2026-10-{d:02d}") for d in range(1, 32)]
    periods = [*days, ReportPeriod.parse("monthly", "2026-10"), ReportPeriod.parse("monthly", "2026-11")]
    everything_derived = [values(p) for p in periods]
    with sqlite3.connect(hand_made) as conn:
        conn.executescript("""
            ALTER TABLE ticket ADD COLUMN updated_at TEXT;
            UPDATE ticket SET updated_at = (SELECT MAX(t) FROM (
                SELECT MAX(updated) AS t FROM ticket_field_history h WHERE h.ticket_id = ticket.id
                UNION ALL SELECT MAX(created) FROM ticket_comment c WHERE c.ticket_id = ticket.id));
            UPDATE ticket SET updated_at = '2026-10-03 12:00:00' WHERE id = 'z2';
        """)
        assert conn.execute("SELECT updated_at FROM ticket WHERE id = 'z6'").fetchone() == ("2026-10-14 08:00:00",)
    assert [values(p) for p in periods] == everything_derived
    november = {k[0]: v for k, v in everything_derived[-1].items() if k[1] == ""}
    assert november["operations.backlog"][0] == 2 and november["operations.tickets_solved"][0] == 0
    assert november["operations.first_response_hours"] == (  # no reply in it: tracked, none, and said so
        None, None, 0.0, "undefined: nothing in the period to compute it on (its denominator is 0)")
    october_4 = {k[0]: v for k, v in everything_derived[3].items() if k[1] == ""}
    assert october_4["operations.tickets_solved"][0] == 1  # z2, at its last solve (its updated_at is a day earlier)


def test_the_ticket_extracts_read_as_one_statement_are_those_read_one_by_one(hand_made, monkeypatch):
    """The four ticket extracts through the adapter (`read_together: [tickets]`) run as one statement;
    each comes back as its own read would: the same rows, types, exclusions and counts, a ticket
    resolved in 2099 (z7) excluded and counted in each extract that reads its resolution."""
    import sqlite3

    from crm_kpis.sources import loading, read_together

    with sqlite3.connect(hand_made) as conn:
        conn.executescript("""
            INSERT INTO ticket VALUES ('z7', '2026-10-15 08:00:00', 'solved', 'low', 'question', 'email', 'a1', 'u1', 0);
            INSERT INTO ticket_field_history VALUES ('z7', 'status', 'new', '2026-10-15 08:00:00', 'u1'),
                                                    ('z7', 'status', 'solved', '2099-01-01 00:00:00', 'a1');
        """)
    names = {"tickets_created", "tickets_first_response", "tickets_open", "tickets_resolved", "calls"}
    period = ReportPeriod.parse("monthly", "2026-10")
    sql_run: list[str] = []
    real = read_together.read_rows
    monkeypatch.setattr(read_together, "read_rows", lambda *a: sql_run.append(a[3]) or real(*a))
    together = loading.load_extracts(names, period)
    assert sql_run == ["helpdesk/tickets_created.sql + helpdesk/tickets_first_response.sql + "
                       "helpdesk/tickets_open.sql + helpdesk/tickets_resolved.sql"]
    monkeypatch.setattr(loading, "together", lambda names, sources: [])  # each read alone
    apart = loading.load_extracts(names, period)
    assert set(together.frames) == names
    for name in names:
        # the same values; on SQLite an integer column that another extract pads with NULLs arrives as
        # floats (PostgreSQL types the padding as the column: tests/servers, the same KPIs to 1e-9)
        pd.testing.assert_frame_equal(together.frames[name], apart.frames[name], check_dtype=False, obj=name)
    assert (together.rows_read, together.rejected, together.excluded, together.unreadable) == \
        (apart.rows_read, apart.rejected, apart.excluded, apart.unreadable)
    assert together.rejected["tickets_created"] == {"future_resolved_at": 1}  # z7, created in October
    assert together.excluded["tickets"]["future_resolved_at"] == {"keys": {"z7": 1}}
