"""The data-quality gate: checks between computing a period and publishing it.

Why a gate: the worst failure of a KPI report is a wrong number sent to executives, often because
the source load had not finished. A hard failure stops the run before the history changes and
before anyone is emailed; a soft warning is published with the run and shown in the report.

- freshness: the last sync of a source that stamps its syncs, else its newest record, must be close
  to the period's end (else the load is late or the sync stalled);
- volume: key extracts must not read far fewer rows than in the recent periods;
- ranges: every computed value must be possible (a rate in [0, 1], a count ≥ 0, NPS in ±100 …).

- readability: a column whose values are mostly unreadable as its contract type (an epoch
  integer where a timestamp belongs) is a source to fix, not rows to drop;
- plausibility: a value implausible against its own history (median and MAD of the last periods),
  a single row far beyond its period's usual (one order of 9,999,999,999.99), or outside a KPI's
  configured hard bounds stops the run before anything is published; a moderate outlier is a
  warning in the report.

Freshness and volume failures may pass later (the load finishes), so they are retried; the others
will not fix themselves, so they fail without retries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from crm_kpis.kpis import REGISTRY
from crm_kpis.periods import ReportPeriod

#: Rates defined as two flows of one period, which may exceed 1 or go below 0 (kpi-catalogue.md).
FLOW_RATES = {"marketing.lead_conversion_rate", "marketing.email_list_growth_rate", "sales.growth_rate"}
SCORE_RANGES = {"marketing.nps": (-100.0, 100.0), "operations.ces": (1.0, 7.0), "sales.loyalty_index": (0.0, 100.0)}
SIGNED = {"marketing.roi"}  # a ratio that is negative when spend exceeds revenue


@dataclass(frozen=True)
class GateConfig:
    max_staleness_hours: dict[str, float] = field(default_factory=lambda: {"daily": 6.0, "monthly": 24.0})
    volume_extracts: tuple[str, ...] = ("orders", "tickets_created", "leads")
    volume_periods: int = 4
    volume_warn_below: float = 0.5
    volume_fail_below: float = 0.2
    #: a column with more than this share of unreadable values stops the run
    unreadable_fail_above: float = 0.2
    #: plausibility against the KPI's own history: periods looked at, the fewest needed to judge
    plausibility_periods: int = 12
    plausibility_min_history: int = 3
    #: a value this many times its history's median (or that fraction of it) stops the run
    plausibility_fail_ratio: float = 100.0
    #: a warning from this ratio, or from this many robust standard deviations (MAD × 1.4826)
    plausibility_warn_ratio: float = 10.0
    plausibility_warn_mad: float = 12.0
    #: the spread used for that is at least this share of the median: a few quiet periods have a
    #: tiny MAD, and a 5 % move would otherwise count as dozens of standard deviations
    plausibility_min_spread: float = 0.05
    #: one row this many times its period's median (per extract column below) stops the run
    row_outlier_ratio: float = 1000.0
    #: per KPI id, hard bounds {min: …, max: …} of the company-wide value
    bounds: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> GateConfig:
        """The thresholds under `quality:` in reports.yaml; a key that is no threshold is refused."""
        raw = dict(raw or {})
        base = cls()
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"reports.yaml quality: unknown setting(s) {unknown}; known: {sorted(names)}")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            default = getattr(base, name)
            if name == "max_staleness_hours":
                values[name] = {**default, **{k: float(v) for k, v in (value or {}).items()}}
            elif name == "bounds":
                values[name] = {k: {b: float(x) for b, x in v.items()} for k, v in (value or {}).items()}
            elif isinstance(default, tuple):
                values[name] = tuple(value)
            else:
                values[name] = type(default)(value)  # int or float, as the default
        return cls(**values)


@dataclass(frozen=True)
class Finding:
    level: str  # "fail" or "warn"
    check: str  # freshness, volume, range
    message: str

    @property
    def retryable(self) -> bool:
        return self.check in ("freshness", "volume")


def check_freshness(period: ReportPeriod, latest: datetime | None, config: GateConfig,
                    latest_sync: datetime | None = None) -> list[Finding]:
    """The load got close enough to the period's end: judged by the last sync where the sources
    stamp their syncs (`latest_sync`, the stalest of them), else by the newest source record."""
    limit = timedelta(hours=config.max_staleness_hours[period.grain])
    allowed = f"(allowed {limit.total_seconds() / 3600:g} h)"
    if latest_sync is not None:
        lag = period.utc_end - latest_sync
        if lag > limit:
            return [Finding("fail", "freshness",
                            f"the last sync of the sources ran to {latest_sync:%Y-%m-%d %H:%M} UTC, "
                            f"{lag.total_seconds() / 3600:.1f} h before the period's end {allowed}: the sync "
                            "looks stalled; check the connector and re-run once it has synced")]
        return []
    if latest is None:
        return [Finding("warn", "freshness", f"no source records at all in {period.label}")]
    lag = period.utc_end - latest
    if lag > limit:
        return [Finding("fail", "freshness",
                        f"newest source record is {latest:%Y-%m-%d %H:%M} UTC, {lag.total_seconds() / 3600:.1f} h "
                        f"before the period's end {allowed}: the source load looks unfinished")]
    return []


def check_volume(rows_read: dict[str, int], recent: list[dict[str, int]], config: GateConfig) -> list[Finding]:
    findings = []
    for extract in config.volume_extracts:
        history = [r[extract] for r in recent if extract in r]
        if extract not in rows_read or not history:
            continue
        usual = sum(history) / len(history)
        if usual <= 0:
            continue
        ratio = rows_read[extract] / usual
        message = (f"{extract}: {rows_read[extract]:,} rows, {ratio:.0%} of the usual {usual:,.0f} "
                   f"(mean of the last {len(history)} periods)")
        if ratio < config.volume_fail_below:
            findings.append(Finding("fail", "volume", message))
        elif ratio < config.volume_warn_below:
            findings.append(Finding("warn", "volume", message))
    return findings


def _allowed(kpi_id: str) -> tuple[float, float]:
    unit = REGISTRY[kpi_id].unit
    if kpi_id in SCORE_RANGES:
        return SCORE_RANGES[kpi_id]
    if kpi_id in FLOW_RATES or kpi_id in SIGNED:
        return (-math.inf, math.inf)
    if unit == "rate":
        return (0.0, 1.0)
    return (0.0, math.inf)  # counts, money, durations, ratios of non-negative parts


def check_ranges(values: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for v in values:
        value = v["value"]
        if value is None or v["kpi_id"] not in REGISTRY:
            continue
        low, high = _allowed(v["kpi_id"])
        if not low <= value <= high:
            where = f" ({v['dimension']}={v['member']})" if v["dimension"] else ""
            findings.append(Finding("fail", "range", f"{v['kpi_id']}{where} = {value!r} is outside [{low}, {high}]"))
    return findings


def check_unreadable(unreadable: dict[str, dict[str, dict[str, Any]]], config: GateConfig) -> list[Finding]:
    """A column mostly unreadable as its type: fail, naming table and column (once per column)."""
    findings, seen = [], set()
    for extract, columns in sorted(unreadable.items()):
        for column, r in sorted(columns.items()):
            where = (r.get("table", extract), column)
            share = r["unreadable"] / r["values"] if r["values"] else 0.0
            if where in seen or share <= config.unreadable_fail_above:
                continue
            seen.add(where)
            findings.append(Finding("fail", "unreadable",
                                    f"{where[0]}.{column}: {r['unreadable']:,} of {r['values']:,} values ({share:.0%}) "
                                    f"cannot be read as the source contract's type (read by {extract}); more than "
                                    f"{config.unreadable_fail_above:.0%} means the column is stored differently "
                                    "(e.g. epoch numbers or text): fix the source or cast it in a view "
                                    "(`python -m crm_kpis.sources check` lists it)"))
    return findings


#: Units whose values are magnitudes, for which "100 times the usual" is meaningful.
MAGNITUDES = ("money", "count", "hours", "days", "minutes", "seconds")


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def check_plausibility(values: list[dict[str, Any]], history: dict[str, list[float]],
                       config: GateConfig) -> list[Finding]:
    """Each company-wide value against its own recent history and the configured hard bounds."""
    findings = []
    for v in values:
        kpi_id, value = v["kpi_id"], v["value"]
        if v["dimension"] or value is None or kpi_id not in REGISTRY:
            continue
        name = f"{kpi_id} = {value:,.6g}"
        bound = config.bounds.get(kpi_id, {})
        if ("min" in bound and value < bound["min"]) or ("max" in bound and value > bound["max"]):
            findings.append(Finding("fail", "plausibility", f"{name} is outside its configured bounds {bound}"))
            continue
        past = [x for x in history.get(kpi_id, []) if x is not None]
        if len(past) < config.plausibility_min_history:
            continue
        median = _median(past)
        mad = _median([abs(x - median) for x in past])
        usual = f"the median of its last {len(past)} periods, {median:,.6g}"
        ratio = None
        if REGISTRY[kpi_id].unit in MAGNITUDES and median > 0 and value > 0:
            ratio = max(value / median, median / value)
        if ratio is not None and ratio >= config.plausibility_fail_ratio:
            findings.append(Finding("fail", "plausibility",
                                    f"{name} is {ratio:,.0f}× {'above' if value > median else 'below'} {usual}: "
                                    "implausible (a typo'd amount or a unit change?); nothing was published"))
        elif ratio is not None and ratio >= config.plausibility_warn_ratio:
            findings.append(Finding("warn", "plausibility", f"{name} is {ratio:,.0f}× {usual}"))
        else:
            spread = max(1.4826 * mad, config.plausibility_min_spread * abs(median))
            if spread > 0 and abs(value - median) / spread >= config.plausibility_warn_mad:
                findings.append(Finding("warn", "plausibility", f"{name} is {abs(value - median) / spread:,.0f} "
                                        f"robust standard deviations from {usual}"))
    return findings


def check_row_outliers(extremes: dict[str, dict[str, Any]], config: GateConfig) -> list[Finding]:
    """One row far beyond its period's median (an order of 9,999,999,999.99 among orders of 500)."""
    findings = []
    for where, e in sorted(extremes.items()):
        if e["median"] and e["median"] > 0 and e["max"] / e["median"] >= config.row_outlier_ratio:
            findings.append(Finding("fail", "plausibility",
                                    f"{where}: row {e['key']} = {e['max']:,.2f} is {e['max'] / e['median']:,.0f}× the "
                                    f"period's median ({e['median']:,.2f}) over {e['rows']:,} rows: implausible; "
                                    "correct it in the source (or exclude it) and re-run"))
    return findings


