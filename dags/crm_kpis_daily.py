"""Airflow DAG crm_kpis_daily: daily CRM KPIs, one run per calendar day in the report timezone (wiring in crm_kpis.orchestration.dag_factory)."""

from crm_kpis.orchestration.dag_factory import make_kpi_dag

dag = make_kpi_dag("daily")
