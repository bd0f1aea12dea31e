"""The data-quality gate: checks between computing a period and publishing it.

Why a gate: the worst failure of a KPI report is a wrong number sent to executives, often because
the source load had not finished. A hard failure stops the run before the history changes and
before anyone is emailed; a soft warning is published with the run and shown in the report.

- freshness: the newest source record must be close to the period's end (else the load is late);
- volume: key extracts must not read far fewer rows than in the recent periods;
- ranges: every computed value must be possible (a rate in [0, 1], a count ≥ 0, NPS in ±100 …).

Freshness and volume failures may pass later (the load finishes), so they are retried; a value out
of range will not fix itself, so it fails without retries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
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

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> GateConfig:
        raw = raw or {}
        base = cls()
        return cls(
            max_staleness_hours={**base.max_staleness_hours, **(raw.get("max_staleness_hours") or {})},
            volume_extracts=tuple(raw.get("volume_extracts", base.volume_extracts)),
            volume_periods=int(raw.get("volume_periods", base.volume_periods)),
            volume_warn_below=float(raw.get("volume_warn_below", base.volume_warn_below)),
            volume_fail_below=float(raw.get("volume_fail_below", base.volume_fail_below)),
        )


@dataclass(frozen=True)
class Finding:
    level: str  # "fail" or "warn"
    check: str  # freshness, volume, range
    message: str

    @property
    def retryable(self) -> bool:
        return self.check in ("freshness", "volume")


def check_freshness(period: ReportPeriod, latest: datetime | None, config: GateConfig) -> list[Finding]:
    if latest is None:
        return [Finding("warn", "freshness", f"no source records at all in {period.label}")]
    lag = period.utc_end - latest
    limit = timedelta(hours=config.max_staleness_hours[period.grain])
    if lag > limit:
        return [Finding("fail", "freshness",
                        f"newest source record is {latest:%Y-%m-%d %H:%M} UTC, {lag.total_seconds() / 3600:.1f} h "
                        f"before the period's end (allowed {limit.total_seconds() / 3600:g} h): the source load "
                        "looks unfinished")]
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


def evaluate(period: ReportPeriod, staged: dict[str, dict[str, Any]], recent: list[dict[str, int]],
             config: GateConfig) -> list[Finding]:
    """All findings for a period from the staged payloads of its areas and the recent runs' row counts."""
    latest = [datetime.fromisoformat(p["latest_source_ts"]) for p in staged.values() if p.get("latest_source_ts")]
    rows_read: dict[str, int] = {}
    for payload in staged.values():
        rows_read.update(payload.get("rows_read", {}))
    values = [v for payload in staged.values() for v in payload.get("values", [])]
    return (check_freshness(period, max(latest) if latest else None, config)
            + check_volume(rows_read, recent, config)
            + check_ranges(values))
