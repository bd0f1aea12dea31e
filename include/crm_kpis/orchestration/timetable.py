"""The DAGs' timetable: one calendar day or month at local midnight, and runs named by their period.

Why not the stock `CronDataIntervalTimetable`: its scheduled run for October has logical date
1 October and interval [1 Oct, 1 Nov), but a manual run (`airflow dags test … 2026-10-01`, the
UI's trigger form, `dag.test()`) for logical date 1 October covers *September*: the last complete
interval before the date. The demo's runs then had the period's end as logical date, unlike the
scheduler's, so the scheduler skipped the current period ("run already exists") and a backfill of
October re-ran September. Here a manual run whose logical date is a period start covers that
period: the run the scheduler creates for it. A manual run at any other instant (the trigger
form's default, now) keeps Airflow's rule, the last complete period before it.

Scheduled and triggered runs' ids name the period (`scheduled__2026-10`,
`manual__2026-10__<trigger time>`), so the runs list and the grid say which period a run computed.
(Airflow 3.3 names new backfill runs itself, after the period's end: `backfill__2026-10-06T00:00…`
is the run for 5 October.) Registered through `plugins/crm_kpis_timetable_plugin.py`, as
Airflow requires for a custom timetable.
"""

from __future__ import annotations

from typing import Any

from airflow.timetables.base import DataInterval
from airflow.timetables.interval import CronDataIntervalTimetable
from airflow.utils.types import DagRunType

GRAIN_KEYS = {"daily": "YYYY-MM-DD", "monthly": "YYYY-MM"}


class PeriodTimetable(CronDataIntervalTimetable):
    """Consecutive calendar periods of one grain in a timezone; logical date = the period's start."""

    def __init__(self, cron: str, timezone: Any, grain: str) -> None:
        if grain not in GRAIN_KEYS:
            raise ValueError(f"grain must be one of {tuple(GRAIN_KEYS)}, not {grain!r}")
        super().__init__(cron, timezone)
        self.grain = grain

    @property
    def summary(self) -> str:
        return f"{self.grain} periods ({self._expression}, {self._timezone})"

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> PeriodTimetable:
        cron = CronDataIntervalTimetable.deserialize(data)  # Airflow's own timezone decoding
        return cls(data["expression"], cron._timezone, data["grain"])

    def serialize(self) -> dict[str, Any]:
        return {**super().serialize(), "grain": self.grain}

    def infer_manual_data_interval(self, *, run_after: Any) -> DataInterval:
        if self._align_to_prev(run_after) == run_after:  # a period start: that period
            return DataInterval(start=run_after, end=self._get_next(run_after))
        return super().infer_manual_data_interval(run_after=run_after)

    def period_key(self, start: Any) -> str:
        local = start.in_timezone(self._timezone)
        return local.format(GRAIN_KEYS[self.grain])

    def generate_run_id(self, *, run_type: DagRunType, run_after: Any, data_interval: DataInterval | None,
                        **extra: Any) -> str:
        if data_interval is None:
            return super().generate_run_id(run_type=run_type, run_after=run_after, data_interval=data_interval, **extra)
        key = self.period_key(data_interval.start)
        if run_type == DagRunType.SCHEDULED:
            return run_type.generate_run_id(suffix=key)  # the scheduler creates one run per period
        if run_type == DagRunType.MANUAL:  # a period may be triggered again: the time keeps ids unique
            return run_type.generate_run_id(suffix=f"{key}__{run_after.isoformat()}")
        # backfill runs that re-run a period beside its earlier run: Airflow's own unique id
        return super().generate_run_id(run_type=run_type, run_after=run_after, data_interval=data_interval, **extra)
