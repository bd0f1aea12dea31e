"""The same SQL files on SQLite, PostgreSQL and MariaDB: same rows, same KPI values."""

from __future__ import annotations

import logging
import math
from datetime import date

import pytest
from sqlalchemy import text

from crm_kpis import compute
from crm_kpis.compute import compute_area
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import loading, reading
from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.loading import load_extracts
from crm_kpis.sources.sql_files import load_sql

PERIODS = [
    ReportPeriod.parse("monthly", "2026-10"),
    ReportPeriod("daily", date(2026, 10, 25), "Europe/Berlin"),  # the 25-hour day
    ReportPeriod("daily", date(2026, 3, 29), "Europe/Berlin"),  # the 23-hour day
]
SETUPS = ("production", "swapped")


@pytest.fixture()
def use(monkeypatch, engines):
    def switch(setup: str) -> None:
        # the extracts and the tracking signals both: each setup is judged on its own engine alone
        for module in (loading, compute):
            monkeypatch.setattr(module, "engine_for", lambda conn_id: engine_for(engines[setup][conn_id]))
    return switch


@pytest.mark.parametrize("period", PERIODS, ids=str)
def test_every_extract_reads_the_same_rows_on_every_engine(use, period):
    counts = {}
    for setup in ("sqlite", *SETUPS):
        use(setup)
        loaded = load_extracts(set(EXTRACTS), period)
        counts[setup] = (loaded.rows_read, loaded.rejected)
        assert not any(reading._ADBC_IDLE.values())  # no source session outlives the task's reads
    assert counts["production"] == counts["sqlite"]
    assert counts["swapped"] == counts["sqlite"]
    assert sum(counts["sqlite"][0].values()) > 1000


@pytest.mark.parametrize("period", PERIODS, ids=str)
def test_kpi_values_agree_across_engines(use, period):
    """The differential test: every value, numerator and denominator to 1e-9."""
    results = {}
    for setup in ("sqlite", *SETUPS):
        use(setup)
        results[setup] = {(v.kpi_id, v.dimension, v.member): (v.value, v.numerator, v.denominator)
                          for area in ("marketing", "sales", "operations") for v in compute_area(area, period).values}
    worst = 0.0
    for setup in SETUPS:
        assert results[setup].keys() == results["sqlite"].keys()
        for key, expected in results["sqlite"].items():
            for a, b in zip(expected, results[setup][key], strict=True):
                assert (a is None) == (b is None), (setup, key, expected, results[setup][key])
                if a is not None:
                    assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (setup, key, a, b)
                    worst = max(worst, abs(a - b) / max(1.0, abs(a)))
    logging.getLogger(__name__).warning("%s: %d values, max relative difference %.2e", period,
                                        len(results["sqlite"]), worst)


PERIOD_INDEXES = {
    "crm/orders.sql": "ix_orders_ordered_at",
    "crm/leads.sql": "ix_leads_created_at",
    "crm/email_messages.sql": "ix_email_messages_sent_at",
    "crm/survey_responses.sql": "ix_survey_responses_responded_at",
    "crm/opportunities_closed.sql": "ix_opportunities_closed_at",
    "crm/proposals.sql": "ix_opportunities_proposal_sent_at",
    "crm/marketing_spend.sql": "ix_marketing_spend_date",
    "crm/sales_calls.sql": "ix_sales_activities_occurred_at",
}


@pytest.mark.parametrize("sql_file", sorted(PERIOD_INDEXES))
def test_period_filters_can_use_their_index_on_postgresql(engines, sql_file):
    """With sequential scans priced out, the plan must reach the rows through the period index:
    the filter is sargable (no function around the column) and the documented index serves it."""
    engine = engine_for(engines["production"]["crm_db"])
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(text("EXPLAIN " + load_sql(sql_file, "postgresql")),
                                                     PERIODS[0].sql_params()))
    assert PERIOD_INDEXES[sql_file] in plan, plan
