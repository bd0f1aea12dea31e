"""Coverage: which KPIs an adapter computes, approximates or cannot give, read from its declaration.

Why above the declarations: the adapters, the contract, the extracts' registry and the KPIs are data;
this module reads all four to say, per KPI, what a synced layout gives, for the `coverage` command,
the README's tables, and the n/a reasons and hidden breakdowns of a run.
"""

from __future__ import annotations

from typing import Any

from crm_kpis.kpis import REGISTRY, KpiValue
from crm_kpis.sources.adapters import REFERENCE, Adapter, load_adapter
from crm_kpis.sources.connections import SOURCE_DATABASES, source_settings
from crm_kpis.sources.contract import load_contract, tables_read
from crm_kpis.sources.extracts import EXTRACTS

# --- coverage: which KPIs an adapter computes ---------------------------------------------------
COMPUTED, APPROXIMATED, PARTIAL, NOT_RECORDED = "computed", "approximated", "partial", "n/a"


def not_recorded_reason(adapter: Adapter, kpi: Any) -> tuple[str, str] | None:
    """(status, why) of a KPI that the layout cannot give in full: n/a when it reads a table the
    layout does not have (unless that table is only the KPI's optional, `partial`, input) or when
    the adapter says so; partial when only an optional input is missing; None otherwise."""

    if kpi.id in adapter.kpis_not_recorded:
        return NOT_RECORDED, adapter.kpis_not_recorded[kpi.id]
    contract = load_contract()
    optional = {contract.signals[s].table for s in kpi.partial}
    read = {t for name in kpi.inputs for t in tables_read(EXTRACTS[name].sql)}
    missing = [adapter.reason(t) for t in sorted(read & set(adapter.not_recorded_tables)) if t not in optional]
    missing += [r for s in kpi.tracked if (r := adapter.signal_not_recorded(contract.signals[s])) and r not in missing]
    if missing:
        return NOT_RECORDED, "; ".join(missing)
    partial = [r for s in kpi.partial if (r := adapter.signal_not_recorded(contract.signals[s]))]
    if partial:
        return PARTIAL, "without: " + "; ".join(partial)
    return None


def coverage(adapter: Adapter) -> list[tuple[str, str, str, str]]:
    """(kpi id, name, status, why) for every KPI that reads the adapter's database, from its
    declaration: n/a where it cannot be given, partial where an optional input is missing,
    approximated where the definition is, else computed."""

    out = []
    for kpi in sorted(REGISTRY.values(), key=lambda k: k.id):
        databases = {SOURCE_DATABASES[EXTRACTS[name].conn_id] for name in kpi.inputs}
        if adapter.database not in databases:
            continue
        limited = not_recorded_reason(adapter, kpi)
        if limited is not None:
            out.append((kpi.id, kpi.name, *limited))
        elif kpi.id in adapter.approximations:
            out.append((kpi.id, kpi.name, APPROXIMATED, adapter.approximations[kpi.id]))
        else:
            others = sorted(databases - {adapter.database})
            out.append((kpi.id, kpi.name, COMPUTED, f"also reads the {', '.join(others)} connection" if others else ""))
    return out


def coverage_table(adapter: Adapter) -> str:
    """The coverage as a Markdown table (printed by `python -m crm_kpis.sources coverage`, kept in the README)."""
    rows = coverage(adapter)
    counts = {s: sum(r[2] == s for r in rows) for s in (COMPUTED, APPROXIMATED, PARTIAL, NOT_RECORDED)}
    head = (f"**{adapter.name}** ({adapter.title}, fills the {adapter.database} connection): "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(rows)} KPIs."
            + "".join(f" No `{d}` breakdown: {why}." for d, why in adapter.breakdowns_not_recorded.items()) + "\n\n")
    lines = ["| KPI | | status | why |", "|---|---|---|---|"]
    lines += [f"| {name} | `{kpi_id}` | {status} | {why} |" for kpi_id, name, status, why in rows]
    return head + "\n".join(lines) + "\n"


def adapters_read(definition: Any) -> list[Any]:
    """The adapters of the connections a KPI reads (none where they are the reference layout)."""
    names = {source_settings(EXTRACTS[name].conn_id).adapter for name in definition.inputs}
    return [load_adapter(name) for name in sorted(names - {REFERENCE})]


def without_unrecorded_breakdowns(values: list[KpiValue], definitions: list[Any]) -> list[KpiValue]:
    """The values without the breakdowns an adapter cannot give (a dimension every row would file
    under "unknown"): left out, not shown as one member holding the whole company."""
    hidden = {d.id: {dim for a in adapters_read(d) for dim in a.breakdowns_not_recorded} for d in definitions}
    return [v for v in values if v.dimension not in hidden.get(v.kpi_id, ())]


def not_recorded_kpis(definitions: list[Any]) -> dict[str, str]:
    """KPIs the connections' adapters cannot give whatever the data (kpi id → the adapter's reason):
    they read a table the synced layout does not have, or the adapter says so."""
    out: dict[str, str] = {}
    for definition in definitions:
        for adapter in adapters_read(definition):
            limited = not_recorded_reason(adapter, definition)
            if limited is not None and limited[0] == NOT_RECORDED:
                out[definition.id] = limited[1]
    return out
