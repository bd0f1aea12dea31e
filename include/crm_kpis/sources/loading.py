"""Loading an area's extracts for one period: the contract verified first, each extract read once,
its unreadable values and its row rules counted, its excluded rows kept by key.

Why apart from the registry: the registry (crm_kpis.sources.extracts) is a declaration other
modules read (coverage, the check command); this is the mechanism that runs it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crm_kpis.periods import ReportPeriod
from crm_kpis.quality.rules import Rule, apply_rules
from crm_kpis.sources.connections import SourceSettings, engine_for, source_settings
from crm_kpis.sources.contract import columns_read, load_contract
from crm_kpis.sources.contract_checks import schema_problems
from crm_kpis.sources.extracts import EXTRACTS, source_table
from crm_kpis.sources.memory import give_back_freed_memory
from crm_kpis.sources.read_together import groups as together
from crm_kpis.sources.read_together import read_together
from crm_kpis.sources.reading import close_idle_sessions, read_extract
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


def load_extracts(names: set[str], period: ReportPeriod, groups: list[list[str]] | None = None,
                  on_group: Callable[[dict[str, pd.DataFrame]], None] | None = None) -> Loaded:
    """Run each named extract once for the period, read its values by type, apply its row checks.

    With `groups` (lists of the names, in the order to start reading them) and `on_group`, each
    group's checked frames are handed to `on_group` as soon as the last of them is checked, then
    dropped: the caller computes what needs them and keeps only its results, so the task never
    holds every extract at once (at company scale the sales task's 18 extracts, 11.7 M rows, held
    1.3 GB). Reads run `parallel_reads` at once, each checked as it arrives, whatever the order
    (a slow aggregate does not hold up the reads behind it); no new read starts while an arrived
    one waits to be checked, so that a long computation (the lifetime-value fits) does not pile up
    rows read ahead. The outcome does not depend on which read
    finished first: each extract is checked alone, excluded keys merge by their largest count, and
    the values are the caller's per group. Without `on_group`, every frame is kept in `Loaded.frames`.
    """
    loaded = Loaded(frames={}, rows_read={}, rejected={})
    contract = load_contract()
    plan = [sorted(g) for g in groups] if groups is not None else [sorted(names)]
    ordered = [n for g in plan for n in g]
    sources = {conn_id: source_settings(conn_id) for conn_id in sorted({EXTRACTS[n].conn_id for n in ordered})}
    threads = max((s.parallel_reads for s in sources.values()), default=1)  # the most any source allows
    waiting = _read_units(ordered, period, sources)
    open_groups = [set(g) for g in plan if g]
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="extract")
    started: dict[Future[Any], tuple[str, ...]] = {}  # not yet checked, in the order they were started
    lock = threading.RLock()  # the readers start the next read themselves (done callbacks)
    backlog = 1  # a read arrived and waiting to be checked, at most (the others wait to start)

    def start_more(_: Any = None) -> None:
        """Start reads while a reader is free and no arrived one waits: from this thread, and from a
        reader as it finishes, so that it does not idle while this thread checks or computes."""
        with lock:
            while waiting and sum(not f.done() for f in started) < threads and \
                    sum(f.done() for f in started) < backlog:
                unit_names, read = waiting.pop(0)
                try:
                    future = pool.submit(read)
                except RuntimeError:  # the pool is shutting down after a failed check
                    return
                started[future] = unit_names
                future.add_done_callback(start_more)

    try:
        start_more()
        while True:
            with lock:
                if not started:
                    break
                pending = list(started)
            wait(pending, return_when=FIRST_COMPLETED)
            with lock:
                arrived = [(f, started.pop(f)) for f in list(started) if f.done()]  # in the order started
            for future, unit_names in arrived:
                result = future.result()
                for name in unit_names:
                    raw, reads = result[name] if isinstance(result, dict) else result
                    _check_one(loaded, name, raw, reads, contract)
                    del raw, reads
                del result, future
                give_back_freed_memory()  # what reading and checking it freed (crm_kpis.sources.memory)
                start_more()
                if on_group is None:
                    continue
                for group in [g for g in open_groups if g <= loaded.frames.keys()]:
                    open_groups.remove(group)
                    on_group({n: loaded.frames.pop(n) for n in sorted(group)})
                    give_back_freed_memory()
    finally:
        # every read ended (those not started yet cancelled when a check failed) before the sessions
        # they used are closed: they are kept for this task's reads only
        pool.shutdown(wait=True, cancel_futures=True)
        close_idle_sessions()
    return _in_order(loaded, ordered)


def _in_order(loaded: Loaded, ordered: list[str]) -> Loaded:
    """The counts in the extracts' order (and tables by their first extract), as if each had been
    read after the one before: what the run stores and shows does not depend on which read finished first."""
    # the order _check_one first touches them in: the tables a query counted rows of, then its own
    tables = list(dict.fromkeys(t for n in ordered for t in (*(c[2] for c in EXTRACTS[n].counted_in_sql),
                                                             source_table(EXTRACTS[n]))))
    watched = list(dict.fromkeys(f"{source_table(EXTRACTS[n])}.{c}" for n in ordered for c in EXTRACTS[n].outliers))
    by_name = {n: i for i, n in enumerate(ordered)}
    by_table = {t: i for i, t in enumerate(tables)}

    def sort(d: dict[str, Any], rank: dict[str, int]) -> dict[str, Any]:
        return dict(sorted(d.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))

    loaded.frames = sort(loaded.frames, by_name)
    loaded.rows_read, loaded.rejected = sort(loaded.rows_read, by_name), sort(loaded.rejected, by_name)
    loaded.unreadable, loaded.repeats = sort(loaded.unreadable, by_name), sort(loaded.repeats, by_name)
    loaded.excluded = sort(loaded.excluded, by_table)
    loaded.extremes = sort(loaded.extremes, {k: i for i, k in enumerate(watched)})
    return loaded


def _read_units(names: list[str], period: ReportPeriod,
                sources: dict[str, SourceSettings]) -> list[tuple[tuple[str, ...], Callable[[], Any]]]:
    """Each read to run, in the names' order (a statement shared by several extracts at its first
    one's place), as (the extracts it gives, the call that reads them), at most `parallel_reads`
    at once per source.

    Why parallel: an area's two history queries (buyer flags, purchase histories) are each a
    single-threaded aggregate in the database; read one after the other they took 8.5 s at scale
    30, at once 4.6 s. The rows are checked in the names' order as they arrive, so the outcome does
    not depend on which read finished first. Connections and settings are looked up here, in the
    task's thread.
    """
    limits: dict[str, threading.Semaphore] = {}
    shared = {name: group for group in together(names, sources) for name in group}
    units: list[tuple[tuple[str, ...], Callable[[], Any]]] = []
    done: set[str] = set()
    for name in names:
        if name in done:
            continue
        group = shared.get(name, (name,))
        done.update(group)
        extract = EXTRACTS[group[0]]
        target = period.shift(extract.shift) if extract.shift else period
        source = sources[extract.conn_id]
        engine = engine_for(extract.conn_id)
        limit = limits.setdefault(extract.conn_id, threading.Semaphore(source.parallel_reads))
        if name in shared:  # one statement for extracts that share a costly derivation

            def read(engine: Any = engine, group: tuple[str, ...] = group, target: ReportPeriod = target,
                     source: Any = source, limit: threading.Semaphore = limit) -> Any:
                with limit:
                    return read_together(engine, group, target.sql_params(source.timezone), source.timezone, source)
        else:

            def read(engine: Any = engine, extract: Any = extract, target: ReportPeriod = target,
                     source: Any = source, limit: threading.Semaphore = limit) -> Any:
                with limit:
                    tz = source.timezone
                    return read_extract(engine, extract.sql, target.sql_params(tz), tz, source)
        units.append((group, read))
    return units


def _check_one(loaded: Loaded, name: str, raw: pd.DataFrame, reads: dict[str, Any], contract: Any) -> None:
    """One extract's rows as read: its unreadable values and row rules counted, its frame kept."""
    extract = EXTRACTS[name]
    table = source_table(extract)
    # unreadable values first: a row is counted once, under the first rule it breaks
    typed_rules = tuple(Rule(rule, lambda f, c=marker: f[c]) for rule, marker in marked_rules(raw))
    checked = apply_rules(name, raw, typed_rules + extract.rules)
    excluded = dict(checked.rejected)
    for rule, column, left_out_of in extract.counted_in_sql:
        n = int(pd.to_numeric(raw[column]).fillna(0).sum()) if len(raw) else 0
        if n:
            excluded[rule] = excluded.get(rule, 0) + n
            _count_rows(loaded.excluded, left_out_of, rule, n)
            log.warning("%s: the query left out %d source rows (%s)", name, n, rule)
    key = contract.tables[table].key if table in contract.tables else None
    _record_excluded(loaded.excluded, table, key, raw, checked.masks, checked.rejected)
    loaded.frames[name] = without_marks(checked.frame)
    loaded.extremes.update(extremes_of(loaded.frames[name], table, key, extract.outliers))
    if extract.repeats:
        loaded.repeats[name] = repeats_of(loaded.frames[name], extract.repeats)
    loaded.rows_read[name] = len(raw)
    if excluded:
        loaded.rejected[name] = excluded
    if reads:
        loaded.unreadable[name] = {c: {"unreadable": r.unreadable, "values": r.values, "table": table}
                                   for c, r in reads.items()}
    log.info("extract %s: %d rows read, %d excluded", name, len(raw), sum(excluded.values()))
