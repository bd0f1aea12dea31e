"""KPI declarations and the measures they are built from.

Why declarations: each KPI is stated once (id, name, unit, direction, grain, formula text) next to
the code that computes it. The report's appendix, the history and the tests all read that one
declaration, so a definition cannot drift between what is printed and what is computed.

Why measures with numerator and denominator: a ratio keeps both parts, so a value can be
explained and re-aggregated; a zero denominator gives no value (None), never 0 or inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from crm_kpis.periods import ReportPeriod

UNITS = ("money", "count", "rate", "ratio", "score", "days", "hours", "minutes", "seconds")
AREAS = ("marketing", "sales", "operations")
TOTAL = ""  # dimension and member of the company-wide row


@dataclass(frozen=True)
class Measure:
    """One computed value: company-wide (dimension "") or for one member of a breakdown."""

    value: float | None
    numerator: float | None = None
    denominator: float | None = None
    dimension: str = TOTAL
    member: str = TOTAL


@dataclass(frozen=True)
class KpiValue:
    kpi_id: str
    value: float | None
    numerator: float | None
    denominator: float | None
    dimension: str = TOTAL
    member: str = TOTAL
    #: why there is no value ("not tracked: no tickets.first_response_at"), or what limits it
    note: str | None = None
    #: share of the period's rows that carried the input the KPI needs (None: not measured)
    coverage: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kpi_id": self.kpi_id,
            "dimension": self.dimension,
            "member": self.member,
            "value": self.value,
            "numerator": self.numerator,
            "denominator": self.denominator,
            "note": self.note,
            "coverage": self.coverage,
        }


NOT_TRACKED = "not tracked"
#: the note of a value the data cannot define (a model that cannot be fitted), with the reason
UNDEFINED = "undefined"


class Undefined(Exception):
    """Raised by a KPI's compute when the period's data cannot define its value; the message is
    the reason, stored as the value's note and printed under the KPI (never a 0)."""


class Inputs:
    """The cleaned extracts a KPI reads, by extract name, for one period."""

    def __init__(self, period: ReportPeriod, frames: dict[str, pd.DataFrame]) -> None:
        self.period = period
        self._frames = frames
        self._derived: dict[str, Any] = {}
        #: what a KPI fitted or derived that the run keeps beside the values (kpi_runs.models)
        self.models: dict[str, Any] = {}

    def derived(self, key: str, build: Callable[[Inputs], Any]) -> Any:
        """A frame several KPIs derive the same way (e.g. customer flags), built once per period."""
        if key not in self._derived:
            self._derived[key] = build(self)
        return self._derived[key]

    def __getitem__(self, name: str) -> pd.DataFrame:
        try:
            return self._frames[name]
        except KeyError:
            raise KeyError(f"extract {name!r} was not loaded; declare it in the KPI's inputs") from None


Compute = Callable[[Inputs], list[Measure]]


@dataclass(frozen=True)
class KpiDef:
    id: str
    name: str
    unit: str
    better: str | None  # "up", "down" or None (neither direction is good)
    grain: str  # "D": daily and monthly; "M": monthly only
    formula: str
    description: str
    inputs: tuple[str, ...]
    compute: Compute = field(compare=False, repr=False)
    breakdowns: tuple[str, ...] = ()
    #: tracking signals (source_contract.yaml) that must hold before the period's end, else n/a
    tracked: tuple[str, ...] = ()
    #: (extract, column) whose share of non-null rows is the KPI's coverage; 0 % is "not tracked"
    coverage: tuple[str, str] | None = None
    #: signals of inputs the KPI can do without: when one does not hold, the value says so
    partial: tuple[str, ...] = ()
    #: a flow (events of the period, summed): its periods add up, so it has a year and a quarter to
    #: date; a stock (MRR, open cases) or a ratio does not
    flow: bool = False
    #: its denominator counts what it was computed on (answers, tickets, deals, customers), so a
    #: small one makes its move noise (the reports' `min_sample`); False where the denominator is
    #: an amount, a rate or a constant (ROI's spend, CLV's churn rate, the loyalty index's 3 scores)
    sample: bool = True

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]

    @cached_property  # computed once per definition (it reads the function's source)
    def definition_version(self) -> str:
        """What the KPI computes, as a short digest: its unit, grain, formula, inputs, breakdowns,
        tracking signals and the source of its compute function. A change to any of them is a new
        version (kpi_history.definition_version), so a series' break can be told from a trend;
        the name and the description are wording, not part of it."""
        return _definition_digest(self)

    def applies_to(self, grain: str) -> bool:
        return self.grain == "D" or grain == "monthly"

    def evaluate(self, inputs: Inputs, untracked: dict[str, str] | None = None) -> list[KpiValue]:
        """The KPI's values; one n/a value with its reason when an input is not tracked.

        `untracked` maps the tracking signals the source does not satisfy to what they say;
        without it every input counts as tracked (pure tests on fixtures).
        """
        missing = [untracked[s] for s in self.tracked if untracked and s in untracked]
        if missing:
            return [self.not_tracked("; ".join(missing))]
        coverage = None
        if self.coverage is not None:
            frame = inputs[self.coverage[0]]
            if len(frame):
                coverage = float(frame[self.coverage[1]].notna().mean())
                if coverage == 0:
                    return [self.not_tracked(f"no {self.coverage[1]} in any of the period's {len(frame):,} rows")]
        try:
            measures = self.compute(inputs)
        except Undefined as exc:
            return [KpiValue(self.id, None, None, None, note=f"{UNDEFINED}: {exc}")]
        values = [
            KpiValue(self.id, _clean(m.value), _clean(m.numerator), _clean(m.denominator), m.dimension, m.member,
                     self.nothing_to_divide_by() if m.value is None and m.denominator == 0 else None)
            for m in measures
        ]
        notes = [f"partial: {untracked[s]}" for s in self.partial if untracked and s in untracked]
        if coverage is not None and coverage < 1:
            notes.append(f"computed on {coverage:.0%} of rows with {self.coverage[1]}")  # type: ignore[index]
        if notes:
            note = "; ".join(notes)
            values = [KpiValue(v.kpi_id, v.value, v.numerator, v.denominator, v.dimension, v.member,
                               "; ".join(n for n in (v.note, note) if n) if v.dimension == TOTAL else v.note,
                               coverage if v.dimension == TOTAL else None)
                      for v in values]
        return values

    def nothing_to_divide_by(self) -> str:
        """Why a ratio has no value: what it divides by is 0 in the period (no subscription reached
        its term, a segment without answers); its formula is in the appendix. Never shown as 0."""
        return f"{UNDEFINED}: nothing in the period to compute it on (its denominator is 0)"

    def not_tracked(self, reason: str) -> KpiValue:
        return KpiValue(self.id, None, None, None, note=f"{NOT_TRACKED}: {reason}")


