"""Every adapter asks only for what Fivetran's own package knows its connector to sync: each synced
table and column it requires is declared in the package's schema (`src_<connector>.yml` in
`../shared/data/fivetran/<connector>/schema`) or present in the package's seeds. A column we imagined
would fail every real sync at `sources check`; this catches it without a database."""

from __future__ import annotations

import csv
import re

import pytest
import yaml

from crm_kpis.sources.adapters import available, load_adapter
from tests.fivetran_seeds import FIVETRAN_DIR, seed_tables

#: the connector whose package declares what an adapter reads (its name without `fivetran_`, but for
#: the adapters that read another connector's tables for a second database)
CONNECTOR = {"fivetran_zendesk_satisfaction": "zendesk"}


def _declared(connector: str) -> dict[str, set[str]]:
    """Table -> columns, from the package's schema declarations and its seeds' headers."""
    out: dict[str, set[str]] = {}
    for path in (FIVETRAN_DIR / connector / "schema").glob("*.yml"):
        for source in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("sources", []):
            for table in source.get("tables") or []:
                name = re.sub(r"^.*\.", "", str(table["name"]))
                out.setdefault(name, set()).update(str(c["name"]).lower() for c in table.get("columns") or [])
    for table, path in seed_tables(connector).items():
        with path.open(newline="", encoding="utf-8-sig") as f:
            out.setdefault(table, set()).update(c.lower() for c in next(csv.reader(f)))
    return out


@pytest.mark.parametrize("name", [a for a in available() if a != "reference"])
def test_what_an_adapter_requires_is_what_fivetran_syncs(name):
    adapter = load_adapter(name)
    connector = CONNECTOR.get(name, name.removeprefix("fivetran_"))
    declared = _declared(connector)
    assert declared, f"no Fivetran package data for {connector}"
    missing = [f"{table}.{column}" for table, columns in adapter.synced.items()
               for column in columns if column not in adapter.optional_columns.get(table, {})
               and column not in declared.get(table, set())]
    assert not missing, f"{name} requires what Fivetran's {connector} package never declares: {missing}"
