"""Airflow plugin: registers the DAGs' period timetable and their deadline reference.

Airflow finds a custom timetable and a custom deadline reference only through a plugin, in every
component (scheduler, DAG processor, API server). Only wiring lives here: the timetable is
`crm_kpis.orchestration.timetable.PeriodTimetable`, the deadline reference `crm_kpis.orchestration.deadlines.PeriodEndDeadline`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from crm_kpis.orchestration.deadlines import PeriodEndDeadline
from crm_kpis.orchestration.timetable import PeriodTimetable


class CrmKpisTimetablePlugin(AirflowPlugin):
    name = "crm_kpis_timetable"
    timetables = [PeriodTimetable]
    deadline_references = [PeriodEndDeadline]