def _clean(x: float | None) -> float | None:
    """Store plain floats; NaN and inf (which a correct KPI never produces) become no value."""
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


REGISTRY: dict[str, KpiDef] = {}


def kpi(
    id: str,
    *,
    name: str,
    unit: str,
    better: str | None,
    grain: str,
    formula: str,
    inputs: Sequence[str],
    description: str = "",
    breakdowns: Sequence[str] = (),
    tracked: Sequence[str] = (),
    coverage: tuple[str, str] | None = None,
    partial: Sequence[str] = (),
    flow: bool = False,
    sample: bool = True,
) -> Callable[[Compute], Compute]:
    """Declare a KPI: the decorated function computes it from its inputs."""
    if unit not in UNITS:
        raise ValueError(f"{id}: unknown unit {unit!r}")
    if better not in ("up", "down", None):
        raise ValueError(f"{id}: better must be up, down or None")
    if grain not in ("D", "M"):
        raise ValueError(f"{id}: grain must be D or M")

    def register(fn: Compute) -> Compute:
        if id in REGISTRY:
            raise ValueError(f"KPI {id} declared twice")
        REGISTRY[id] = KpiDef(
            id, name, unit, better, grain, formula, description or (fn.__doc__ or "").strip(),
            tuple(inputs), fn, tuple(breakdowns), tuple(tracked), coverage, tuple(partial), flow, sample,
        )
        return fn

    return register


# --- measures with breakdowns ------------------------------------------------------------------
Reducer = Callable[[pd.DataFrame], tuple[float | None, float | None, float | None]]


def _by(frame: pd.DataFrame, by: Iterable[str], reduce: Reducer, universe: pd.DataFrame | None = None,
        columns: Iterable[str] = ()) -> list[Measure]:
    """The company-wide value, then one per member of each breakdown.

    `universe` (the frame before a KPI's filter) names the members that exist in the period: a
    member with no qualifying row then gets its real zero (0 orders), not a missing value.
    `columns`: the only columns `reduce` reads. Each member's rows are cut from those alone: cutting
    every column of a million-row extract per member and breakdown cost seconds at company scale.
    """
    value, num, den = reduce(frame)
    out = [Measure(value, num, den)]
    for dimension in by:
        if dimension not in frame.columns:
            raise KeyError(f"breakdown column {dimension!r} missing from the extract")
        narrow = frame[list(dict.fromkeys([*columns, dimension]))]
        parts = dict(iter(narrow.groupby(dimension, sort=True, dropna=True, observed=True)))
        members = set(parts)
        if universe is not None and dimension in universe.columns:
            members |= set(universe[dimension].dropna().unique())
        for member in sorted(members, key=str):
            value, num, den = reduce(parts.get(member, narrow.iloc[0:0]))
            out.append(Measure(value, num, den, dimension, str(member)))
    return out


def safe_div(num: float, den: float) -> float | None:
    return None if den == 0 else num / den


def exact_sum(values: pd.Series) -> float:
    """The correctly rounded sum (math.fsum): the same float whatever order the rows come in,
    so a re-run that reads rows in another order stores exactly the same value."""
    return math.fsum(values.dropna().astype(float).to_numpy())


