"""Coverage: which KPIs an adapter computes, approximates or cannot give, read from its declaration.

Why above the declarations: the adapters, the contract, the extracts' registry and the KPIs are data;
this module reads all four to say, per KPI, what a synced layout gives, for the `coverage` command,
the README's tables, and the n/a reasons and hidden breakdowns of a run.
"""

from __future__ import annotations

from typing import Any

from crm_kpis.kpis import REGISTRY, KpiValue
from crm_kpis.sources.adapters import Adapter
from crm_kpis.sources.connections import SOURCE_DATABASES, engine_for, source_settings
from crm_kpis.sources.contract import breakdown_lookups, load_contract, tables_read
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.stack import Stack, single

# --- coverage: which KPIs a stack of adapters computes ------------------------------------------
COMPUTED, APPROXIMATED, PARTIAL, NOT_RECORDED = "computed", "approximated", "partial", "n/a"


def as_stack(layout: Adapter | Stack) -> Stack:
    return layout if isinstance(layout, Stack) else single(layout)


def tables_of(kpi: Any) -> set[str]:
    return {t for name in kpi.inputs for t in tables_read(EXTRACTS[name].sql)}


def labels_of(kpi: Any) -> dict[str, set[str]]:
    """The tables a KPI's extracts join only for breakdown labels (table -> the KPI's dimensions they
    label): without them the KPI is still right, only those breakdowns are not given. (An extract
    serves several KPIs: a label one KPI does not break down by is no input of it either.)"""
    dimensions = tuple(sorted({d for k in REGISTRY.values() for d in k.breakdowns}))
    labels: dict[str, set[str]] = {}
    needed: set[str] = set()
    for name in kpi.inputs:
        sql = EXTRACTS[name].sql
        lookups = breakdown_lookups(sql, dimensions)
        needed |= {t for t in tables_read(sql) if t not in lookups}
        for table, dims in lookups.items():
            labels.setdefault(table, set()).update(dims & set(kpi.breakdowns))
    return {t: dims for t, dims in labels.items() if t not in needed}


def not_recorded_reason(stack: Stack, kpi: Any) -> tuple[str, str] | None:
    """(status, why) of a KPI that the stack cannot give in full: n/a when it reads a table no part
    fills (unless that table is only the KPI's optional, `partial`, input) or when an adapter that
    fills what it reads says so; partial when only an optional input is missing; None otherwise."""

    read = tables_of(kpi)
    for part in stack.reading(read):
        if kpi.id in part.adapter.kpis_not_recorded:
            return NOT_RECORDED, part.adapter.kpis_not_recorded[kpi.id]
    contract = load_contract()
    optional = {contract.signals[s].table for s in kpi.partial} | set(labels_of(kpi))
    database = contract.of_database(stack.database)
    missing = [why for t in sorted(read & set(database)) if t not in optional
               and (why := stack.not_recorded(t)) is not None]
    missing += [r for s in kpi.tracked if contract.signals[s].table in database
                and (r := stack.signal_not_recorded(contract.signals[s])) and r not in missing]
    if missing:
        return NOT_RECORDED, "; ".join(missing)
    partial = [r for s in kpi.partial if contract.signals[s].table in database
               and (r := stack.signal_not_recorded(contract.signals[s]))]
    if partial:
        return PARTIAL, "without: " + "; ".join(partial)
    return None


def approximation(stack: Stack, kpi: Any) -> str | None:
    """How the parts that fill what a KPI reads approximate its definition (None: they do not)."""
    said = [p.adapter.approximations[kpi.id] for p in stack.reading(tables_of(kpi)) if kpi.id in p.adapter.approximations]
    return "; ".join(said) or None


def coverage(layout: Adapter | Stack) -> list[tuple[str, str, str, str]]:
    """(kpi id, name, status, why) for every KPI that reads the stack's (or adapter's) database, from
    the declarations: n/a where it cannot be given, partial where an optional input is missing,
    approximated where the definition is, else computed."""

    stack = as_stack(layout)
    out = []
    for kpi in sorted(REGISTRY.values(), key=lambda k: k.id):
        databases = {SOURCE_DATABASES[EXTRACTS[name].conn_id] for name in kpi.inputs}
        if stack.database not in databases:
            continue
        limited = not_recorded_reason(stack, kpi)
        if limited is not None:
            out.append((kpi.id, kpi.name, *limited))
        elif (approximated := approximation(stack, kpi)) is not None:
            out.append((kpi.id, kpi.name, APPROXIMATED, approximated))
        else:
            others = sorted(databases - {stack.database})
            out.append((kpi.id, kpi.name, COMPUTED, f"also reads the {', '.join(others)} connection" if others else ""))
    return out


