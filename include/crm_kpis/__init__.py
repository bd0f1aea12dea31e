"""CRM KPI reporting: periods, extracts, KPI computations, history, reports and email.

Importable without Airflow running; the DAGs in `dags/` only wire these functions into tasks.
"""
