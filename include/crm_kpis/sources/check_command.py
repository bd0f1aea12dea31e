"""`python -m crm_kpis.sources check`: what the sources lack against the contract, and what it costs.

Why a command: pointing the product at a company's own databases should start with one command
that lists, per table, every missing table or column, every column of the wrong type, every value
outside its allowed set and every input never recorded, with the fix and the KPIs affected, before
a run fails or a report shows n/a.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import replace
from datetime import date
from typing import Any

from sqlalchemy import inspect

from crm_kpis.kpis import REGISTRY
from crm_kpis.sources.adapters import REFERENCE, available, load_adapter, one_inspection
from crm_kpis.sources.connections import (
    CRM_CONN_ID,
    HELPDESK_CONN_ID,
    SOURCE_DATABASES,
    SourceSettings,
    engine_for,
    source_settings,
)
from crm_kpis.sources.contract import load_contract
from crm_kpis.sources.contract_checks import Problem, check_database, signal_present
from crm_kpis.sources.coverage import coverage, coverage_table
from crm_kpis.sources.errors import AdapterError, SourceConfigError
from crm_kpis.sources.sql_files import bind_values
from crm_kpis.sources.stack import single, stack_of


def untracked_inputs(engine: Any, conn_id: str, source: Any = None) -> list[tuple[str, str, list[str]]]:
    """(signal, what it says, KPIs that are n/a for it) for every input the source never recorded
    (through its stack of adapters, if it has one: a signal the stack never records is its
    coverage, not listed)."""

    stack = source.stack if source is not None else None
    contract = load_contract()
    out = []
    params = bind_values({"end": date(9999, 1, 1), "end_date": date(9999, 1, 1)}, engine.dialect.name)
    for signal in contract.signals.values():
        if contract.tables[signal.table].conn_id != conn_id or (stack and stack.signal_not_recorded(signal)):
            continue
        try:
            present = signal_present(engine, signal, params, source)
        except Exception:  # the table or column is missing: reported as a contract problem already
            continue
        if not present:
            says = stack.signal_says(signal) if stack else signal.says
            out.append((signal.name, says, sorted(k.id for k in REGISTRY.values() if signal.name in k.tracked)))
    return out


def overridden(conn_id: str, source: SourceSettings, adapter: str | None, schema: str | None) -> SourceSettings:
    """The connection's settings with the command line's adapter and schema in place of its extra's."""
    if adapter == REFERENCE:
        return replace(source, stack=None)
    if adapter:
        try:
            return replace(source, stack=single(load_adapter(adapter), schema))
        except AdapterError as exc:
            raise SourceConfigError(str(exc)) from exc
    if not schema:
        return source
    if source.stack is None:
        raise SourceConfigError(f"--{SOURCE_DATABASES[conn_id]}-schema {schema!r} without an adapter: the reference "
                                "layout reads the connection's own tables in its default schema (set the search path "
                                "in the connection, e.g. the extra {\"options\": \"-csearch_path=crm\"}); a schema "
                                "is an adapter's setting")
    if len(source.stack.parts) > 1:
        raise SourceConfigError(f"--{SOURCE_DATABASES[conn_id]}-schema: {conn_id} is a stack of "
                                f"{source.stack.name}; each part's schema is in the connection's extra")
    return replace(source, stack=replace(source.stack, parts=(replace(source.stack.parts[0], schema=schema),)))


def report(conn_id: str, url: str | None, adapter: str | None = None,
           schema: str | None = None) -> tuple[list[Problem], list[str]]:
    source = overridden(conn_id, source_settings(conn_id), adapter, schema)
    engine = engine_for(url or conn_id, source.timezone)  # a URL's session in the connection's zone too
    lines = [f"== {conn_id}: {engine.url.render_as_string()} (timezone {source.timezone}, adapter {source.adapter}, "
             f"{searched(engine, source)})"]
    if source.stack is not None:
        return _report_adapted(engine, conn_id, source, lines)
    problems = check_database(engine, conn_id, source.future_tolerance_hours)
    by_table: dict[str, list[Problem]] = {}
    for problem in problems:
        by_table.setdefault(problem.table, []).append(problem)
    for spec in load_contract().for_conn(conn_id):
        found = by_table.get(spec.name, [])
        lines.append(f"  {spec.name}: {'ok' if not found else f'{len(found)} problem(s)'}")
        lines.extend(f"    - {p.line()}" for p in found)
    if not any(p.level == "error" for p in problems):
        for name, says, kpis in untracked_inputs(engine, conn_id):
            lines.append(f"  not tracked: {says} ({name}): n/a for {', '.join(kpis) or 'no KPI'}")
    return problems, lines


