"""The deployment compose file, checked statically (no Docker engine on these machines)."""

import json

import yaml

from crm_kpis.config import PROJECT_DIR
from crm_kpis.report.email import SMTP_CONN_ID
from crm_kpis.sources import CRM_CONN_ID, HELPDESK_CONN_ID, WAREHOUSE_CONN_ID

COMPOSE = yaml.safe_load((PROJECT_DIR / "docker-compose.yaml").read_text())
AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                    "airflow-triggerer", "airflow-init"]


def test_services_of_the_official_shape_and_the_project():
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "kpi-warehouse", "crm-db", "helpdesk-db", "mailpit",
                                    "demo-data"} == set(COMPOSE["services"])
    one_shot = {"airflow-init", "demo-data", "mailpit"}
    for name, service in COMPOSE["services"].items():
        assert name in one_shot or "healthcheck" in service, f"{name} has no healthcheck"


def test_sources_are_read_through_read_only_accounts_and_seeded_by_their_owners():
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    assert "crm_reader" in env["AIRFLOW_CONN_CRM_DB"] and "helpdesk_reader" in env["AIRFLOW_CONN_HELPDESK_DB"]
    for service, script in (("crm-db", "deploy/crm-db-init.sh"), ("helpdesk-db", "deploy/helpdesk-db-init.sh")):
        mounts = COMPOSE["services"][service]["volumes"]
        assert any(m.startswith(f"./{script}:/docker-entrypoint-initdb.d/") for m in mounts)
        assert "GRANT SELECT" in (PROJECT_DIR / script).read_text()
    seeder = COMPOSE["services"]["demo-data"]
    assert seeder["entrypoint"] == ["python", "-m", "crm_kpis.demo"]
    assert {d: c["condition"] for d, c in seeder["depends_on"].items()} == {
        "crm-db": "service_healthy", "helpdesk-db": "service_healthy"}
    assert any("@crm-db:5432/crm" in a for a in seeder["command"])
    assert any("@helpdesk-db:3306/helpdesk" in a for a in seeder["command"])


def test_connections_match_the_dags_connection_ids():
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    for conn_id in (CRM_CONN_ID, HELPDESK_CONN_ID, WAREHOUSE_CONN_ID, SMTP_CONN_ID):
        assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, conn_id
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert smtp["host"] == "mailpit" and smtp["extra"]["disable_ssl"] is True  # booleans as JSON, not URI strings
    for host in ("crm-db", "helpdesk-db", "kpi-warehouse"):
        assert any(f"@{host}:" in str(v) for v in env.values()), host


def test_project_folders_are_mounted_and_the_image_is_built():
    for name in AIRFLOW_SERVICES:
        service = COMPOSE["services"][name]
        assert service["build"] == "."
        mounts = {m.split(":")[1] for m in service["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= mounts
        assert service["environment"]["PYTHONPATH"] == "/opt/airflow/include"
    assert "pip install" in (PROJECT_DIR / "Dockerfile").read_text()
