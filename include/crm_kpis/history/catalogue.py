"""The KPI catalogue and targets in the warehouse, beside the history they describe.

Why tables and not only the API: an analyst's BI tool or notebook reads the warehouse, and the
names, units, directions, formulas and targets live in Python (crm_kpis.kpis) and YAML
(reports.yaml). The publish task writes them after each period it publishes, so they are never
older than the newest history; a table whose content is already current is left untouched, so
that the daily and monthly runs publishing at the same time do not rewrite it in turn.

    SELECT h.period_start, c.name, h.member, h.value, c.unit, t.target
    FROM kpi_history h
    JOIN kpi_catalogue c ON c.kpi_id = h.kpi_id AND c.grain = h.grain
    LEFT JOIN kpi_targets t ON t.kpi_id = h.kpi_id AND t.grain = h.grain
                           AND t.dimension = h.dimension AND t.member = h.member
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from crm_kpis.config.settings import Settings
from crm_kpis.history import locks
from crm_kpis.history.store import kpi_catalogue, kpi_targets
from crm_kpis.kpis import REGISTRY
from crm_kpis.periods import GRAINS

log = logging.getLogger(__name__)

LOCK_NAME = "kpi_catalogue"
#: the columns compared to decide whether a table is current (not its updated_at)
_CATALOGUE_KEYS = ("kpi_id", "grain", "name", "area", "unit", "direction", "flow", "breakdowns", "formula",
                   "description", "target", "at_risk", "definition_version")
_TARGET_KEYS = ("kpi_id", "grain", "dimension", "member", "target", "at_risk")


def catalogue_rows(settings: Settings) -> list[dict[str, Any]]:
    """One row per KPI and grain it is computed for, with the grain's company-wide target."""
    rows = []
    for kpi in REGISTRY.values():
        for grain in GRAINS:
            if not kpi.applies_to(grain):
                continue
            target = settings.target_for(grain, kpi.id)
            rows.append({"kpi_id": kpi.id, "grain": grain, "name": kpi.name, "area": kpi.area, "unit": kpi.unit,
                         "direction": kpi.better, "flow": kpi.flow, "breakdowns": ",".join(kpi.breakdowns),
                         "formula": kpi.formula, "description": kpi.description,
                         "target": target.target if target else None, "at_risk": target.at_risk if target else None,
                         "definition_version": kpi.definition_version})
    return rows


def target_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every target the configuration sets, company-wide (dimension "") and per member."""
    rows = []
    for grain, targets in settings.targets.items():
        for kpi_id, target in targets.items():
            rows.append({"kpi_id": kpi_id, "grain": grain, "dimension": "", "member": "",
                         "target": target.target, "at_risk": target.at_risk})
            for (dimension, member), member_target in target.members.items():
                rows.append({"kpi_id": kpi_id, "grain": grain, "dimension": dimension, "member": member,
                             "target": member_target.target, "at_risk": member_target.at_risk})
    return rows


def _content(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> set[tuple[Any, ...]]:
    return {tuple(bool(r[k]) if k == "flow" else r[k] for k in keys) for r in rows}


def refresh(engine: Engine, settings: Settings) -> dict[str, Any]:
    """Bring kpi_catalogue and kpi_targets in step with the code and configuration; what changed."""
    wanted = {"kpi_catalogue": (kpi_catalogue, catalogue_rows(settings), _CATALOGUE_KEYS),
              "kpi_targets": (kpi_targets, target_rows(settings), _TARGET_KEYS)}
    now = datetime.now(UTC).replace(tzinfo=None)
    changed: dict[str, int] = {}
    with engine.connect() as conn:
        try:
            with conn.begin():
                if not locks.take(conn, LOCK_NAME):
                    raise RuntimeError(f"could not lock the KPI catalogue within {locks.TIMEOUT_S} s")
                for name, (table, rows, keys) in wanted.items():
                    stored = [dict(r) for r in conn.execute(select(table)).mappings()]
                    if _content(stored, keys) == _content(rows, keys):
                        continue
                    conn.execute(delete(table))
                    if rows:
                        conn.execute(insert(table), [{**r, "updated_at": now} for r in rows])
                    changed[name] = len(rows)
        finally:
            locks.release(conn, LOCK_NAME)
            conn.commit()
    if changed:
        log.info("KPI catalogue brought in step: %s", ", ".join(f"{n} {t} rows" for t, n in changed.items()))
    return {"kpis": len(REGISTRY), "rewritten": changed}
