"""Generate the demo CRM and helpdesk databases.

    python -m crm_kpis.tools.demo [--crm-url URL] [--helpdesk-url URL] [--seed N] [--scale X]
                            [--end-month YYYY-MM] [--months N] [--shards N] [--layout NAME]

Without URLs it writes the embedded default, SQLite files under var/data/. The data ends with
`--end-month` (default: the last complete month) and covers `--months` months (default 24).
`--layout fivetran_zendesk` writes the helpdesk as Fivetran's synced Zendesk tables instead of the
reference ones (the same business: read it through the adapter of that name); `--stack` writes the
whole business as a company's synced stack (HubSpot, Stripe, Google Ads, Facebook Ads, Zendesk) in
one PostgreSQL database, one schema each, and prints the connections' extras that read it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import date

from crm_kpis.sources.connections import CRM_CONN_ID, HELPDESK_CONN_ID, default_sqlite_url, engine_for
from crm_kpis.tools.demo.bulk import generate_and_load, shards_for
from crm_kpis.tools.demo.generator import default_end_month, generate, spec_for
from crm_kpis.tools.demo.layouts import AS_RECORDED, FIVETRAN_STACK, LAYOUTS, as_recorded_by, load_layout, write_stack
from crm_kpis.tools.demo.loader import load_database


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.tools.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--crm-url", help="SQLAlchemy URL of the CRM database (default: var/data/crm.db)")
    parser.add_argument("--helpdesk-url", help="SQLAlchemy URL of the helpdesk database (default: var/data/helpdesk.db)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42): same seed, same rows")
    parser.add_argument("--scale", type=float, default=1.0, help="volume multiplier (1 = ~200 new customers a month)")
    parser.add_argument("--end-month", help="last month of data, YYYY-MM (default: the last complete month)")
    parser.add_argument("--months", type=int, default=24, help="number of months (default 24)")
    parser.add_argument("--shards", type=int, help="generate in this many shards (default: one per scale 10); "
                        "servers are loaded with COPY / LOAD DATA")
    parser.add_argument("--layout", default="reference", choices=["reference", *LAYOUTS],
                        help="write one database in a synced SaaS layout (default: the reference tables)")
    parser.add_argument("--schema", help="with --layout: the database schema of the synced tables (e.g. zendesk)")
    parser.add_argument("--stack", action="store_true",
                        help="write the whole business as a company's Fivetran stack (HubSpot, Stripe, Google Ads, "
                        "Facebook Ads, Zendesk) into the --crm-url database, one schema each (PostgreSQL: a "
                        "server with schemas)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    args = parse_args(argv)
    if args.end_month:
        try:
            end_month = date.fromisoformat(f"{args.end_month}-01")
        except ValueError:
            print(f"--end-month must look like 2026-10, not {args.end_month!r}", file=sys.stderr)
            return 2
    else:
        end_month = default_end_month(date.today())
    spec = spec_for(end_month, months=args.months, seed=args.seed, scale=args.scale)
    started = time.perf_counter()
    targets = {
        "crm": args.crm_url or default_sqlite_url(CRM_CONN_ID),
        "helpdesk": args.helpdesk_url or default_sqlite_url(HELPDESK_CONN_ID),
    }
    shards = args.shards or shards_for(spec.scale)
    on_servers = any(not str(url).startswith("sqlite") for url in targets.values())  # URL objects: str() is safe
    if args.stack:
        return _write_stack(args, spec, started)
    if args.layout != "reference":
        return _write_layout(args, spec, targets, started)
    if shards > 1 or on_servers:  # company scale: shards, bulk loads, indexes built afterwards
        urls = [(d, u if isinstance(u, str) else u.render_as_string(hide_password=False)) for d, u in targets.items()]
        for loader in generate_and_load(spec, urls, shards, progress=shards > 1):
            print(f"{loader.database}: {sum(loader.counts.values()):,} rows in {len(loader.counts)} tables, "
                  f"loaded in {loader.seconds:.1f} s -> {loader.engine.url.render_as_string(hide_password=True)}")
        print(f"demo data {spec.start} .. {spec.end} (exclusive), seed {spec.seed}, scale {spec.scale:g}, "
              f"{shards} shard(s), {time.perf_counter() - started:.1f} s")
        return 0
    data = generate(spec)
    for database, url in targets.items():
        engine = engine_for(url)
        counts = load_database(engine, database, data[database])
        print(f"{database}: {sum(counts.values()):,} rows in {len(counts)} tables -> "
              f"{engine.url.render_as_string(hide_password=True)}")
    print(f"demo data {spec.start} .. {spec.end} (exclusive), seed {spec.seed}, scale {spec.scale:g}, "
          f"{time.perf_counter() - started:.1f} s")
    return 0


def _write_layout(args: argparse.Namespace, spec: object, targets: dict[str, object], started: float) -> int:
    """The demo with one database in a synced layout (the other in the reference tables)."""
    database, writer = LAYOUTS[args.layout]
    data = generate(spec)  # type: ignore[arg-type]
    for name, url in targets.items():
        engine = engine_for(url)  # type: ignore[arg-type]
        if name == database:
            counts = load_layout(engine, writer(AS_RECORDED.get(args.layout, dict)(data[name])), args.schema)
            what = f"{args.layout} layout" + (f" in schema {args.schema}" if args.schema else "")
        else:
            counts = load_database(engine, name, data[name])
            what = "reference tables"
        print(f"{name}: {sum(counts.values()):,} rows in {len(counts)} tables ({what}) -> "
              f"{engine.url.render_as_string(hide_password=True)}")
    print(f"demo data {spec.start} .. {spec.end} (exclusive), seed {spec.seed}, {time.perf_counter() - started:.1f} s; "  # type: ignore[attr-defined]
          f"read the {database} with the connection extra {{\"adapter\": \"{args.layout}\"}}")
    return 0


def _write_stack(args: argparse.Namespace, spec: object, started: float) -> int:
    """The demo business as a company's synced stack in one database (FIVETRAN_STACK)."""
    if not args.crm_url or str(args.crm_url).startswith("sqlite") or args.layout != "reference" or args.helpdesk_url:
        print("--stack writes every connector into the --crm-url database, one schema each: give a PostgreSQL "
              "URL there, and neither --helpdesk-url nor --layout", file=sys.stderr)
        return 2
    parts = [p["adapter"] for parts in FIVETRAN_STACK.values() for p in parts]
    data = as_recorded_by(generate(spec), parts)  # type: ignore[arg-type]
    engine = engine_for(args.crm_url)
    for schema, rows in write_stack(engine, data).items():
        print(f"{schema}: {rows:,} rows")
    print(f"demo data {spec.start} .. {spec.end} (exclusive), seed {spec.seed}, "  # type: ignore[attr-defined]
          f"{time.perf_counter() - started:.1f} s -> {engine.url.render_as_string(hide_password=True)}")
    for database, conn_id in ((d, c) for d, c in (("crm", CRM_CONN_ID), ("helpdesk", HELPDESK_CONN_ID))):
        print(f"{conn_id}: this database, extra {json.dumps({'adapters': FIVETRAN_STACK[database]})}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