def searched(engine: Any, source: Any) -> str:
    """Which schema the check looks in, said in the header: a wrong one is the usual cause of
    "needs the synced table …; it is missing"."""
    schemas = [p.schema for p in source.stack.parts if p.schema] if source.stack is not None else []
    if schemas:
        return f"schema{'s' if len(schemas) > 1 else ''} {', '.join(dict.fromkeys(schemas))}"
    default = inspect(engine).default_schema_name
    return f"the connection's default schema{f' ({default})' if default else ''}"


def _report_adapted(engine: Any, conn_id: str, source: Any, lines: list[str]) -> tuple[list[Problem], list[str]]:
    """The check of a synced database through its stack: what it lacks in the adapters' terms,
    which connector fills each table, the coverage, and the inputs its data never recorded (one
    inspection of its tables)."""
    with one_inspection():
        return _adapted_lines(engine, conn_id, source, lines)


def _adapted_lines(engine: Any, conn_id: str, source: Any, lines: list[str]) -> tuple[list[Problem], list[str]]:
    stack = source.stack
    problems = [Problem("error", stack.name, None, text, "sync that table or column (or pick another adapter).")
                for text in stack.problems(engine)]
    lines.append(f"  {stack.title}: {'ok' if not problems else f'{len(problems)} problem(s)'}")
    lines.extend(f"    - ERROR {p.message}" for p in problems)
    if len(stack.parts) > 1:
        for table, parts in stack.filled().items():
            filled_by = " + ".join(p.where() for p in parts) or f"nothing: {stack.not_recorded(table)}"
            lines.append(f"  {table}: {filled_by}")
    if not problems:
        lines.extend(f"  customers matched: {line}" for line in stack.customer_matches(engine))
    lines.extend(f"  not synced (optional): {what}: {means}" for what, means in stack.missing_optional(engine).items())
    rows = coverage(stack)
    lines.append(f"  coverage: {', '.join(f'{n} {s}' for s, n in Counter(r[2] for r in rows).items())} of {len(rows)} "
                 "KPIs (python -m crm_kpis.sources coverage prints why)")
    if len(stack.parts) > 1:
        lines.extend(f"    {kpi_id}: {status}{f' ({why})' if why and status != 'computed' else ''}"
                     for kpi_id, _, status, why in rows)
    if not problems:
        for name, says, kpis in untracked_inputs(engine, conn_id, source):
            lines.append(f"  not tracked: {says} ({name}): n/a for {', '.join(kpis) or 'no KPI'}")
    return problems, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.sources", description=__doc__)
    parser.add_argument("command", choices=["check", "coverage"],
                        help="check: the sources against the contract; coverage: each adapter's KPIs, as Markdown")
    parser.add_argument("--crm-url", help="SQLAlchemy URL of the CRM (default: connection crm_db)")
    parser.add_argument("--helpdesk-url", help="SQLAlchemy URL of the helpdesk (default: connection helpdesk_db)")
    parser.add_argument("--crm-adapter", help="read the CRM through this adapter (default: the connection's extra)")
    parser.add_argument("--helpdesk-adapter", help="read the helpdesk through this adapter (default: the connection's)")
    parser.add_argument("--crm-schema", help="the schema of the CRM's synced tables (default: the connection's extra)")
    parser.add_argument("--helpdesk-schema",
                        help="the schema of the helpdesk's synced tables (default: the connection's extra)")
    parser.add_argument("--adapter", help="coverage: only this adapter, or a stack of them joined by + "
                                          "(fivetran_hubspot+fivetran_google_ads: what they give together)")
    args = parser.parse_args(argv)
    if args.command == "coverage":
        if args.adapter and "+" in args.adapter:
            adapters = [load_adapter(name) for name in args.adapter.split("+")]
            print(coverage_table(stack_of(adapters[0].database, [{"adapter": a.name} for a in adapters], "--adapter")))
            return 0
        names = [args.adapter] if args.adapter else [a for a in available() if a != REFERENCE]
        print("\n".join(coverage_table(load_adapter(name)) for name in names))
        return 0
    errors = 0
    for conn_id, url, adapter, schema in ((CRM_CONN_ID, args.crm_url, args.crm_adapter, args.crm_schema),
                                          (HELPDESK_CONN_ID, args.helpdesk_url, args.helpdesk_adapter,
                                           args.helpdesk_schema)):
        try:
            problems, lines = report(conn_id, url, adapter, schema)
        except Exception as exc:  # a missing file, a refused connection: say it, go on with the other
            print(f"== {conn_id}: cannot be read: {exc}")
            errors += 1
            continue
        print("\n".join(lines))
        errors += sum(p.level == "error" for p in problems)
    print(f"\n{errors} error(s): the runs {'fail' if errors else 'can run'}; warnings mean rows excluded or kept, "
          "counted in each report.")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
