"""Compute one area's KPIs for one period: load the extracts its KPIs need, check, compute.

Pure apart from the extract reads; the DAG task calls `compute_area` and stages the result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from crm_kpis.kpis import KpiValue, kpis_for
from crm_kpis.kpis.base import Inputs, KpiDef
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.adapters import one_inspection
from crm_kpis.sources.connections import engine_for, source_settings
from crm_kpis.sources.contract import load_contract, tables_read
from crm_kpis.sources.contract_checks import signal_present
from crm_kpis.sources.coverage import not_recorded_kpis, without_unrecorded_breakdowns
from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.loading import broken_sources, load_extracts
from crm_kpis.sources.reading import shared_labels
from crm_kpis.sources.signals_in_frames import shown_by_frames
from crm_kpis.sources.sql_files import bind_values
from crm_kpis.sources.sync_progress import stack_last_sync

log = logging.getLogger(__name__)


class KpiComputationError(RuntimeError):
    """A KPI's computation failed; the message names the KPI and the period."""


@dataclass
class AreaResult:
    area: str
    period: ReportPeriod
    values: list[KpiValue]
    rows_read: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    #: the newest record read (shown with the run)
    latest_source_ts: datetime | None = None
    #: per extract and column: values that could not be read as the contract's type
    unreadable: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: per source table and rule: the excluded rows (by key where the table has one)
    excluded: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: tracking signals the sources do not satisfy before the period's end, and what they say
    untracked: dict[str, str] = field(default_factory=dict)
    #: the largest row of each watched magnitude column (extracts.Extract.outliers)
    extremes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: what the KPIs fitted (parameters and diagnostics of the lifetime-value models), kept with the run
    models: dict[str, Any] = field(default_factory=dict)
    #: how far the last sync of the area's sources that stamp their syncs got (the stalest of them)
    latest_sync_ts: datetime | None = None
    #: the newest record read from the sources that do not stamp their syncs (the freshness check's)
    latest_unsynced_ts: datetime | None = None
    #: sources that lack what the extracts read (source -> why): their KPIs are n/a this run
    broken: dict[str, str] = field(default_factory=dict)
    #: per extract with declared content columns: rows and rows repeating another's (a double load)
    repeats: dict[str, dict[str, int]] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """What the task logs and returns through XCom: counts only."""
        return {
            "area": self.area,
            "period": self.period.key,
            "kpis": len({v.kpi_id for v in self.values}),
            "values": len(self.values),
            "rows_read": sum(self.rows_read.values()),
            "rows_rejected": sum(sum(r.values()) for r in self.rejected.values()),
        }


def _latest_timestamp(frames: dict[str, pd.DataFrame], end: datetime) -> datetime | None:
    """The newest source timestamp before the period end: how fresh the data looked."""
    latest: pd.Timestamp | None = None
    for frame in frames.values():
        for column in frame.columns:
            if column.endswith("_at") and pd.api.types.is_datetime64_any_dtype(frame[column]):
                values = frame[column][frame[column] < end]
                if len(values):
                    top = values.max()
                    latest = top if latest is None or top > latest else latest
    return None if latest is None else latest.to_pydatetime()


#: Breakdown columns; a row without a value falls under member "unknown", so that the members of
#: an additive KPI always add up to the company-wide value.
DIMENSIONS = ("channel", "segment", "rep_team", "ticket_channel", "agent_team")
UNKNOWN_MEMBER = "unknown"


