"""Typed reading of an extract: each column as its contract type, and every unreadable value said.

Why: a synced SaaS schema stores an amount as text ("N/A"), a timestamp as an epoch integer or as
local time, a status as "Completed ". Coercing such a value to NULL and carrying on prints a number
that looks real and is not; letting it through crashes a KPI far from its cause. Here each value
is read as the type the contract declares for its column. A row holding a value that cannot be
read is marked, under a rule named after the column, so that the row checks exclude and count it
like any other bad row, and the quality gate can stop a run whose column is mostly unreadable.

Timestamps are naive in the source's own timezone (the connection's extra `timezone`, default UTC)
and come out as naive UTC; a value that carries an offset is converted from it. Dates are calendar
dates and are not shifted.

A time later than the moment of reading (plus a tolerance) has not happened yet: a ticket
"resolved" in 2099 would stay in the backlog for ever, a first response in 2030 would make the
response time years long. Such a row is excluded and counted under `future_<column>`. The bound is
the reading, not the period's end: a January backfill rightly sees tickets resolved in February.
Dates the contract declares `planned` (a term's end, a campaign's schedule) may lie ahead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from crm_kpis.sources.contract import ColumnSpec, _sql_text, load_contract, main_table, tables_read

log = logging.getLogger(__name__)

#: Marker columns `__excluded__:<rule>` carry, per row, that a value could not be read.
MARK = "__excluded__:"
#: Breakdown labels longer than the warehouse's member column cannot be stored (history/store.py).
LABEL_MAX = 120
#: How far past its reading a recorded time may lie by default (a connection's `future_tolerance_hours`).
FUTURE_TOLERANCE_HOURS = 24.0
#: Breakdown columns whose values become history members (compute.DIMENSIONS).
LABEL_COLUMNS = ("channel", "segment", "rep_team", "ticket_channel", "agent_team")
_OFFSET = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(frozen=True)
class ColumnRead:
    """How many non-null values of a column were read, and how many could not be."""

    unreadable: int
    values: int


@lru_cache(maxsize=128)
def column_specs(sql_name: str) -> dict[str, ColumnSpec]:
    """The contract's spec for each output column name of a SQL file.

    A name is looked up in the file's main table (its first FROM) first, then in the other tables
    it reads: `status` of orders.sql is the orders status. A column renamed in the file
    (`p.first_response_minutes AS sla_first_response_minutes`) is typed as the column it renames:
    a target synced as text must be read as a number, not compared as a string. Other names the
    contract does not know (`agent_team`) are typed by the naming convention (`*_at` timestamp,
    `*_date`/`*_on` date).
    """
    contract = load_contract()
    names = tables_read(sql_name)
    main = main_table(sql_name)
    ordered = ([main] if main in names else []) + [n for n in names if n != main]
    specs: dict[str, ColumnSpec] = {}
    for table_name in ordered:
        for name, spec in contract.tables[table_name].columns.items():
            specs.setdefault(name, spec)
    for source, alias in _RENAMED.findall(_sql_text(sql_name)):
        if alias not in specs and source in specs and alias not in LABEL_COLUMNS:
            # its type only: a LEFT JOIN may give none, and its allowed values are the source column's check
            specs[alias] = replace(specs[source], name=alias, nullable=True, allowed=(), exclude_unknown=False)
    return specs


#: `x.column AS alias` in a SQL file
_RENAMED = re.compile(r"\b\w+\.(\w+)\s+AS\s+(\w+)", re.IGNORECASE)


def _kind(name: str, specs: dict[str, ColumnSpec]) -> ColumnSpec | None:
    if name in specs:
        return specs[name]
    if name.endswith("_at"):
        return ColumnSpec(name, "timestamp", True)
    if name.endswith(("_date", "_on")):
        return ColumnSpec(name, "date", True)
    return None


def _localize(values: pd.Series, tz: str) -> pd.Series:
    """Naive local wall times in `tz` as naive UTC (DST: an ambiguous hour is read as the first,
    a time skipped by the clock change moves forward: both deterministic)."""
    if tz == "UTC":
        return values
    local = values.dt.tz_localize(tz, ambiguous=np.ones(len(values), dtype=bool), nonexistent="shift_forward")
    return local.dt.tz_convert("UTC").dt.tz_localize(None)


def _as_text(raw: pd.Series) -> pd.Series:
    """Strings as they are, dates and datetimes as ISO text, anything else (numbers) as missing."""
    if pd.api.types.infer_dtype(raw, skipna=True) in ("string", "empty"):
        return raw.astype(object)
    return raw.map(lambda v: v if isinstance(v, str) else v.isoformat() if hasattr(v, "isoformat") else None,
                   na_action="ignore").astype(object)


def read_timestamps(raw: pd.Series, tz: str, is_date: bool) -> tuple[pd.Series, pd.Series]:
    """Parsed naive-UTC timestamps (dates: midnight, unshifted) and the mask of unreadable values."""
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        return raw.dt.tz_convert("UTC").dt.tz_localize(None), pd.Series(False, index=raw.index)
    if pd.api.types.is_datetime64_any_dtype(raw):
        return (raw if is_date else _localize(raw, tz)), pd.Series(False, index=raw.index)
    present = raw.notna()
    if pd.api.types.is_numeric_dtype(raw) or pd.api.types.is_bool_dtype(raw):
        # epoch numbers: seconds or milliseconds cannot be told apart safely; say so, never guess
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"), present
    text = _as_text(raw)
    if tz == "UTC" or is_date:
        # naive values are UTC already (or calendar dates): one parse, offsets converted by it
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        out = parsed.dt.tz_localize(None).astype("datetime64[ns]")
        return out, present & out.isna()
    with_offset = text.str.strip().str.contains(_OFFSET, na=False).astype(bool)
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    if with_offset.any():
        parsed = pd.to_datetime(text[with_offset], utc=True, errors="coerce", format="ISO8601")
        out[with_offset] = parsed.dt.tz_localize(None).astype("datetime64[ns]")
    naive = ~with_offset & text.notna()
    if naive.any():
        parsed = pd.to_datetime(text[naive], errors="coerce", format="ISO8601").astype("datetime64[ns]")
        out[naive] = parsed if is_date or tz == "UTC" else _localize(parsed, tz)
    return out, present & out.isna()


def read_numbers(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        return raw, pd.Series(False, index=raw.index)
    stripped = raw.map(lambda v: v.strip() if isinstance(v, str) else v, na_action="ignore")
    parsed = pd.to_numeric(stripped, errors="coerce").astype(float)
    return parsed, raw.notna() & parsed.isna()


def _per_distinct(raw: pd.Series, fn: object) -> pd.Series:
    """`fn` applied once per distinct value (labels repeat: millions of rows, a handful of values)."""
    codes, uniques = pd.factorize(raw)
    mapped = np.append(np.asarray([fn(v) for v in uniques], dtype=object), None)  # code -1: missing
    return pd.Series(mapped[codes], index=raw.index, name=raw.name, dtype=object)


def _boolean(v: object) -> object:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | float) and v in (0, 1):
        return bool(v)
    text = str(v).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def read_booleans(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    if pd.api.types.is_bool_dtype(raw) or pd.api.types.is_numeric_dtype(raw):
        return raw, pd.Series(False, index=raw.index)
    parsed = _per_distinct(raw, _boolean)
    return parsed, raw.notna() & parsed.isna()


def read_allowed(raw: pd.Series, spec: ColumnSpec) -> tuple[pd.Series, pd.Series]:
    """Values outside `allowed` are marked when the contract excludes them.

    Compared as they are, not trimmed or lower-cased: the extracts that aggregate in SQL compare
    `status = 'completed'` exactly (a function on the column would cost PostgreSQL its statistics
    and its plans), so " Completed" must be no revenue anywhere rather than revenue in one extract
    and not in another. It is excluded and counted here, and the check command lists it.
    """
    outside = raw.notna() & ~raw.isin(spec.allowed)
    return raw, (outside if spec.exclude_unknown else pd.Series(False, index=raw.index))


def shortened(value: Any) -> Any:
    """A label longer than the warehouse's member column, cut to fit and kept apart from every other
    label by a short digest of the whole (two long labels with the same beginning stay two members)."""
    if not isinstance(value, str) or len(value) <= LABEL_MAX:
        return value
    digest = hashlib.sha1(value.encode("utf-8")).hexdigest()[:8]
    return f"{value[:LABEL_MAX - 10]}…{digest}"


def shorten_labels(raw: pd.Series) -> tuple[pd.Series, int]:
    """The labels with those too long to store shortened (`shortened`), and how many rows had one:
    the rows are kept, so company totals stay whole."""
    long = _per_distinct(raw, lambda v: isinstance(v, str) and len(v) > LABEL_MAX).astype(bool)
    n = int(long.sum())
    return (raw.map(shortened) if n else raw), n


def latest_possible(read_at: datetime | None, tolerance_hours: float) -> pd.Timestamp:
    """The latest time a recorded event can carry when read at `read_at` (naive UTC; now if None)."""
    moment = read_at or datetime.now(UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return pd.Timestamp(moment + timedelta(hours=tolerance_hours))


def not_happened_yet(values: pd.Series, spec: ColumnSpec, latest: pd.Timestamp) -> pd.Series | None:
    """The read times later than `latest` (None for a planned date, which may lie ahead)."""
    if spec.planned:
        return None
    later = values > latest
    return later if bool(later.any()) else None


def type_frame(frame: pd.DataFrame, sql_name: str, tz: str = "UTC", read_at: datetime | None = None,
               future_tolerance_hours: float = FUTURE_TOLERANCE_HOURS) -> tuple[pd.DataFrame, dict[str, ColumnRead]]:
    """The frame with each column read as its type, plus a marker column per rule that marks rows.

    Returns, per column that had unreadable values, how many of how many non-null values. A time
    past `read_at` (the moment the extract was read; now if None) plus the tolerance is marked
    `future_<column>`.
    """
    specs = column_specs(sql_name)
    reads: dict[str, ColumnRead] = {}
    marks: dict[str, pd.Series] = {}
    latest = latest_possible(read_at, future_tolerance_hours)
    for name in list(frame.columns):
        spec = _kind(name, specs)
        bad = None
        rule = f"unreadable_{name}"
        if spec is not None and spec.type in ("timestamp", "date"):
            frame[name], bad = read_timestamps(frame[name], tz, spec.type == "date")
            if (ahead := not_happened_yet(frame[name], spec, latest)) is not None:
                marks[f"future_{name}"] = ahead.astype(bool)
                log.warning("%s: %d values of %s are later than %s UTC (the reading plus %g h): they have not "
                            "happened yet, those rows are excluded (future_%s)", sql_name, int(ahead.sum()), name,
                            latest.isoformat(sep=" ", timespec="seconds"), future_tolerance_hours, name)
        elif spec is not None and spec.type in ("numeric", "int"):
            frame[name], bad = read_numbers(frame[name])
        elif spec is not None and spec.type == "bool":
            frame[name], bad = read_booleans(frame[name])
        elif spec is not None and spec.allowed:
            frame[name], bad = read_allowed(frame[name], spec)
            rule = f"unknown_{name}_value"
        elif name in LABEL_COLUMNS:
            frame[name], n = shorten_labels(frame[name])
            if n:
                log.warning("%s: %d rows have a %s longer than %d characters: stored shortened, the rows kept",
                            sql_name, n, name, LABEL_MAX)
        if bad is not None and bool(bad.any()):
            marks[rule] = bad.astype(bool)
            reads[name] = ColumnRead(int(bad.sum()), int(frame[name].notna().sum() + bad.sum()))
            log.warning("%s: %d of %d values of %s %s (%s): those rows are excluded", sql_name,
                        reads[name].unreadable, reads[name].values, name,
                        "cannot be read as " + spec.type if rule.startswith("unreadable") and spec else
                        "are outside the allowed values",
                        rule)
    for rule, mask in marks.items():
        frame[MARK + rule] = mask
    return frame, reads


def marked_rules(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(rule, marker column) for every marker column of a typed frame."""
    return [(c[len(MARK):], c) for c in frame.columns if c.startswith(MARK)]


def without_marks(frame: pd.DataFrame) -> pd.DataFrame:
    marks = [c for c in frame.columns if c.startswith(MARK)]
    return frame.drop(columns=marks) if marks else frame
