"""The Airflow wiring: what each task does (`tasks`), the DAG factory, the period timetable,
deadline alerts, failure notifiers and the approval step.

Kept light: the DAG files import `dag_factory` at parse time; everything heavy is imported inside
the task bodies.
"""