def sum_by(frame: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Exact per-member sums (see exact_sum), indexed by member."""
    return frame.groupby(key, sort=True)[column].agg(exact_sum)


def member_ratios(dimension: str, num: pd.Series, den: pd.Series, num_total: float, den_total: float) -> list[Measure]:
    """num_total / den_total company-wide, then num / den per member (index of the two series).

    For ratios whose parts come from different frames (spend and customers, cost and tickets):
    a member missing from one side counts 0 there, so a member with a numerator but no
    denominator gets no value instead of disappearing.
    """
    members = sorted(set(num.index) | set(den.index))
    num, den = num.reindex(members, fill_value=0.0), den.reindex(members, fill_value=0.0)
    out = [Measure(safe_div(num_total, den_total), num_total, den_total)]
    for member in members:
        n, d = float(num[member]), float(den[member])
        out.append(Measure(safe_div(n, d), n, d, dimension, str(member)))
    return out


def count(frame: pd.DataFrame, by: Iterable[str] = (), universe: pd.DataFrame | None = None) -> list[Measure]:
    """Number of rows (members of `universe` without a row count 0)."""
    return _by(frame, by, lambda f: (float(len(f)), None, None), universe)


def total(frame: pd.DataFrame, column: str, by: Iterable[str] = (),
          universe: pd.DataFrame | None = None) -> list[Measure]:
    """Sum of a column (an empty period sums to 0: nothing was spent)."""
    return _by(frame, by, lambda f: (exact_sum(f[column]), None, None), universe, (column,))


def share(frame: pd.DataFrame, flag: str, by: Iterable[str] = ()) -> list[Measure]:
    """Rows where boolean column `flag` holds / all rows."""

    def reduce(f: pd.DataFrame) -> tuple[float | None, float, float]:
        num, den = float(f[flag].sum()), float(len(f))
        return safe_div(num, den), num, den

    return _by(frame, by, reduce, columns=(flag,))


def sum_ratio(frame: pd.DataFrame, num_col: str, den_col: str, by: Iterable[str] = ()) -> list[Measure]:
    """Σ num_col / Σ den_col."""

    def reduce(f: pd.DataFrame) -> tuple[float | None, float, float]:
        num, den = exact_sum(f[num_col]), exact_sum(f[den_col])
        return safe_div(num, den), num, den

    return _by(frame, by, reduce, columns=(num_col, den_col))


def mean(frame: pd.DataFrame, column: str, by: Iterable[str] = ()) -> list[Measure]:
    """Mean of a column; numerator is the sum, denominator the count."""

    def reduce(f: pd.DataFrame) -> tuple[float | None, float, float]:
        values = f[column].dropna()
        num, den = exact_sum(values), float(len(values))
        return safe_div(num, den), num, den

    return _by(frame, by, reduce, columns=(column,))


def median(frame: pd.DataFrame, column: str, by: Iterable[str] = ()) -> list[Measure]:
    """Median of a column; the denominator is the count it was taken over."""

    def reduce(f: pd.DataFrame) -> tuple[float | None, None, float]:
        values = f[column].dropna()
        return (float(values.median()) if len(values) else None), None, float(len(values))

    return _by(frame, by, reduce, columns=(column,))


def hours_between(later: pd.Series, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.total_seconds() / 3600.0


def scalar(value: float | None, numerator: float | None = None, denominator: float | None = None) -> list[Measure]:
    return [Measure(value, numerator, denominator)]


def in_period(series: pd.Series, period: ReportPeriod) -> pd.Series:
    """Half-open membership of naive-UTC timestamps: start is in, end is out; missing is out."""
    return ((series >= period.utc_start) & (series < period.utc_end)).fillna(False).astype(bool)


def active_at(customers: pd.DataFrame, t: object) -> pd.Series:
    """`created_at < t` and (`churned_at` is NULL or `churned_at >= t`) (kpi-catalogue.md)."""
    churned = customers["churned_at"]
    return ((customers["created_at"] < t) & (churned.isna() | (churned >= t))).astype(bool)


def compute_source(compute: Compute) -> str:
    """The compute function's code from its `def` on: the `@kpi(...)` declaration above it holds
    the name, description and report flags, which are wording, not what the KPI computes (the
    parts of the declaration that are, formula, inputs and the rest, enter the digest apart)."""
    import inspect
    import re

    try:
        code = inspect.getsource(compute)
    except (OSError, TypeError):  # no source file (a definition made at run time): its qualified name
        return getattr(compute, "__qualname__", repr(compute))
    start = re.search(r"^[ \t]*(async[ \t]+)?def[ \t]", code, re.M)
    return code[start.start():] if start else code


def _definition_digest(definition: KpiDef) -> str:
    import hashlib
    import json

    parts = [definition.id, definition.unit, definition.better, definition.grain, definition.formula,
             list(definition.inputs), list(definition.breakdowns), list(definition.tracked),
             list(definition.partial), definition.coverage, definition.flow, compute_source(definition.compute)]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12]