def prepare_frames(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    out = {}
    for name, frame in frames.items():
        missing = [c for c in DIMENSIONS if c in frame.columns and frame[c].isna().any()]
        if missing:
            # a shallow copy: only the replaced columns are new; a deep copy of a 4.9 million-row
            # extract cost 650 MB at company scale, for one column
            frame = frame.copy(deep=False)
            for column in missing:
                frame[column] = shared_labels(frame[column], UNKNOWN_MEMBER)
        out[name] = frame
    return out


def compute_frames(area: str, period: ReportPeriod, frames: dict[str, pd.DataFrame],
                   untracked: dict[str, str] | None = None, models: dict[str, Any] | None = None,
                   not_recorded: dict[str, str] | None = None,
                   definitions: list[KpiDef] | None = None) -> list[KpiValue]:
    """Compute the area's KPIs (or the given `definitions` of it) from already-loaded frames.

    `untracked`: tracking signals that do not hold (see `untracked_signals`); their KPIs are n/a.
    `models`, when given, receives what the KPIs fitted (Inputs.models). `not_recorded`: KPIs the
    sources' adapters cannot give (`not_recorded_kpis`), n/a with the adapter's reason.
    """
    inputs = Inputs(period, prepare_frames(frames))
    if models is not None:
        inputs.models = models
    values: list[KpiValue] = []
    for definition in kpis_for(area, period.grain) if definitions is None else definitions:
        if not_recorded and definition.id in not_recorded:
            values.append(definition.not_tracked(not_recorded[definition.id]))
            continue
        try:
            values.extend(definition.evaluate(inputs, untracked))
        except Exception as exc:
            raise KpiComputationError(f"{definition.id} failed for {period}: {exc!r}") from exc
    return values


def untracked_signals(signals: set[str], period: ReportPeriod, unreadable: dict[str, str] | None = None,
                      frames: dict[str, pd.DataFrame] | None = None) -> dict[str, str]:
    """The tracking signals with no row in their source before the period's end (name → reason).

    A signal that a row of the period's `frames` already proves holds without a query
    (crm_kpis.sources.signals_in_frames); the others are asked of the sources.

    Through a connection's adapter: a signal its synced layout never records is untracked with the
    adapter's reason, without a query; another is asked of the adapted tables, and its absence said
    in the adapter's terms where it has them. A signal on a table a broken source cannot give
    (`unreadable`: table -> why) is untracked with that reason, without a query.
    """
    contract = load_contract()
    out = {}
    sources: dict[str, tuple[Any, dict[str, Any], Any]] = {}  # per connection: engine, bound period, settings
    for name in sorted(signals):
        signal = contract.signals[name]
        if unreadable and signal.table in unreadable:
            out[name] = unreadable[signal.table]
            continue
        if frames and shown_by_frames(signal, frames, period):
            continue
        conn_id = contract.tables[signal.table].conn_id
        if conn_id not in sources:
            engine, source = engine_for(conn_id), source_settings(conn_id)
            sources[conn_id] = (engine, bind_values(period.sql_params(source.timezone), engine.dialect.name), source)
        engine, params, source = sources[conn_id]
        stack = source.stack
        if stack is not None and (never := stack.signal_not_recorded(signal)):
            out[name] = never
        elif not signal_present(engine, signal, params, source):
            out[name] = stack.signal_says(signal) if stack is not None else signal.says
        else:
            continue
        log.info("%s: not tracked before %s (%s): its KPIs are n/a", name, period.end_date, out[name])
    return out


def sync_stamps(conn_ids: set[str]) -> dict[str, datetime | None]:
    """Per connection, how far its last sync got: read through an adapter that declares the sync's
    stamp, and present in the database; None for the others (judged by their newest record)."""
    out: dict[str, datetime | None] = {}
    for conn_id in sorted(conn_ids):
        stack = source_settings(conn_id).stack
        out[conn_id] = None if stack is None else stack_last_sync(engine_for(conn_id), stack)
    return out


@dataclass(frozen=True)
class InputGroup:
    """KPIs that read the same extracts, directly or through each other (a connected component of
    KPIs and their inputs): computed together once their extracts are loaded."""

    extracts: tuple[str, ...]
    definitions: list[KpiDef]


def input_groups(definitions: list[KpiDef]) -> list[InputGroup]:
    """The definitions grouped by shared inputs, in the order to read them: those holding a long
    aggregate first, then by their first extract's name."""
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.setdefault(name, name) != name:
            name = parent[name]
        return name

    for d in definitions:
        for a, b in zip(d.inputs, d.inputs[1:], strict=False):
            parent[root(a)] = root(b)
        root(d.inputs[0])
    extracts: dict[str, set[str]] = {}
    members: dict[str, list[KpiDef]] = {}
    for d in definitions:
        extracts.setdefault(root(d.inputs[0]), set()).update(d.inputs)
        members.setdefault(root(d.inputs[0]), []).append(d)
    # those with a long aggregate first (Extract.read_first): the other groups' reads run beside it
    return sorted((InputGroup(tuple(sorted(extracts[r])), members[r]) for r in extracts),
                  key=lambda g: (not any(EXTRACTS[n].read_first for n in g.extracts), g.extracts[0]))


def compute_area(area: str, period: ReportPeriod) -> AreaResult:
    with one_inspection():  # each synced database's tables and columns inspected once for the area
        return _compute_area(area, period)


def _compute_area(area: str, period: ReportPeriod) -> AreaResult:
    definitions = kpis_for(area, period.grain)
    broken = broken_sources({name for d in definitions for name in d.inputs})
    # a broken source's tables: every extract that reads one is not run, and its KPIs are n/a
    unreadable = {t: b.reason for b in broken for t in sorted(b.tables)}
    blocked = {name for name in EXTRACTS if set(tables_read(EXTRACTS[name].sql)) & set(unreadable)}
    cannot = {d.id: "; ".join(dict.fromkeys(unreadable[t] for n in d.inputs if n in blocked
                                            for t in tables_read(EXTRACTS[n].sql) if t in unreadable))
              for d in definitions if set(d.inputs) & blocked}
    computable = [d for d in definitions if d.id not in cannot]
    # a KPI the sources' adapters can never give is n/a without reading its inputs: an extract only
    # it needs is not run (Stripe records no renewals: the term ends are not read through it)
    not_recorded = not_recorded_kpis(computable)
    evaluated = [d for d in computable if d.id not in not_recorded]
    needed = {name for d in evaluated for name in d.inputs}
    # the KPIs by the extracts they share, computed group by group as their extracts arrive; each
    # group's frames are dropped once its KPIs are computed (crm_kpis.sources.loading)
    groups = input_groups(evaluated)
    signals = {s for d in computable for s in (*d.tracked, *d.partial)}
    proven: set[str] = set()  # signals a frame of the period already showed to hold
    untracked: dict[str, str] = {}
    decided: set[str] = set()
    latest: dict[str, datetime | None] = {}  # per extract, its newest timestamp before the period's end
    models: dict[str, Any] = {}
    values: list[KpiValue] = []

    def decide(wanted: set[str], frames: dict[str, pd.DataFrame]) -> None:
        proven.update(s for s in signals - proven if shown_by_frames(load_contract().signals[s], frames, period))
        asked = wanted - decided
        untracked.update(untracked_signals(asked - proven, period, unreadable))
        decided.update(asked)

    by_extracts = {frozenset(g.extracts): g.definitions for g in groups}

    def compute_group(frames: dict[str, pd.DataFrame]) -> None:
        definitions = by_extracts[frozenset(frames)]
        latest.update({n: _latest_timestamp({n: f}, period.utc_end) for n, f in frames.items()})
        decide({s for d in definitions for s in (*d.tracked, *d.partial)}, frames)
        values.extend(compute_frames(area, period, frames, untracked, models, definitions=definitions))

    loaded = load_extracts(needed, period, [list(g.extracts) for g in groups], compute_group)
    decide(signals, {})  # the signals of KPIs nothing was read for (an adapter never records them)
    values.extend(compute_frames(area, period, {}, untracked, models, {**not_recorded, **cannot},
                                 [d for d in definitions if d.id in not_recorded or d.id in cannot]))
    order = {d.id: i for i, d in enumerate(definitions)}
    values = without_unrecorded_breakdowns(sorted(values, key=lambda v: order[v.kpi_id]), definitions)
    # freshness: a source that stamps its syncs by its last sync (the stalest, when several do); the
    # others by their newest record
    stamps = sync_stamps({EXTRACTS[n].conn_id for n in needed})
    unstamped = [t for n, t in latest.items() if stamps[EXTRACTS[n].conn_id] is None and t is not None]
    synced = [s for s in stamps.values() if s is not None]
    newest = [t for t in latest.values() if t is not None]
    result = AreaResult(area, period, values, loaded.rows_read, loaded.rejected,
                        max(newest) if newest else None, loaded.unreadable, loaded.excluded,
                        dict(sorted(untracked.items())), loaded.extremes, models, min(synced) if synced else None,
                        max(unstamped) if unstamped else None, {b.source: b.reason for b in broken},
                        loaded.repeats)
    summary = result.summary()
    log.info("%s %s: %d KPIs, %d values from %d rows read, %d rows excluded", area, period,
             summary["kpis"], summary["values"], summary["rows_read"], summary["rows_rejected"])
    return result
