"""`python -m crm_kpis.sources check`: what the sources lack against the contract, and what it costs.

Why a command: pointing the product at a company's own databases should start with one command
that lists, per table, every missing table or column, every column of the wrong type, every value
outside its allowed set and every input never recorded, with the fix and the KPIs affected, before
a run fails or a report shows n/a.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import Any

from crm_kpis.contract import Problem, check_database, load_contract, signal_present
from crm_kpis.sources import CRM_CONN_ID, HELPDESK_CONN_ID, bind_values, engine_for, source_settings


def untracked_inputs(engine: Any, conn_id: str) -> list[tuple[str, str, list[str]]]:
    """(signal, what it says, KPIs that are n/a for it) for every input the source never recorded."""
    from crm_kpis.kpis import REGISTRY

    contract = load_contract()
    out = []
    params = bind_values({"end": date(9999, 1, 1), "end_date": date(9999, 1, 1)}, engine.dialect.name)
    for signal in contract.signals.values():
        if contract.tables[signal.table].conn_id != conn_id:
            continue
        try:
            present = signal_present(engine, signal, params)
        except Exception:  # the table or column is missing: reported as a contract problem already
            continue
        if not present:
            out.append((signal.name, signal.says, sorted(k.id for k in REGISTRY.values() if signal.name in k.tracked)))
    return out


def report(conn_id: str, url: str | None) -> tuple[list[Problem], list[str]]:
    engine = engine_for(url or conn_id)
    lines = [f"== {conn_id}: {engine.url.render_as_string()} (timezone {source_settings(conn_id).timezone})"]
    problems = check_database(engine, conn_id)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.sources check", description=__doc__)
    parser.add_argument("command", choices=["check"])
    parser.add_argument("--crm-url", help="SQLAlchemy URL of the CRM (default: connection crm_db)")
    parser.add_argument("--helpdesk-url", help="SQLAlchemy URL of the helpdesk (default: connection helpdesk_db)")
    args = parser.parse_args(argv)
    errors = 0
    for conn_id, url in ((CRM_CONN_ID, args.crm_url), (HELPDESK_CONN_ID, args.helpdesk_url)):
        try:
            problems, lines = report(conn_id, url)
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
