"""Airflow plugin: registers the DAGs' period timetable (Airflow requires it for a custom timetable).

Only wiring lives here; the timetable is `crm_kpis.timetable.PeriodTimetable`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from crm_kpis.timetable import PeriodTimetable


class CrmKpisTimetablePlugin(AirflowPlugin):
    name = "crm_kpis_timetable"
    timetables = [PeriodTimetable]
