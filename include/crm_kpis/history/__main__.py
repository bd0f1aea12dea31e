"""`python -m crm_kpis.history upgrade|current|heads [--url URL]`: the warehouse's schema revision.

Every run brings the warehouse up to date on its own; this command does it ahead of a deployment,
or says where a warehouse stands (`current`) against the newest revision (`heads`).
"""

from __future__ import annotations

import argparse
import sys

from crm_kpis.history.migrate import current, head, upgrade
from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.history", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["upgrade", "current", "heads"])
    parser.add_argument("--url", help=f"SQLAlchemy URL of the warehouse (default: connection {WAREHOUSE_CONN_ID})")
    args = parser.parse_args(argv)
    if args.command == "heads":
        print(head())
        return 0
    engine = engine_for(args.url or WAREHOUSE_CONN_ID)
    where = engine.url.render_as_string()
    if args.command == "upgrade":
        was = upgrade(engine)
        print(f"{where}: at {head()} (was {was or 'without a revision'})")
        return 0
    with engine.connect() as connection:
        at = current(connection)
    print(f"{where}: at {at or 'no revision'}; newest {head()}" + ("" if at == head() else " (run upgrade)"))
    return 0 if at == head() else 1


if __name__ == "__main__":
    sys.exit(main())
