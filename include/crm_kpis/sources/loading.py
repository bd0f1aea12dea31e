"""Loading an area's extracts for one period: the contract verified first, each extract read once,
its unreadable values and its row rules counted, its excluded rows kept by key.

Why apart from the registry: the registry (crm_kpis.sources.extracts) is a declaration other
modules read (coverage, the check command); this is the mechanism that runs it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crm_kpis.periods import ReportPeriod
from crm_kpis.quality.rules import Rule, apply_rules
from crm_kpis.sources.connections import engine_for, source_settings
from crm_kpis.sources.contract import columns_read, load_contract
from crm_kpis.sources.contract_checks import schema_problems
from crm_kpis.sources.extracts import EXTRACTS, source_table
from crm_kpis.sources.reading import read_extract
from crm_kpis.sources.stack import part_problems
from crm_kpis.sources.typed_read import marked_rules, without_marks

log = logging.getLogger(__name__)


#: Excluded keys kept per (extract, rule) to count a source row once across extracts; past this
#: many, only the count is kept (and the largest count of any extract is taken).
MAX_KEYS_PER_RULE = 10_000


@dataclass
class Loaded:
    frames: dict[str, pd.DataFrame]
    rows_read: dict[str, int]
    rejected: dict[str, dict[str, int]]
    #: per extract, per column that had unreadable values: {"unreadable": n, "values": m, "table": t}
    unreadable: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: per source table, per rule: {"keys": {key: rows}} or {"rows": n} (see MAX_KEYS_PER_RULE)
    excluded: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: per "table.column" of an extract's `outliers`: the largest value, its row's key, the median
    extremes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per extract with `repeats`: {"rows": n, "repeats": rows repeating an earlier row's content}
    repeats: dict[str, dict[str, int]] = field(default_factory=dict)


def extremes_of(frame: pd.DataFrame, table: str, key: str | None, columns: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for column in columns:
        values = frame[column].dropna()
        if len(values):
            top = values.idxmax()
            out[f"{table}.{column}"] = {"max": float(values.max()), "median": float(values.median()),
                                        "rows": int(len(values)),
                                        "key": str(frame.at[top, key]) if key and key in frame.columns else str(top)}
    return out


def repeats_of(frame: pd.DataFrame, columns: tuple[str, ...]) -> dict[str, int]:
    """How many rows repeat an earlier row's content (`columns`) under another key: a period loaded
    twice under new ids has as many repeats as originals. Rows with a missing part do not count."""
    if not columns or frame.empty:
        return {"rows": int(len(frame)), "repeats": 0}
    complete = frame.dropna(subset=list(columns))
    return {"rows": int(len(frame)), "repeats": int(complete.duplicated(subset=list(columns), keep="first").sum())}


def _count_rows(into: dict[str, dict[str, dict[str, Any]]], table: str, rule: str, n: int) -> None:
    """Record only a count of excluded rows (no keys): the largest count any extract saw wins."""
    slot = into.setdefault(table, {}).setdefault(rule, {})
    known = sum(slot.pop("keys", {}).values())
    slot["rows"] = max(slot.get("rows", 0), known, n)


def _record_excluded(into: dict[str, dict[str, dict[str, Any]]], table: str, key: str | None,
                     raw: pd.DataFrame, masks: dict[str, pd.Series], counts: dict[str, int]) -> None:
    for rule, n in counts.items():
        slot = into.setdefault(table, {}).setdefault(rule, {})
        mask = masks.get(rule)
        if key and key in raw.columns and mask is not None and n <= MAX_KEYS_PER_RULE and "rows" not in slot:
            keys = raw.loc[mask.to_numpy(), key].astype(str).value_counts()
            merged = slot.setdefault("keys", {})
            for k, c in keys.items():
                merged[str(k)] = max(merged.get(str(k), 0), int(c))
        else:
            _count_rows(into, table, rule, n)


def sources_needed(names: set[str]) -> dict[str, dict[str, tuple[str, ...]]]:
    """Per connection, the reference tables and columns the named extracts read."""
    out: dict[str, dict[str, set[str]]] = {}
    for name in names:
        extract = EXTRACTS[name]
        for table, columns in columns_read(extract.sql).items():
            out.setdefault(extract.conn_id, {}).setdefault(table, set()).update(columns)
    return {conn: {t: tuple(sorted(c)) for t, c in tables.items()} for conn, tables in out.items()}


@dataclass(frozen=True)
class BrokenSource:
    """A source (a connection, or one connector of its stack) that lacks what the extracts read:
    the reference tables it cannot give this run, and why, naming table and column."""

    source: str
    problems: tuple[str, ...]
    tables: frozenset[str]

    @property
    def reason(self) -> str:
        return f"{self.source} cannot be read ({'; '.join(self.problems)})"


def broken_sources(names: set[str]) -> list[BrokenSource]:
    """The sources that lack a table or column the named extracts read, each with the reference
    tables it cannot give: a connection in the reference layout, or a connector of a stack (the
    tables it fills). The others are read as usual.

    Why not fail the run: one broken source (a connector whose sync dropped a column) would take
    the whole report down, and each area's task would alert about the same cause. Its KPIs are n/a
    with the reason instead; the quality gate says it once and the report's `on_broken_source`
    decides whether the report is held, sent or stopped. Type mismatches are only logged: their
    values are read one by one and the unreadable ones excluded and counted (typed_read).
    """
    out = []
    for conn_id, tables in sorted(sources_needed(names).items()):
        source = source_settings(conn_id)
        engine = engine_for(conn_id)
        if source.stack is not None:
            for part in source.stack.parts:
                if problems := part_problems(part, engine):
                    out.append(BrokenSource(f"{conn_id}: {part.where()}", tuple(problems),
                                            frozenset(source.stack.fillers_of(part))))
            continue
        errors = []
        for problem in schema_problems(engine, tables):
            if problem.level == "error":
                errors.append(problem)
            else:
                log.warning("source contract, %s: %s", conn_id, problem.line())
        if errors:
            out.append(BrokenSource(conn_id, tuple(f"{f'{p.table}.{p.column}: ' if p.column else ''}{p.message} "
                                                   f"Fix: {p.fix}" for p in errors), frozenset(p.table for p in errors)))
    for broken in out:
        log.error("%s: its KPIs are n/a this run; run `python -m crm_kpis.sources check` for the fix", broken.reason)
    return out


def load_extracts(names: set[str], period: ReportPeriod) -> Loaded:
    """Run each named extract once for the period, read its values by type, apply its row checks."""
    frames: dict[str, pd.DataFrame] = {}
    rows_read: dict[str, int] = {}
    rejected: dict[str, dict[str, int]] = {}
    unreadable: dict[str, dict[str, dict[str, Any]]] = {}
    excluded_rows: dict[str, dict[str, dict[str, Any]]] = {}
    extremes: dict[str, dict[str, Any]] = {}
    repeats: dict[str, dict[str, int]] = {}
    contract = load_contract()
    for name in sorted(names):
        extract = EXTRACTS[name]
        target = period.shift(extract.shift) if extract.shift else period
        source = source_settings(extract.conn_id)
        tz = source.timezone
        raw, reads = read_extract(engine_for(extract.conn_id), extract.sql, target.sql_params(tz), tz, source)
        table = source_table(extract)
        # unreadable values first: a row is counted once, under the first rule it breaks
        typed_rules = tuple(Rule(rule, lambda f, c=marker: f[c]) for rule, marker in marked_rules(raw))
        checked = apply_rules(name, raw, typed_rules + extract.rules)
        excluded = dict(checked.rejected)
        for rule, column, left_out_of in extract.counted_in_sql:
            n = int(pd.to_numeric(raw[column]).fillna(0).sum()) if len(raw) else 0
            if n:
                excluded[rule] = excluded.get(rule, 0) + n
                _count_rows(excluded_rows, left_out_of, rule, n)
                log.warning("%s: the query left out %d source rows (%s)", name, n, rule)
        key = contract.tables[table].key if table in contract.tables else None
        _record_excluded(excluded_rows, table, key, raw, checked.masks, checked.rejected)
        frames[name] = without_marks(checked.frame)
        extremes.update(extremes_of(frames[name], table, key, extract.outliers))
        if extract.repeats:
            repeats[name] = repeats_of(frames[name], extract.repeats)
        rows_read[name] = len(raw)
        if excluded:
            rejected[name] = excluded
        if reads:
            unreadable[name] = {c: {"unreadable": r.unreadable, "values": r.values, "table": table}
                                for c, r in reads.items()}
        log.info("extract %s: %d rows read, %d excluded", name, len(raw), sum(excluded.values()))
    return Loaded(frames, rows_read, rejected, unreadable, excluded_rows, extremes, repeats)
