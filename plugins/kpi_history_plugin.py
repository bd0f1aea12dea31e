"""Airflow plugin: the KPI history view (Browse → KPI history) in the Airflow UI.

Only wiring lives here; the app, its checks and its queries are in `crm_kpis.ui.history_view`.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from crm_kpis.ui.history_view import UI_ROUTE, URL_PREFIX, create_app


class KpiHistoryPlugin(AirflowPlugin):
    name = "crm_kpi_history"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "CRM KPI history"}]
    external_views = [{
        "name": "KPI history",
        "href": f"{URL_PREFIX}/",
        "url_route": UI_ROUTE,
        "destination": "nav",
        "category": "browse",
    }]
