"""The differential tests of the adapters, shared by the SQLite tests (tests/integration) and the
server ones (tests/servers): the demo business written in the reference layout and in an adapter's
synced layout, its KPIs computed through both and compared."""

from __future__ import annotations

import json

from crm_kpis.compute import compute_area
from crm_kpis.kpis import REGISTRY
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.adapters import load_adapter
from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.coverage import NOT_RECORDED, PARTIAL, coverage, hidden_breakdowns
from crm_kpis.tools.demo.layouts import AS_RECORDED, LAYOUTS, load_layout
from crm_kpis.tools.demo.loader import load_database

#: the areas whose KPIs read each database
AREAS = {"helpdesk": ("operations",), "crm": ("sales", "marketing")}
PERIODS = [ReportPeriod.parse("monthly", m) for m in ("2026-08", "2026-09", "2026-10")] + \
          [ReportPeriod.parse("daily", d) for d in ("2026-10-05", "2026-10-31")]


#: values compared at least, per adapter (an ad network fills spend alone: spend, company-wide and
#: by channel, in each period; Stripe the billing KPIs, without segment, rep or channel)
MIN_COMPARED = {"fivetran_google_ads": 10, "fivetran_facebook_ads": 10, "fivetran_stripe": 60, "fivetran_shopify": 40}


#: the KPIs the differential tests compared (for a reader who wants to see which)
COMPARED_KPIS: set[str] = set()


def point(monkeypatch, crm: str, helpdesk: str, crm_adapter: str | None = None, crm_schema: str | None = None,
          helpdesk_adapter: str | None = None, helpdesk_schema: str | None = None,
          crm_adapters: list[dict] | None = None, helpdesk_adapters: list[dict] | None = None) -> None:
    """The two source connections, as Airflow reads them from the environment (adapter and schema
    in their extras; `crm_adapters`: the CRM as a stack, crm_kpis.sources.stack)."""
    def conn(url: str, extra: dict) -> str:
        if url.startswith("sqlite"):
            return json.dumps({"conn_type": "sqlite", "host": url.removeprefix("sqlite:///"), "extra": extra})
        return url.replace("postgresql+psycopg://", "postgresql://").replace("mysql+pymysql://", "mysql://") + \
            ("?__extra__=" + json.dumps(extra) if extra else "")

    def extra(name: str | None, where: str | None) -> dict:
        return {k: v for k, v in (("adapter", name), ("schema", where)) if v}
    crm_extra = {"adapters": crm_adapters} if crm_adapters else extra(crm_adapter, crm_schema)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_DB", conn(crm, crm_extra))
    helpdesk_extra = {"adapters": helpdesk_adapters} if helpdesk_adapters else extra(helpdesk_adapter, helpdesk_schema)
    monkeypatch.setenv("AIRFLOW_CONN_HELPDESK_DB", conn(helpdesk, helpdesk_extra))


def values(period: ReportPeriod, area: str = "operations") -> dict[tuple[str, str, str], tuple]:
    return {(v.kpi_id, v.dimension, v.member): (v.value, v.numerator, v.denominator, v.note)
            for v in compute_area(area, period).values}


def company(period: ReportPeriod, area: str = "sales") -> dict[str, tuple]:
    """The company-wide values of an area: KPI id -> (value, numerator, denominator, note)."""
    return {k[0]: v for k, v in values(period, area).items() if k[1] == ""}


def same(a: float, b: float) -> bool:
    """Equal to 1e-9, or to 1e-12 of the value (a sum of predicted lifetime values in the millions,
    fitted on amounts a synced layout computes in another order of floating-point operations: a
    price less its refunds is the same amount to the last cent, not always to the last bit)."""
    return abs(a - b) <= max(1e-9, 1e-12 * abs(a))


