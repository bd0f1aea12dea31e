"""The KPI catalogue and targets in the warehouse: what an analyst joins the history to, kept in
step with the code and reports.yaml by the publish task, and each history row's definition version."""

from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select, text

from crm_kpis.compute import AreaResult
from crm_kpis.config.settings import Settings, Target, load_settings
from crm_kpis.history import catalogue
from crm_kpis.history.store import ensure_schema, kpi_catalogue, kpi_targets, publish_period, stage_area
from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import KpiValue
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.connections import engine_for

OCT = ReportPeriod.parse("monthly", "2026-10")
AREAS = ("marketing", "sales", "operations")


@pytest.fixture()
def warehouse(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ensure_schema(engine)
    return engine


def _settings(**targets):
    base = load_settings()
    return Settings(**{**base.__dict__, "targets": targets})


def _count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_one_row_per_kpi_and_grain_with_its_words_units_and_target(warehouse):
    settings = _settings(monthly={"sales.revenue": Target(1_000_000, 900_000, {("segment", "smb"): Target(250_000)})},
                         daily={"operations.first_response_hours": Target(2.0)})
    out = catalogue.refresh(warehouse, settings)
    # by hand: a daily KPI ("D") is computed daily and monthly (two rows), a monthly one once
    daily = sum(1 for k in REGISTRY.values() if k.grain == "D")
    monthly_only = sum(1 for k in REGISTRY.values() if k.grain == "M")
    assert _count(warehouse, kpi_catalogue) == 2 * daily + monthly_only == out["rewritten"]["kpi_catalogue"]
    with warehouse.connect() as conn:
        revenue = conn.execute(select(kpi_catalogue).where(kpi_catalogue.c.kpi_id == "sales.revenue",
                                                           kpi_catalogue.c.grain == "monthly")).mappings().one()
        targets = conn.execute(select(kpi_targets.c.kpi_id, kpi_targets.c.grain, kpi_targets.c.dimension,
                                      kpi_targets.c.member, kpi_targets.c.target, kpi_targets.c.at_risk)
                               .order_by(kpi_targets.c.kpi_id, kpi_targets.c.member)).all()
    kpi = REGISTRY["sales.revenue"]
    assert (revenue["name"], revenue["area"], revenue["unit"], revenue["direction"]) == (kpi.name, "sales", "money", "up")
    assert (revenue["formula"], revenue["description"]) == (kpi.formula, kpi.description)
    assert revenue["breakdowns"] == ",".join(kpi.breakdowns) and bool(revenue["flow"]) is kpi.flow
    assert (revenue["target"], revenue["at_risk"]) == (1_000_000, 900_000)
    assert revenue["definition_version"] == kpi.definition_version and len(kpi.definition_version) == 12
    assert [tuple(t) for t in targets] == [
        ("operations.first_response_hours", "daily", "", "", 2.0, None),
        ("sales.revenue", "monthly", "", "", 1_000_000, 900_000),
        ("sales.revenue", "monthly", "segment", "smb", 250_000, None)]


def test_a_current_catalogue_is_left_alone_and_a_changed_target_rewrites_only_the_targets(warehouse):
    settings = _settings(monthly={"sales.revenue": Target(1_000_000)})
    catalogue.refresh(warehouse, settings)
    with warehouse.connect() as conn:
        stamped = conn.execute(select(func.max(kpi_catalogue.c.updated_at))).scalar_one()
    assert catalogue.refresh(warehouse, settings)["rewritten"] == {}
    moved = catalogue.refresh(warehouse, _settings(monthly={"sales.revenue": Target(1_200_000)}))
    # the company-wide target is in both tables; nothing else changed
    assert moved["rewritten"] == {"kpi_catalogue": _count(warehouse, kpi_catalogue), "kpi_targets": 1}
    assert catalogue.refresh(warehouse, _settings())["rewritten"] == {"kpi_catalogue": _count(warehouse, kpi_catalogue),
                                                                      "kpi_targets": 0}
    assert _count(warehouse, kpi_targets) == 0
    with warehouse.connect() as conn:
        assert conn.execute(select(func.max(kpi_catalogue.c.updated_at))).scalar_one() >= stamped


def test_a_changed_formula_or_code_is_a_new_definition_version_and_wording_is_not():
    kpi = REGISTRY["sales.win_rate"]
    assert kpi.definition_version == REGISTRY["sales.win_rate"].definition_version  # stable
    assert replace(kpi, formula=kpi.formula + " (won only)").definition_version != kpi.definition_version
    assert replace(kpi, compute=REGISTRY["sales.revenue"].compute).definition_version != kpi.definition_version
    assert replace(kpi, name="Win %", description="Reworded.").definition_version == kpi.definition_version
    # the declaration above the function (name, description, report flags) is not its code
    from crm_kpis.kpis.base import compute_source

    assert compute_source(REGISTRY["sales.clv"].compute).startswith("def clv(")
    assert "@kpi(" not in compute_source(REGISTRY["sales.win_rate"].compute)


def test_publish_stamps_each_history_row_with_its_definition_and_the_join_reads_names_and_targets(warehouse):
    run = "scheduled__2026-11-01T00:00:00+00:00"
    for area in AREAS:
        values = [KpiValue("sales.revenue", 1_100_000.0, None, None), KpiValue("sales.revenue", 300_000.0, None, None,
                                                                               "segment", "smb")] if area == "sales" else []
        stage_area(warehouse, run, AreaResult(area, OCT, values, {}, {}))
    publish_period(warehouse, OCT, run, AREAS)
    catalogue.refresh(warehouse, _settings(monthly={"sales.revenue": Target(1_000_000, None,
                                                                            {("segment", "smb"): Target(250_000)})}))
    # the README's query: the history beside names, units and targets
    query = text("""
        SELECT h.period_start, c.name, h.member, h.value, c.unit, t.target,
               h.definition_version = c.definition_version AS current_definition
        FROM kpi_history h
        JOIN kpi_catalogue c ON c.kpi_id = h.kpi_id AND c.grain = h.grain
        LEFT JOIN kpi_targets t ON t.kpi_id = h.kpi_id AND t.grain = h.grain
                               AND t.dimension = h.dimension AND t.member = h.member
        WHERE h.kpi_id = 'sales.revenue' ORDER BY h.member""")
    with warehouse.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    assert got == [("2026-10-01", "Revenue", "", 1_100_000.0, "money", 1_000_000.0, 1),
                   ("2026-10-01", "Revenue", "smb", 300_000.0, "money", 250_000.0, 1)]
    assert date.fromisoformat(got[0][0]) == OCT.start_date
