"""Fivetran's own published test data for a connector (`../shared/data/fivetran/<connector>/seeds`),
loaded into a database as Fivetran's dbt package loads it for its integration tests.

Why not our own rendering of a layout: an adapter proven only against the demo generator's idea of
a synced schema is a circular test. These seeds are Fivetran's; they are read as shipped (never
edited), each `<table>_data.csv` into a table `<table>`, typed as the package's
`integration_tests_dbt_project.yml` types it (`+column_types`, rendered for PostgreSQL, whose
`+enabled` and `+alias` are honoured); a column it does not type is typed as dbt's seed loader
infers it (booleans, integers, numbers, timestamps, dates, else text), and an empty cell is NULL.
The rows a test case needs are added by the test, after loading.
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment
from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Engine, MetaData, Numeric, Table, Text, text

from crm_kpis.paths import PROJECT_DIR

FIVETRAN_DIR = PROJECT_DIR.parent / "shared" / "data" / "fivetran"

_TYPES: dict[str, Any] = {"bigint": BigInteger, "int64": BigInteger, "integer": BigInteger, "int": BigInteger,
                          "boolean": Boolean, "bool": Boolean, "timestamp": DateTime, "datetime": DateTime,
                          "date": Date, "numeric": Numeric, "float": Numeric, "float64": Numeric,
                          "double precision": Numeric, "decimal": Numeric, "string": Text, "text": Text,
                          "varchar": Text, "varchar(100)": Text, "character varying": Text}
_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{1,2}):(\d{2}):(\d{2})(\.\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_INT = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?(\d+\.\d*|\.\d+)$")  # "144." is a number to dbt's seed loader (agate) too


def _render(value: Any, target: str) -> str:
    """A `{{ … }}` setting of the dbt project for a target, with its vars at their defaults."""
    def var(_name: str, default: Any = None) -> Any:
        return default
    return Environment().from_string(str(value)).render(target={"type": target, "name": target}, var=var).strip()


def seed_settings(connector: str, target: str = "postgres") -> dict[str, dict[str, Any]]:
    """Per seed file (without `.csv`): its table name, column types and whether it is enabled."""
    project = yaml.safe_load((FIVETRAN_DIR / connector / "integration_tests_dbt_project.yml").read_text())
    settings: dict[str, dict[str, Any]] = {}
    for block in (project.get("seeds") or {}).values():
        if not isinstance(block, dict):
            continue
        # types set for every seed of the project (Salesforce's _fivetran_active: boolean)
        shared = {c: _render(t, target).lower() for c, t in (block.get("+column_types") or {}).items()}
        for seed, config in block.items():
            if seed.startswith("+") or not isinstance(config, dict):
                continue
            types = shared | {c: _render(t, target).lower() for c, t in (config.get("+column_types") or {}).items()}
            enabled = _render(config.get("+enabled", True), target).lower() not in ("false", "")
            settings[seed] = {"alias": config.get("+alias", seed), "types": types, "enabled": enabled}
    return settings


def _shared_types(connector: str) -> dict[str, str]:
    """The project-wide `+column_types` (for a seed the project does not configure by name)."""
    project = yaml.safe_load((FIVETRAN_DIR / connector / "integration_tests_dbt_project.yml").read_text())
    out: dict[str, str] = {}
    for block in (project.get("seeds") or {}).values():
        if isinstance(block, dict):
            out |= {c: _render(t, "postgres").lower() for c, t in (block.get("+column_types") or {}).items()}
    return out


def _inferred(values: list[str]) -> Any:
    filled = [v for v in values if v != ""]
    if not filled:
        return Text
    for kind, test in ((Boolean, lambda v: v.lower() in ("true", "false")), (BigInteger, _INT.match),
                       (Numeric, lambda v: _INT.match(v) or _NUMBER.match(v)), (DateTime, _TIMESTAMP.match),
                       (Date, _DATE.match)):
        if all(test(v) for v in filled):
            return kind
    return Text


def _value(raw: str, kind: Any) -> Any:
    if raw == "":
        return None
    if kind is not Text:
        raw = raw.strip()  # a typed cell may carry a trailing space (Shopify's seeds): PostgreSQL reads it so
    if kind is Boolean:
        return raw.lower() == "true"
    if kind is BigInteger:
        return int(raw)
    if kind is Numeric:
        return Decimal(raw)
    if kind is DateTime:  # "2021-01-07 6:49:18" (HubSpot's deal_stage) as a loader reads it too
        match = _TIMESTAMP.match(raw)
        if match:
            day, hour, minute, second, fraction = match.groups()
            raw = f"{day} {int(hour):02d}:{minute}:{second}{fraction or ''}"
        return datetime.fromisoformat(raw)
    if kind is Date:
        return date.fromisoformat(raw)
    return raw


def _identifiers(connector: str) -> dict[str, str]:
    """The project's `<connector>_<table>_identifier: <seed>` vars, as seed -> synced table name
    (`sf_account_data` is Salesforce's `account`)."""
    project = yaml.safe_load((FIVETRAN_DIR / connector / "integration_tests_dbt_project.yml").read_text())
    out: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and key.startswith(f"{connector}_") and key.endswith("_identifier"):
                    out[value] = key[len(connector) + 1:-len("_identifier")]
                walk(value)
    walk(project.get("vars"))
    return out


def seed_tables(connector: str, target: str = "postgres") -> dict[str, Path]:
    """Synced table name -> seed file, for the seeds the project enables on the target."""
    settings = seed_settings(connector, target)
    identifiers = _identifiers(connector)
    out: dict[str, Path] = {}
    for path in sorted((FIVETRAN_DIR / connector / "seeds").glob("*.csv")):
        config = settings.get(path.stem, {"alias": path.stem, "enabled": True})
        if config["enabled"]:
            alias = config["alias"]
            out.setdefault(identifiers.get(alias, re.sub(r"_data$", "", alias)), path)
    return out


def load_seeds(engine: Engine, connector: str, schema: str | None = None,
               only: tuple[str, ...] | None = None) -> dict[str, int]:
    """Create and fill one table per enabled seed (or only the named tables); rows per table."""
    settings = seed_settings(connector)
    metadata = MetaData(schema=schema)
    loaded: dict[str, int] = {}
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    for name, path in seed_tables(connector).items():
        if only is not None and name not in only:
            continue
        with path.open(newline="", encoding="utf-8-sig") as f:  # dbt reads a seed's byte-order mark as none
            reader = csv.reader(f)
            header = next(reader)
            rows = list(reader)
        declared = settings.get(path.stem, {}).get("types") or _shared_types(connector)
        kinds = [_TYPES.get(declared[c], Text) if c in declared else _inferred([r[i] for r in rows])
                 for i, c in enumerate(header)]
        table = Table(name, metadata, *[Column(c, k()) for c, k in zip(header, kinds, strict=True)])
        table.drop(engine, checkfirst=True)
        table.create(engine)
        records = [{c: _value(r[i], kinds[i]) for i, c in enumerate(header)} for r in rows]
        if records:
            with engine.begin() as conn:
                conn.execute(table.insert(), records)
        loaded[name] = len(records)
    return loaded


def seeded_connection(engine_kind: str, postgres: Any, tmp_path: Path, monkeypatch: Any, connector: str,
                      adapter: str, database: str, added: list[str] = ()) -> tuple[str, str, str | None, dict[str, int]]:
    """A connector's seeds, plus the test's added rows (`INSERT`s naming tables as `{table}`), as the
    `database` connection (crm or helpdesk) read through `adapter`, on SQLite or on PostgreSQL in a
    schema named after the connector; the other connection an empty reference database.
    Returns (other url, url, schema, rows loaded per table)."""
    import uuid

    from crm_kpis.sources.connections import engine_for
    from crm_kpis.tools.demo.loader import load_database
    from tests.integration.adapter_helpers import point

    if engine_kind == "sqlite":
        url, schema = f"sqlite:///{tmp_path / f'{connector}.db'}", None
    else:
        url, schema = postgres.create(f"{connector}_seeds_{uuid.uuid4().hex[:6]}"), connector  # one per test
    engine = engine_for(url)
    loaded = load_seeds(engine, connector, schema)
    prefix = f'"{schema}".' if schema else ""
    with engine.begin() as conn:
        for statement in added:
            conn.execute(text(statement.format(**{t: f'{prefix}"{t}"' for t in loaded})))
    other = "helpdesk" if database == "crm" else "crm"
    other_url = f"sqlite:///{tmp_path / f'{other}.db'}"
    load_database(engine_for(other_url), other, {})
    point(monkeypatch, **{other: other_url, database: url}, **{f"{database}_adapter": adapter,
                                                              f"{database}_schema": schema})
    return other_url, url, schema, loaded


def seeded_stack(postgres: Any, tmp_path: Path, monkeypatch: Any, stack: dict[str, str | dict[str, Any]],
                 added: dict[str, list[str]] | None = None) -> tuple[str, str, dict[str, dict[str, int]]]:
    """Several connectors' seeds in one PostgreSQL database, one schema each (named after the
    connector), as a company's warehouse holds them, read as the CRM's stack (`stack`: connector ->
    adapter, in that order), plus the test's added rows per connector; the helpdesk an empty
    reference database; a connector's entry may be the stack's own ({"adapter": …, "tables": […]}).
    Returns (helpdesk url, warehouse url, rows loaded per connector and table)."""
    import uuid

    from crm_kpis.sources.connections import engine_for
    from crm_kpis.tools.demo.loader import load_database
    from tests.integration.adapter_helpers import point

    url = postgres.create(f"stack_{uuid.uuid4().hex[:6]}")
    engine = engine_for(url)
    loaded = {}
    for connector in stack:
        loaded[connector] = load_seeds(engine, connector, connector)
        with engine.begin() as conn:
            for statement in (added or {}).get(connector, ()):
                conn.execute(text(statement.format(**{t: f'"{connector}"."{t}"' for t in loaded[connector]})))
    helpdesk_url = f"sqlite:///{tmp_path / 'helpdesk.db'}"
    load_database(engine_for(helpdesk_url), "helpdesk", {})
    point(monkeypatch, crm=url, helpdesk=helpdesk_url,
          crm_adapters=[{**({"adapter": entry} if isinstance(entry, str) else entry), "schema": connector}
                        for connector, entry in stack.items()])
    return helpdesk_url, url, loaded


def checked(seeded: tuple[str, str, str | None, dict[str, int]], adapter: str, database: str, capsys: Any) -> str:
    """`python -m crm_kpis.sources check` of a seeded connection (`seeded_connection`) through its
    adapter: asserts it passes (exit 0) and returns what it printed."""
    from crm_kpis.sources.check_command import main

    other, url, schema, _ = seeded
    urls = {database: url, "helpdesk" if database == "crm" else "crm": other}
    args = ["check", "--crm-url", urls["crm"], "--helpdesk-url", urls["helpdesk"], f"--{database}-adapter", adapter]
    code = main(args + ([f"--{database}-schema", schema] if schema else []))
    out = capsys.readouterr().out
    assert code == 0, out
    return out