def assert_same_through_the_adapter(reference: dict, adapted: dict, period: ReportPeriod, adapter: str | list) -> int:
    """Every covered KPI equal to 1e-9 (value, numerator, denominator); the others n/a with the
    adapter's reason (`adapter`: its name, or the stacks the connections are pointed at). Returns the
    number of values compared."""
    layouts = [load_adapter(adapter)] if isinstance(adapter, str) else adapter
    status = {kpi: s for layout in layouts for kpi, _, s, _ in coverage(layout)}
    compared = 0
    for key in sorted(set(reference) | set(adapted)):
        kpi = key[0]
        if kpi not in status:
            continue  # a KPI of the other connection, read as it was
        if key[1] in hidden_breakdowns(REGISTRY[kpi]):  # the layouts the demo writes have every optional table
            assert key not in adapted, (period, key)  # a breakdown the layout cannot give is left out
            continue
        if status.get(kpi) == NOT_RECORDED:
            if key[1] == "":
                assert adapted[key][0] is None and adapted[key][3].startswith("not tracked"), (period, key, adapted[key])
            continue
        if status.get(kpi) == PARTIAL:
            assert key[1] != "" or "partial" in (adapted[key][3] or ""), (period, key, adapted.get(key))
            continue
        assert key in reference and key in adapted, (period, key, reference.get(key), adapted.get(key))
        for a, b in zip(reference[key][:3], adapted[key][:3], strict=True):
            assert (a is None) == (b is None) and (a is None or same(a, b)), (period, key, reference[key], adapted[key])
        assert reference[key][3] == adapted[key][3], (period, key)
        compared += 1
        COMPARED_KPIS.add(kpi)
    return compared



def write_layouts(data: dict, adapter: str, other_url: str, reference_url: str, synced_url: str,
                  schema: str | None = None) -> None:
    """The demo business: the other database as it is, the adapter's one in both layouts."""
    database, writer = LAYOUTS[adapter]
    other = "crm" if database == "helpdesk" else "helpdesk"
    data = {**data, database: AS_RECORDED.get(adapter, dict)(data[database])}  # the business the layout can hold
    load_database(engine_for(other_url), other, data[other])
    load_database(engine_for(reference_url), database, data[database])
    load_layout(engine_for(synced_url), writer(data[database]), schema)


def write_original_names(data: dict, other_url: str, reference_url: str, synced_url: str,
                         schema: str | None = None) -> dict[str, int]:
    """The demo business with its CRM in Salesforce's synced layout under Salesforce's own API
    names (`Opportunity`, `CreatedDate`: Fivetran's option to keep them), the rest as usual."""
    from crm_kpis.sources.adapters import api_case

    load_database(engine_for(other_url), "helpdesk", data["helpdesk"])
    load_database(engine_for(reference_url), "crm", data["crm"])
    frames = LAYOUTS["fivetran_salesforce"][1](data["crm"])
    original = {api_case(t): f.rename(columns=lambda c: c if c.startswith("_") else api_case(c))
                for t, f in frames.items()}
    return load_layout(engine_for(synced_url), original, schema)


def compare_layouts(monkeypatch, adapter: str, other_url: str, reference_url: str, synced_url: str,
                    schema: str | None = None) -> int:
    """Every period and area of the adapter's database through both layouts; values compared."""
    database = LAYOUTS[adapter][0]
    compared = 0
    for period in PERIODS:
        for area in AREAS[database]:
            point(monkeypatch, **{("helpdesk" if database == "crm" else "crm"): other_url, database: reference_url})
            expected = values(period, area)
            point(monkeypatch, **{("helpdesk" if database == "crm" else "crm"): other_url, database: synced_url},
                  **{f"{database}_adapter": adapter, f"{database}_schema": schema})
            compared += assert_same_through_the_adapter(expected, values(period, area), period, adapter)
    return compared


def hand_made_source(tmp_path, monkeypatch, adapter: str, script: str):
    """A hand-made synced database (SQLite, the test's own script) read through `adapter`, the other
    connection an empty reference database (its KPIs are not the test's). Returns its file."""
    import sqlite3

    database = LAYOUTS[adapter][0]
    path = tmp_path / f"{adapter}.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(script)
    other = "crm" if database == "helpdesk" else "helpdesk"
    other_url = f"sqlite:///{tmp_path / other}.db"
    load_database(engine_for(other_url), other, {})
    point(monkeypatch, **{other: other_url, database: f"sqlite:///{path}"}, **{f"{database}_adapter": adapter})
    return path


def compare_stacks(monkeypatch, reference: dict[str, str], synced: str, stacks: dict[str, list[dict]]) -> int:
    """Every period and area of the business in its reference databases (`reference`: crm and
    helpdesk URLs) and in one database as a stack of synced connectors (`stacks`: each connection's
    `adapters` extra); values compared."""
    from crm_kpis.sources.stack import stack_of

    layouts = [stack_of(database, parts, "test") for database, parts in stacks.items()]
    compared = 0
    for period in PERIODS:
        for area in ("sales", "marketing", "operations"):
            point(monkeypatch, reference["crm"], reference["helpdesk"])
            expected = values(period, area)
            point(monkeypatch, synced, synced, crm_adapters=stacks["crm"], helpdesk_adapters=stacks["helpdesk"])
            compared += assert_same_through_the_adapter(expected, values(period, area), period, layouts)
    return compared
