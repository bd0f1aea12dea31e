"""The data-quality gate: checks between computing a period and publishing it.

Why a gate: the worst failure of a KPI report is a wrong number sent to executives, often because
the source load had not finished. A hard failure stops the run before the history changes and
before anyone is emailed; a soft warning is published with the run and shown in the report.

- freshness: the last sync of a source that stamps its syncs, else its newest record, must be close
  to the period's end (else the load is late or the sync stalled);
- volume: key extracts must not read far fewer rows than in the recent periods, nor far more (a
  period loaded twice); rows repeating another row's content under a new key (customer, time and
  amount) are counted, since that is what a double load looks like at any volume;
- ranges: every computed value must be possible (a rate in [0, 1], a count ≥ 0, NPS in ±100 …).

- readability: a column whose values are mostly unreadable as its contract type (an epoch
  integer where a timestamp belongs) is a source to fix, not rows to drop;
- plausibility: a value implausible against its own history (median and MAD of the last periods),
  a single row far beyond its period's usual (one order of 9,999,999,999.99), or outside a KPI's
  configured hard bounds stops the run before anything is published; a moderate outlier (a KPI
  three times its usual, the largest order three times the largest of the recent periods) is a
  warning.

A warning that says a magnitude looks wrong carries a `headline` in the reader's words ("Revenue
3× its usual"): the report puts it in the email's subject and first lines and in the chat post,
where the reader looks, not only in the PDF (`warning_text`, `headline_of`).

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
    #: more rows than this many times the usual: a warning (a daily count is noisier than a month's)
    volume_warn_above: dict[str, float] = field(default_factory=lambda: {"daily": 3.0, "monthly": 1.8})
    #: share of a key extract's rows repeating another row's content under another key (extracts'
    #: `repeats`): a warning from the first, the run stops from the second (a period loaded twice)
    repeat_warn_above: float = 0.05
    repeat_fail_above: float = 0.3
    #: the fewest repeated rows that stop a run: a quiet day's 1 of 3 is a warning, not a double load
    repeat_fail_min_rows: int = 20
    #: a column with more than this share of unreadable values stops the run
    unreadable_fail_above: float = 0.2
    #: plausibility against the KPI's own history: periods looked at, the fewest needed to judge
    plausibility_periods: int = 12
    plausibility_min_history: int = 3
    #: a value this many times its history's median (or that fraction of it) stops the run
    plausibility_fail_ratio: float = 100.0
    #: a warning from this ratio, or from this many robust standard deviations (MAD × 1.4826)
    plausibility_warn_ratio: float = 3.0
    plausibility_warn_mad: float = 12.0
    #: the spread used for that is at least this share of the median: a few quiet periods have a
    #: tiny MAD, and a 5 % move would otherwise count as dozens of standard deviations
    plausibility_min_spread: float = 0.05
    #: the fewest cases a warning judges by: a rate or score over fewer answers (its denominator),
    #: or a count whose usual is smaller, moves that far by chance (a count's noise is its root)
    plausibility_min_sample: float = 30.0
    #: one row this many times its period's median (per extract column below) stops the run
    row_outlier_ratio: float = 1000.0
    #: the period's largest row this many times the largest of the recent periods: a warning
    row_warn_ratio: float = 3.0
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
            if name in ("max_staleness_hours", "volume_warn_above"):  # per grain
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
    #: a magnitude that looks wrong, in the reader's words ("Revenue 3× its usual"): said in the
    #: email's subject and first lines and in the chat post
    headline: str = ""

    @property
    def retryable(self) -> bool:
        return self.check in ("freshness", "volume")


#: how a warning with a headline is written into the run's warnings: "<check>: <headline> — <message>"
HEADLINE_SEPARATOR = " — "


def warning_text(finding: Finding) -> str:
    """A finding as the run stores it (a list of strings, shown in the report's warning box)."""
    if finding.headline:
        return f"{finding.check}: {finding.headline}{HEADLINE_SEPARATOR}{finding.message}"
    return f"{finding.check}: {finding.message}"


def headline_of(warning: str) -> str | None:
    """The headline of a stored warning (None: it has none)."""
    _, _, rest = warning.partition(": ")
    head, separator, _ = rest.partition(HEADLINE_SEPARATOR)
    return head if separator else None


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


def check_volume(rows_read: dict[str, int], recent: list[dict[str, int]], config: GateConfig,
                 grain: str = "monthly") -> list[Finding]:
    """Key extracts against the mean of the recent periods: far fewer rows (the load has not
    finished: retried) or far more (a period loaded twice: a warning)."""
    findings = []
    above = config.volume_warn_above.get(grain, 0.0)
    for extract in config.volume_extracts:
        history = [r[extract] for r in recent if extract in r]
        if extract not in rows_read or not history:
            continue
        usual = sum(history) / len(history)
        if usual <= 0:
            continue
        ratio = rows_read[extract] / usual
        message = (f"{extract}: {rows_read[extract]:,} rows, {ratio:.0%} of the usual {usual:,.0f} "
                   f"(mean of the last {len(history)} {'same weekdays' if grain == 'daily' else 'periods'})")
        if ratio < config.volume_fail_below:
            findings.append(Finding("fail", "volume", message))
        elif ratio < config.volume_warn_below:
            findings.append(Finding("warn", "volume", message))
        elif above and ratio >= above and len(history) >= config.plausibility_min_history:
            findings.append(Finding("warn", "volume_high", message + ": loaded twice, or a real surge?",
                                    headline=f"{extract} {ratio:.1f}× the usual rows"))
    return findings


def check_repeats(repeats: dict[str, dict[str, int]], columns: dict[str, tuple[str, ...]],
                  config: GateConfig) -> list[Finding]:
    """Rows repeating another row's content under another key (same customer, time and amount: a
    period loaded twice under new ids). Many stop the run; some are a warning."""
    findings = []
    for extract, r in sorted(repeats.items()):
        if not r.get("rows") or not r.get("repeats"):
            continue
        share = r["repeats"] / r["rows"]
        what = ", ".join(columns.get(extract, ())) or "content"
        message = (f"{extract}: {r['repeats']:,} of {r['rows']:,} rows ({share:.0%}) repeat another row's {what} "
                   "under another key")
        if share > config.repeat_fail_above and r["repeats"] >= config.repeat_fail_min_rows:
            findings.append(Finding("fail", "repeats", message + ": the period looks loaded twice; nothing was "
                                    "published. Remove the copies in the source (or its load) and re-run"))
        elif share > config.repeat_warn_above:
            findings.append(Finding("warn", "repeats", message + ": part of the period loaded twice?",
                                    headline=f"{extract}: {share:.0%} of rows repeated"))
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


def _too_few(v: dict[str, Any], median: float, config: GateConfig) -> bool:
    """Whether a value rests on too few cases to be judged against its history (the hard limits
    still apply): a count with a small usual, a rate or score over few answers."""
    unit = REGISTRY[v["kpi_id"]].unit
    if unit == "count":
        return median < config.plausibility_min_sample
    if unit in ("rate", "score", "ratio") and v.get("denominator") is not None:
        return float(v["denominator"]) < config.plausibility_min_sample
    return False


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
        label = REGISTRY[kpi_id].name
        if ratio is not None and ratio >= config.plausibility_fail_ratio:
            findings.append(Finding("fail", "plausibility",
                                    f"{name} is {ratio:,.0f}× {'above' if value > median else 'below'} {usual}: "
                                    "implausible (a typo'd amount or a unit change?); nothing was published"))
        elif _too_few(v, median, config):
            continue  # a warning would only say that small numbers move by chance
        elif ratio is not None and ratio >= config.plausibility_warn_ratio:
            times = f"{ratio:,.1f}" if ratio < 10 else f"{ratio:,.0f}"
            findings.append(Finding("warn", "plausibility", f"{name} is {times}× {usual}",
                                    headline=f"{label} {times}× its usual" if value > median
                                    else f"{label} 1/{times} of its usual"))
        else:
            spread = max(1.4826 * mad, config.plausibility_min_spread * abs(median))
            if spread > 0 and abs(value - median) / spread >= config.plausibility_warn_mad:
                findings.append(Finding("warn", "plausibility", f"{name} is {abs(value - median) / spread:,.0f} "
                                        f"robust standard deviations from {usual}",
                                        headline=f"{label} far {'above' if value > median else 'below'} its usual"))
    return findings


def check_row_outliers(extremes: dict[str, dict[str, Any]], config: GateConfig,
                       history: list[dict[str, dict[str, Any]]] | None = None) -> list[Finding]:
    """One row far beyond its period's median (an order of 9,999,999,999.99 among orders of 500)
    stops the run; the period's largest row far beyond the largest of the recent periods (one order
    typed ten times its amount) is a warning."""
    findings = []
    for where, e in sorted(extremes.items()):
        if e["median"] and e["median"] > 0 and e["max"] / e["median"] >= config.row_outlier_ratio:
            findings.append(Finding("fail", "plausibility",
                                    f"{where}: row {e['key']} = {e['max']:,.2f} is {e['max'] / e['median']:,.0f}× the "
                                    f"period's median ({e['median']:,.2f}) over {e['rows']:,} rows: implausible; "
                                    "correct it in the source (or exclude it) and re-run"))
            continue
        largest = [h[where]["max"] for h in history or () if where in h and h[where].get("max")]
        if len(largest) < config.plausibility_min_history or max(largest) <= 0:
            continue
        ratio = e["max"] / max(largest)
        if ratio >= config.row_warn_ratio:
            findings.append(Finding("warn", "plausibility",
                                    f"{where}: row {e['key']} = {e['max']:,.2f} is {ratio:,.1f}× the largest of the "
                                    f"last {len(largest)} periods ({max(largest):,.2f}): a typo'd amount? Check it in "
                                    "the source", headline=f"the largest {_row_noun(where)} {ratio:,.0f}× the usual "
                                                           "largest"))
    return findings


def _row_noun(where: str) -> str:
    """A watched column's row in the reader's words: "orders.total_amount" -> "order"."""
    table = where.split(".")[0]
    return table[:-1] if table.endswith("s") else table.replace("_", " ")


def evaluate(period: ReportPeriod, staged: dict[str, dict[str, Any]], recent: list[dict[str, int]],
             config: GateConfig, history: dict[str, list[float]] | None = None,
             recent_extremes: list[dict[str, dict[str, Any]]] | None = None,
             repeat_columns: dict[str, tuple[str, ...]] | None = None) -> list[Finding]:
    """All findings for a period from the staged payloads of its areas, the recent runs' row counts,
    the KPIs' recent company-wide values (`history`, oldest first) and the recent periods' largest
    rows; `repeat_columns` names, per extract, the columns its repeats were judged on."""
    # sources that stamp their syncs are judged by the stalest sync; the others by their newest record
    # (a payload staged before sync stamps were read has only latest_source_ts)
    syncs = [datetime.fromisoformat(p["latest_sync_ts"]) for p in staged.values() if p.get("latest_sync_ts")]
    unsynced = [p.get("latest_unsynced_ts") if "latest_unsynced_ts" in p else p.get("latest_source_ts")
                for p in staged.values()]
    latest = [datetime.fromisoformat(ts) for ts in unsynced if ts]
    rows_read: dict[str, int] = {}
    unreadable: dict[str, dict[str, dict[str, Any]]] = {}
    extremes: dict[str, dict[str, Any]] = {}
    repeats: dict[str, dict[str, int]] = {}
    for payload in staged.values():
        rows_read.update(payload.get("rows_read", {}))
        unreadable.update(payload.get("unreadable") or {})
        extremes.update(payload.get("extremes") or {})
        repeats.update(payload.get("repeats") or {})
    values = [v for payload in staged.values() for v in payload.get("values", [])]
    freshness = check_freshness(period, None, config, min(syncs)) if syncs else []
    if latest or not syncs:
        freshness += check_freshness(period, max(latest) if latest else None, config)
    return (freshness
            + check_volume(rows_read, recent, config, period.grain)
            + check_repeats(repeats, repeat_columns or {}, config)
            + check_unreadable(unreadable, config)
            + check_ranges(values)
            + check_row_outliers(extremes, config, recent_extremes)
            + check_plausibility(values, history or {}, config))
