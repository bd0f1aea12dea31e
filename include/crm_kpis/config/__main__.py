"""`python -m crm_kpis.config schema [--check]`: write (or check) `include/config/reports.schema.json`,
the JSON Schema of reports.yaml that editors use to complete and check the file.

`python -m crm_kpis.config check [FILE]`: check a reports configuration (default: the one in use)
and say every problem by its key path, before a DAG parse does.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from crm_kpis.config.schema import json_schema
from crm_kpis.config.settings import SCHEMA_FILE, _load, config_file


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.config", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["schema", "check"])
    parser.add_argument("file", nargs="?", help="check: the reports configuration (default: the one in use)")
    parser.add_argument("--check", action="store_true", help="schema: exit 1 if the checked-in schema is stale")
    args = parser.parse_args(argv)
    if args.command == "check":
        path = Path(args.file) if args.file else config_file()
        try:
            settings = _load(str(path), path.stat().st_mtime)
        except (ValueError, OSError) as exc:
            print(exc)
            return 1
        print(f"{path}: ok ({len(settings.reports)} reports, {len(settings.kpi_alerts)} KPI alert rules)")
        return 0
    if args.check:
        current = SCHEMA_FILE.read_text(encoding="utf-8") if SCHEMA_FILE.exists() else ""
        if current != schema_text():
            print(f"{SCHEMA_FILE} is out of date: run python -m crm_kpis.config schema")
            return 1
        print(f"{SCHEMA_FILE}: up to date")
        return 0
    SCHEMA_FILE.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {SCHEMA_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
