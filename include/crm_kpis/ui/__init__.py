"""The product's page in the Airflow UI: the KPI history view (served by plugins/kpi_history_plugin.py)."""
