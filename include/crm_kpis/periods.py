"""Reporting periods: one calendar day or month in the report timezone.

Why a class of its own: every query, KPI and history row depends on the period, and the two ways
to get it wrong (using `now()`, or mixing local and UTC bounds around a DST change) are silent.
A period is built only from a run's data interval, and it hands the database UTC bounds, since
the sources store UTC timestamps (see source-schema.md).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

GRAINS = ("daily", "monthly")
#: months of the lifetime-value models' holdout check (crm_kpis.clv.forecast), bound by every extract
HOLDOUT_MONTHS = 6


class PeriodError(ValueError):
    """The data interval does not describe exactly one reporting period."""


def _add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(month_index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


@dataclass(frozen=True, order=True)
class ReportPeriod:
    """The half-open period [start, end) of one grain, as local calendar dates in `tz`."""

    grain: str
    start_date: date
    tz: str = "UTC"

    def __post_init__(self) -> None:
        if self.grain not in GRAINS:
            raise PeriodError(f"grain must be one of {GRAINS}, not {self.grain!r}")
        if self.grain == "monthly" and self.start_date.day != 1:
            raise PeriodError(f"a monthly period starts on the 1st, not {self.start_date}")
        ZoneInfo(self.tz)  # fail early on a misspelt timezone

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_data_interval(
        cls, grain: str, interval_start: datetime, interval_end: datetime, tz: str
    ) -> ReportPeriod:
        """The period a DAG run covers; its data interval must be exactly that period.

        The DAGs use a `CronDataIntervalTimetable` at local midnight, so a run's interval is one
        calendar day or month in `tz`. Anything else (a cron trigger timetable's zero-width
        interval, a timetable in another timezone) is a configuration error, reported as such
        rather than silently computing the wrong day.
        """
        zone = ZoneInfo(tz)
        local_start = interval_start.astimezone(zone)
        local_end = interval_end.astimezone(zone)
        if local_start.time() != time(0, 0):
            raise PeriodError(
                f"data interval starts at {local_start.isoformat()}, not at midnight in {tz}: "
                "the DAG's timetable must be CronDataIntervalTimetable at 00:00 in the report timezone"
            )
        period = cls(grain, local_start.date(), tz)
        if period.utc_end != interval_end.astimezone(UTC).replace(tzinfo=None):
            raise PeriodError(
                f"data interval {local_start.isoformat()} .. {local_end.isoformat()} is not one "
                f"{grain} period in {tz} (expected it to end at {period.end_date} 00:00)"
            )
        return period

    @classmethod
    def parse(cls, grain: str, text: str, tz: str = "UTC") -> ReportPeriod:
        """`2026-10` (monthly) or `2026-10-05` (daily), for command lines and tests."""
        if grain == "monthly" and len(text) == 7:
            text = f"{text}-01"
        return cls(grain, date.fromisoformat(text), tz)

    # --- bounds -------------------------------------------------------------------------
    @property
    def end_date(self) -> date:
        """First local day after the period (exclusive bound)."""
        if self.grain == "daily":
            return self.start_date + timedelta(days=1)
        return _add_months(self.start_date, 1)

    @property
    def days(self) -> int:
        return (self.end_date - self.start_date).days

    def _utc(self, day: date) -> datetime:
        local = datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(self.tz))
        return local.astimezone(UTC).replace(tzinfo=None)

    def utc_of(self, day: date) -> datetime:
        """The local midnight starting `day`, as a naive UTC timestamp."""
        return self._utc(day)

    @property
    def utc_start(self) -> datetime:
        """Start as a naive UTC timestamp, the form the sources store."""
        return self._utc(self.start_date)

    @property
    def utc_end(self) -> datetime:
        return self._utc(self.end_date)

    @property
    def hours(self) -> float:
        """Real length in hours: 23 or 25 on a DST change day."""
        return (self.utc_end - self.utc_start).total_seconds() / 3600

    def sql_params(self, source_tz: str = "UTC") -> dict[str, object]:
        """Bind parameters every extract query may use.

        Timestamps bound are naive wall times in `source_tz`, the zone in which the source stores
        its naive timestamps (a connection's extra `timezone`), so the period is cut in the
        database at the right instants. Dates are the period's local calendar dates.
        """
        return {
            "start": self._in_source(self.utc_start, source_tz),
            "end": self._in_source(self.utc_end, source_tz),
            "start_date": self.start_date,
            "end_date": self.end_date,
            # the twelve months that end with this period's month (trailing windows, e.g. CLV)
            "trailing_start": self._in_source(self.trailing_months_start(12), source_tz),
            # the lifetime-value models' holdout check: the six months that end with this period's
            # month, holdout_1 its first month's start, holdout_2 … holdout_6 the next months' starts
            **{f"holdout_{i}": self._in_source(self.trailing_months_start(HOLDOUT_MONTHS + 1 - i), source_tz)
               for i in range(1, HOLDOUT_MONTHS + 1)},
        }

    @staticmethod
    def _in_source(utc: datetime, source_tz: str) -> datetime:
        if source_tz == "UTC":
            return utc
        return utc.replace(tzinfo=UTC).astimezone(ZoneInfo(source_tz)).replace(tzinfo=None)

    def trailing_months_start(self, months: int) -> datetime:
        """UTC start of the `months` calendar months that end with this period's month."""
        first = self.start_date.replace(day=1)
        return self._utc(_add_months(first, 1 - months))

    # --- neighbours ---------------------------------------------------------------------
    def shift(self, periods: int) -> ReportPeriod:
        if self.grain == "daily":
            return ReportPeriod(self.grain, self.start_date + timedelta(days=periods), self.tz)
        return ReportPeriod(self.grain, _add_months(self.start_date, periods), self.tz)

    def previous(self) -> ReportPeriod:
        return self.shift(-1)

    def year_ago(self) -> ReportPeriod:
        """The same period one year earlier (29 Feb maps to 28 Feb)."""
        return ReportPeriod(self.grain, _add_months(self.start_date, -12), self.tz)

    # --- labels -------------------------------------------------------------------------
    @property
    def key(self) -> str:
        """Stable text key: `2026-10` or `2026-10-05`."""
        return self.start_date.strftime("%Y-%m") if self.grain == "monthly" else self.start_date.isoformat()

    @property
    def label(self) -> str:
        if self.grain == "monthly":
            return self.start_date.strftime("%B %Y")
        return self.start_date.strftime("%A %d %B %Y")

    @property
    def span(self) -> str:
        """The days the period covers, as a reader says them: `1–31 October 2026`, `5 October 2026`
        (not "2026-10-01 to 2026-11-01, end exclusive")."""
        last = self.end_date - timedelta(days=1)
        if self.grain == "daily":
            return f"{self.start_date.day} {self.start_date:%B %Y}"
        return f"{self.start_date.day}–{last.day} {self.start_date:%B %Y}"

    def __str__(self) -> str:
        return f"{self.grain} {self.key} ({self.tz})"



def logical_date(period: ReportPeriod) -> str:
    """The period's start in the report timezone, with its UTC offset: the run's logical date."""
    return datetime.combine(period.start_date, time(0, 0), tzinfo=ZoneInfo(period.tz)).isoformat()
