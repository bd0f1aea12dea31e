"""How far a synced source's last sync got: the newest stamp its connector writes on every row
(Fivetran's `_fivetran_synced`), for the quality gate's freshness check.

Why not the newest business record: in a quiet month a small company creates few tickets or deals,
so the newest record can be days before the period's end although the sync ran an hour ago; the
gate then took a complete month for an unfinished load. The sync's own stamp says whether the
load got past the period's end, whatever the business did. The adapter declares the column and
the tables to read it from (`synced_at`): small tables that every sync touches, since a maximum
over an unindexed column reads the whole table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import column, func, select, table

from crm_kpis.sources.adapters import Adapter, synced_layout
from crm_kpis.sources.stack import Stack


def stack_last_sync(engine: Any, stack: Stack) -> datetime | None:
    """How far the stack's syncs got: the stalest of its parts' last syncs (a stalled connector
    holds the whole database back); None where no part has a stamp."""
    stamps = [last_sync(engine, p.adapter, p.schema) for p in stack.parts]
    known = [s for s in stamps if s is not None]
    return min(known) if known else None


def last_sync(engine: Any, adapter: Adapter, schema: str | None) -> datetime | None:
    """The newest sync stamp (UTC, naive) over the adapter's `synced_at` tables that the database
    has with that column; None where the layout has none (the gate then looks at the records)."""
    if adapter.synced_at is None:
        return None
    stamp = adapter.synced_at.column
    layout = synced_layout(engine, adapter, schema)
    newest: list[datetime] = []
    with engine.connect() as conn:
        for name in adapter.synced_at.tables:
            if stamp not in layout.get(name, ()):
                continue
            source = table(layout.tables.get(name, name), schema=schema)  # the database's own name for it
            value = conn.execute(select(func.max(column(stamp))).select_from(source)).scalar()
            if value is not None:
                newest.append(_utc(value))
    return max(newest) if newest else None


def _utc(value: Any) -> datetime:
    """A stamp as naive UTC: Fivetran writes UTC, so a stamp without a zone is UTC (not the
    connection's zone, which is about the business columns); text from SQLite is parsed."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