def coverage_table(layout: Adapter | Stack) -> str:
    """The coverage as a Markdown table (printed by `python -m crm_kpis.sources coverage`, kept in the README)."""
    stack = as_stack(layout)
    rows = coverage(stack)
    counts = {s: sum(r[2] == s for r in rows) for s in (COMPUTED, APPROXIMATED, PARTIAL, NOT_RECORDED)}
    several = len(stack.parts) > 1  # then a part's limits hold for the KPIs that read its tables only
    hidden = {d: (f"{why}, for the KPIs that read its {', '.join(stack.fillers_of(p))}" if several else why)
              for p in stack.parts for d, why in p.adapter.breakdowns_not_recorded.items()}
    without: dict[str, list[str]] = {}
    for part in stack.parts:
        for t, o in part.adapter.optional_tables.items():
            for d in o.breakdowns:
                without.setdefault(d, []).append(t)
    head = (f"**{stack.name}** ({stack.title}, fills the {stack.database} connection): "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(rows)} KPIs."
            + "".join(f" No `{d}` breakdown: {why}." for d, why in hidden.items())
            + "".join(f" No `{d}` breakdown where {' or '.join(t)} is not synced." for d, t in without.items())
            + "\n\n")
    lines = ["| KPI | | status | why |", "|---|---|---|---|"]
    lines += [f"| {name} | `{kpi_id}` | {status} | {why} |" for kpi_id, name, status, why in rows]
    return head + "\n".join(lines) + "\n"


def stacks_read(definition: Any) -> list[Stack]:
    """The stacks of the connections a KPI reads (none where they are the reference layout)."""
    conn_ids = sorted({EXTRACTS[name].conn_id for name in definition.inputs})
    return [stack for c in conn_ids if (stack := source_settings(c).stack) is not None]


def hidden_breakdowns(definition: Any) -> set[str]:
    """The breakdowns a KPI cannot give through its connections' stacks: those the parts filling
    what it reads cannot give in their databases, and those labelled by a table no part fills."""
    read, labels = tables_of(definition), labels_of(definition)
    hidden: set[str] = set()
    for conn_id in sorted({EXTRACTS[name].conn_id for name in definition.inputs}):
        stack = source_settings(conn_id).stack
        if stack is None:
            continue
        hidden |= stack.hidden_breakdowns(read, engine_for(conn_id))
        hidden |= {dim for table, dims in labels.items() if stack.not_recorded(table) is not None
                   and table in load_contract().of_database(stack.database) for dim in dims}
    return hidden


def without_unrecorded_breakdowns(values: list[KpiValue], definitions: list[Any]) -> list[KpiValue]:
    """The values without the breakdowns an adapter cannot give (a dimension every row would file
    under "unknown"): left out, not shown as one member holding the whole company."""
    hidden = {d.id: hidden_breakdowns(d) for d in definitions}
    return [v for v in values if v.dimension not in hidden.get(v.kpi_id, ())]


def not_recorded_kpis(definitions: list[Any]) -> dict[str, str]:
    """KPIs the connections' stacks cannot give whatever the data (kpi id → the adapters' reason):
    they read a table no part fills, or an adapter that fills what they read says so."""
    out: dict[str, str] = {}
    for definition in definitions:
        for stack in stacks_read(definition):
            limited = not_recorded_reason(stack, definition)
            if limited is not None and limited[0] == NOT_RECORDED:
                out[definition.id] = limited[1]
    return out


def approximations_in_use() -> dict[str, str]:
    """Per KPI, how the sources' adapters approximate its definition (said under the definition)."""
    out: dict[str, str] = {}
    for kpi in REGISTRY.values():
        said = [f"From {p.adapter.title} ({p.adapter.name}): {p.adapter.approximations[kpi.id]}"
                for stack in stacks_read(kpi) for p in stack.reading(tables_of(kpi))
                if kpi.id in p.adapter.approximations]
        if said:
            out[kpi.id] = "; ".join(said)
    return out