def evaluate(period: ReportPeriod, staged: dict[str, dict[str, Any]], recent: list[dict[str, int]],
             config: GateConfig, history: dict[str, list[float]] | None = None) -> list[Finding]:
    """All findings for a period from the staged payloads of its areas, the recent runs' row counts
    and the KPIs' recent company-wide values (`history`, oldest first)."""
    # sources that stamp their syncs are judged by the stalest sync; the others by their newest record
    # (a payload staged before sync stamps were read has only latest_source_ts)
    syncs = [datetime.fromisoformat(p["latest_sync_ts"]) for p in staged.values() if p.get("latest_sync_ts")]
    unsynced = [p.get("latest_unsynced_ts") if "latest_unsynced_ts" in p else p.get("latest_source_ts")
                for p in staged.values()]
    latest = [datetime.fromisoformat(ts) for ts in unsynced if ts]
    rows_read: dict[str, int] = {}
    unreadable: dict[str, dict[str, dict[str, Any]]] = {}
    extremes: dict[str, dict[str, Any]] = {}
    for payload in staged.values():
        rows_read.update(payload.get("rows_read", {}))
        unreadable.update(payload.get("unreadable") or {})
        extremes.update(payload.get("extremes") or {})
    values = [v for payload in staged.values() for v in payload.get("values", [])]
    freshness = check_freshness(period, None, config, min(syncs)) if syncs else []
    if latest or not syncs:
        freshness += check_freshness(period, max(latest) if latest else None, config)
    return (freshness
            + check_volume(rows_read, recent, config)
            + check_unreadable(unreadable, config)
            + check_ranges(values)
            + check_row_outliers(extremes, config)
            + check_plausibility(values, history or {}, config))
