"""Adapters: a synced SaaS schema (Zendesk, HubSpot, Salesforce as Fivetran writes them) read as the
reference tables, so that the extracts, the KPIs, the history and the reports do not change.

Why SQL files and one mechanism: an adapter is a declaration (`include/sql/adapters/<name>/adapter.yaml`)
and one `SELECT` per reference table over the synced tables. An extract that reads reference
tables is run with those SELECTs as CTEs of the same names in front of it (`WITH tickets AS (…)`),
so nothing is created in the source and the period's filter still runs in the database. Jinja is
used for structure only: `{{ src.ticket }}` becomes the synced table's quoted, schema-qualified name;
values are always bound parameters.

The declaration also says what the layout cannot give: signals it never records (`not_recorded`),
KPIs it cannot compute (`kpis_not_recorded`), what a missing signal means in its terms
(`signal_says`), and the definitions it approximates (`approximations`, printed in the report's
appendix when the adapter is in use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, StrictUndefined

from crm_kpis.config import SQL_DIR

REFERENCE = "reference"
ADAPTERS_DIR = SQL_DIR / "adapters"


class AdapterError(ValueError):
    """An adapter name that does not exist, or one used on a connection it does not fit."""


@dataclass(frozen=True)
class Adapter:
    name: str
    title: str
    database: str  # crm or helpdesk: the reference database it fills
    synced: dict[str, tuple[str, ...]]  # synced table -> the columns its SELECTs read
    tables: dict[str, str]  # reference table -> the SELECT's file name
    not_recorded: dict[str, str] = field(default_factory=dict)  # tracking signal -> reason
    signal_says: dict[str, str] = field(default_factory=dict)
    kpis_not_recorded: dict[str, str] = field(default_factory=dict)
    approximations: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return ADAPTERS_DIR / self.name

    def select(self, table: str, dialect: Any, schema: str | None = None) -> str:
        """The reference table's SELECT with the synced tables' names quoted for the dialect."""
        template = (self.folder / self.tables[table]).read_text(encoding="utf-8")
        body = "\n".join(line.split("--", 1)[0] for line in template.splitlines()).strip()
        return _jinja().from_string(body).render(src=_names(self.synced, dialect, schema))


def available() -> tuple[str, ...]:
    """Every adapter there is (`reference` first: the product's own schema, no SQL in front)."""
    return (REFERENCE, *sorted(p.parent.name for p in ADAPTERS_DIR.glob("*/adapter.yaml")))


@lru_cache(maxsize=16)
def load_adapter(name: str) -> Adapter:
    path = ADAPTERS_DIR / name / "adapter.yaml"
    if name == REFERENCE or not re.fullmatch(r"[a-z0-9_]+", name) or not path.exists():
        raise AdapterError(f"adapter {name!r} does not exist; the adapters are: {', '.join(available())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Adapter(
        name=name, title=raw["title"], database=raw["database"],
        synced={t: tuple(c) for t, c in raw["synced"].items()}, tables=dict(raw["tables"]),
        not_recorded=dict(raw.get("not_recorded") or {}), signal_says=dict(raw.get("signal_says") or {}),
        kpis_not_recorded=dict(raw.get("kpis_not_recorded") or {}),
        approximations=dict(raw.get("approximations") or {}),
    )


@lru_cache(maxsize=1)
def _jinja() -> Environment:
    return Environment(undefined=StrictUndefined, autoescape=False)  # noqa: S701 - SQL, not HTML


def _names(synced: dict[str, tuple[str, ...]], dialect: Any, schema: str | None) -> dict[str, str]:
    preparer = dialect.identifier_preparer
    prefix = f"{preparer.quote_schema(schema)}." if schema else ""
    # always quoted: `user` and `group` are reserved words, and a synced name keeps its case
    return {name: prefix + preparer.quote_identifier(name) for name in synced}


_LEADING_WITH = re.compile(r"^\s*WITH\s+", re.IGNORECASE)


def adapt(sql: str, tables: tuple[str, ...], adapter: Adapter, dialect: Any, schema: str | None = None) -> str:
    """`sql` (over reference tables) with the adapter's SELECT of each table it reads as a CTE.

    A query that starts with its own `WITH` keeps its CTEs after the adapter's. A reference table
    the adapter does not fill is not given a CTE: the contract check has already said it is missing.
    """
    ctes = [f"{t} AS (\n{adapter.select(t, dialect, schema)}\n)" for t in tables if t in adapter.tables]
    if not ctes:
        return sql
    body = "\n".join(line.split("--", 1)[0] for line in sql.splitlines()).strip()
    match = _LEADING_WITH.match(body)
    if match:
        return "WITH " + ",\n".join(ctes) + ",\n" + body[match.end():]
    return "WITH " + ",\n".join(ctes) + "\n" + body


# --- coverage: which KPIs an adapter computes ---------------------------------------------------
COMPUTED, APPROXIMATED, PARTIAL, NOT_RECORDED = "computed", "approximated", "partial", "n/a"


def coverage(adapter: Adapter) -> list[tuple[str, str, str, str]]:
    """(kpi id, name, status, why) for every KPI that reads the adapter's database, from its
    declaration: n/a where it cannot be given, partial where an optional input is missing,
    approximated where the definition is, else computed."""
    from crm_kpis.contract import load_contract
    from crm_kpis.extracts import EXTRACTS
    from crm_kpis.kpis import REGISTRY

    database_of = {conn: db for conn, db in (("crm_db", "crm"), ("helpdesk_db", "helpdesk"))}
    contract = load_contract()
    out = []
    for kpi in sorted(REGISTRY.values(), key=lambda k: k.id):
        databases = {database_of[EXTRACTS[name].conn_id] for name in kpi.inputs}
        if adapter.database not in databases:
            continue
        own = [s for s in kpi.tracked if contract.tables[contract.signals[s].table].database == adapter.database]
        missing = [adapter.not_recorded[s] for s in own if s in adapter.not_recorded]
        partial = [adapter.not_recorded[s] for s in kpi.partial if s in adapter.not_recorded]
        if kpi.id in adapter.kpis_not_recorded:
            out.append((kpi.id, kpi.name, NOT_RECORDED, adapter.kpis_not_recorded[kpi.id]))
        elif missing:
            out.append((kpi.id, kpi.name, NOT_RECORDED, "; ".join(missing)))
        elif partial:
            out.append((kpi.id, kpi.name, PARTIAL, "without: " + "; ".join(partial)))
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
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + f" of {len(rows)} KPIs.\n\n")
    lines = ["| KPI | | status | why |", "|---|---|---|---|"]
    lines += [f"| {name} | `{kpi_id}` | {status} | {why} |" for kpi_id, name, status, why in rows]
    return head + "\n".join(lines) + "\n"
