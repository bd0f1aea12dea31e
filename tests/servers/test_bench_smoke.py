"""`make bench` at a tiny scale, to keep it working (timings are never asserted), and a check that
its plain-SQL baseline computes the same KPI values as the pipeline, so that it is a fair yardstick."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import create_engine, text

from crm_kpis.tools import bench
from crm_kpis.tools.demo.layouts import LAYOUTS
from tests.servers.conftest import MYSQL_ADMIN, PG_ADMIN, SUFFIX

SCALE = 0.3


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("CRM_KPIS_BENCH_PG_URL", PG_ADMIN.rsplit("/", 1)[0])
    mp.setenv("CRM_KPIS_BENCH_MYSQL_URL", MYSQL_ADMIN.rstrip("/"))
    mp.setenv("CRM_KPIS_BENCH_DB_PREFIX", f"kpitest_bench_{SUFFIX}")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    try:
        assert bench.main(["--scale", str(SCALE), "--regenerate", "--months-of-data", "13", "--backfill-months", "2",
                           "--backfill-days", "2", "--adapter-scale", "0.3", "--json", str(out)]) == 0
        yield json.loads(out.read_text()), bench.database_urls(SCALE)
    finally:
        urls = bench.database_urls(SCALE)
        adapters = [f"{bench.adapter_db_prefix()}_{layout.removeprefix('fivetran_')}_{k}"
                    for layout in LAYOUTS for k in ("crm", "reference", "synced")]
        adapters += [f"{bench.adapter_db_prefix()}_stack_{k}" for k in ("crm", "helpdesk", "synced")]
        mp.undo()
        for admin, keys in ((PG_ADMIN, ("crm", "helpdesk_pg", "warehouse")), (MYSQL_ADMIN, ("helpdesk",))):
            engine = create_engine(admin, isolation_level="AUTOCOMMIT")
            force = " WITH (FORCE)" if engine.dialect.name == "postgresql" else ""
            with engine.connect() as conn:
                for name in [urls[key].rsplit("/", 1)[1] for key in keys] + adapters:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
            engine.dispose()


def test_every_step_reports_time_memory_and_volume(bench_run):
    results, _urls = bench_run
    steps = results["steps"]
    assert set(steps) == {"generate", "floor", "monthly", "monthly_dag", "daily", "sql_baseline", "backfill", "clv",
                          "adapters", "pdf"}
    assert all(step["peak_rss_mb"] > 50 and step["wall_seconds"] > 0 for step in steps.values())
    # where each step's CPU went: its own processes did some work, and the database servers answered
    assert all(step["cpu"]["step_processes_seconds"] > 0 and step["cpu"]["rest_of_machine_seconds"] >= 0
               for step in steps.values())
    assert steps["floor"]["cpu"]["rest_of_machine_seconds"] > 0 and "where the CPU went" in bench.table(results)
    assert steps["floor"]["rows"] > 1000 and steps["monthly"]["rows_read"] >= steps["floor"]["rows"]
    assert steps["monthly"]["values_written"] > 300 and steps["pdf"]["pdf_bytes"] > 20_000
    dag = steps["monthly_dag"]  # the same month through three parallel area processes: the same volume
    assert dag["rows_read"] == steps["monthly"]["rows_read"] and dag["values_written"] == steps["monthly"]["values_written"]
    assert set(dag["areas"]) == {"marketing", "sales", "operations"}
    clv = steps["clv"]  # every buyer of the 13 months, read and fitted (or why not, at this tiny scale)
    assert clv["customers"] > 100 and clv["read_seconds"] > 0
    assert "bgnbd" in clv or clv["undefined"].endswith("the models need 30 or more")
    assert dag["areas_peak_sum_mb"] == pytest.approx(sum(a["peak_rss_mb"] for a in dag["areas"].values()), abs=0.2)
    assert steps["backfill"]["months"] == 2 and steps["backfill"]["days"] == 2
    assert len(steps["backfill"]["periods"]) == 4  # each period's own time, to see whether history depth costs
    # each adapter against its reference layout, on the three engines, and the composed Fivetran stack
    timings = steps["adapters"]["timings"]
    assert set(timings) == {f"{layout} on {engine}" for layout in LAYOUTS
                            for engine in ("sqlite", "postgresql", "mariadb")} | {"fivetran stack on postgresql"}
    assert all(t["reference"] > 0 and t[label.split(" on ")[0]] > 0 for label, t in timings.items())
    assert "zendesk adapter, mariadb" in bench.table(results) and "fivetran stack adapter, postgresql" in \
        bench.table(results)
    assert results["rows_total"] == sum(sum(v.values()) for k, v in results["rows"].items() if k != "helpdesk@postgresql")


def test_the_plain_sql_baseline_agrees_with_the_pipeline(bench_run):
    results, urls = bench_run
    baseline = results["steps"]["sql_baseline"]["values"]
    engine = create_engine(urls["warehouse"])
    with engine.connect() as conn:
        stored = {kpi.split(".", 1)[1]: value for kpi, value in conn.execute(text(
            "SELECT kpi_id, value FROM kpi_history WHERE grain = 'monthly' AND period_start = :p AND dimension = ''"),
            {"p": f"{results['month']}-01"})}
    engine.dispose()
    compared = {k: v for k, v in baseline.items() if k in stored}
    assert len(compared) >= 55, sorted(set(baseline) - set(stored))
    assert set(baseline) - set(stored) == {"resolution_hours_median"}  # stored beside the mean, as a breakdown
    assert results["steps"]["sql_baseline"]["kpis"] == len(compared)  # the count the table prints
    differ = {k: (v, stored[k]) for k, v in compared.items()
              if (v is None) != (stored[k] is None) or (v is not None and abs(v - stored[k]) > 1e-9 * max(1, abs(v)))}
    assert differ == {}
    # the variant with the pipeline's flags query gives the baseline's two rates, so its time compares
    flags = results["steps"]["sql_baseline"]["buyer_flags_query"]["values"]
    assert set(flags) == {"cross_sell_rate", "upsell_rate"}
    assert flags == pytest.approx({k: baseline[k] for k in flags}, abs=1e-12)
    assert "cross-sell as buyer_flags.sql" in bench.table(results)
    # the same work on both sides: the baseline also reads what the lifetime-value models read, one
    # row per buyer and per customer as the pipeline's extracts (the fits are timed in the clv step)
    inputs = results["steps"]["sql_baseline"]["model_inputs"]["queries"]
    assert inputs["purchase_histories"]["rows"] == results["steps"]["clv"]["customers"]
    assert inputs["customer_lifetimes"]["rows"] == results["steps"]["floor"]["extracts"]["customer_lifetimes"]["rows"]
    assert "without the model fits" in bench.table(results) and "model inputs: purchase_histories" in bench.table(results)


def test_the_adapters_step_can_time_one_adapter_on_one_engine(tmp_path, monkeypatch):
    """`--adapter-layouts fivetran_zendesk --adapter-engines sqlite`: that row only (no stack, which
    needs every layout), and a misspelt name refused in the flag's terms."""
    import logging

    monkeypatch.setenv("CRM_KPIS_HOME", str(tmp_path))
    for name in ("AIRFLOW_CONN_CRM_DB", "AIRFLOW_CONN_HELPDESK_DB"):  # the step points them (restored after)
        monkeypatch.setenv(name, "")
    try:
        out = bench.step_adapters(0.3, "2026-10", adapter_scale=0.3, repeats=1, layouts="fivetran_zendesk",
                                  engines="sqlite")
    finally:
        logging.disable(logging.NOTSET)  # the step quiets logging for its process
    assert set(out["timings"]) == {"fivetran_zendesk on sqlite"}
    assert out["timings"]["fivetran_zendesk on sqlite"]["reference"] > 0
    with pytest.raises(SystemExit, match="unknown fivetran_zendsk"):
        bench.step_adapters(0.3, "2026-10", adapter_scale=0.3, layouts="fivetran_zendsk")
