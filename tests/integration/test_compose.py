"""The deployment compose file, checked statically (no Docker engine on these machines)."""

import json
import re

import pytest
import yaml

from crm_kpis.delivery.email import SMTP_CONN_ID
from crm_kpis.paths import PROJECT_DIR
from crm_kpis.sources.connections import CRM_CONN_ID, HELPDESK_CONN_ID, WAREHOUSE_CONN_ID

COMPOSE = yaml.safe_load((PROJECT_DIR / "docker-compose.yaml").read_text())
AIRFLOW_SERVICES = ["airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                    "airflow-triggerer", "airflow-init"]


def test_services_of_the_official_shape_and_the_project():
    assert set(AIRFLOW_SERVICES) | {"postgres", "redis", "kpi-warehouse", "crm-db", "helpdesk-db", "mailpit",
                                    "demo-data", "airflow-cli", "flower"} == set(COMPOSE["services"])
    one_shot = {"airflow-init", "demo-data", "mailpit", "airflow-cli"}
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
    assert seeder["entrypoint"] == ["python", "-m", "crm_kpis.tools.demo"]
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


def test_every_component_reads_and_writes_reports_in_one_shared_store():
    """The worker that sends (and the API server's PDF link) read what another worker rendered:
    `CRM_KPIS_REPORTS_URL` is set alike for every Airflow component, on a volume all of them mount."""
    urls = {interpolate(str(COMPOSE["services"][n]["environment"]["CRM_KPIS_REPORTS_URL"]), {})
            for n in AIRFLOW_SERVICES}
    assert urls == {"file:///opt/airflow/var/reports"}
    for name in AIRFLOW_SERVICES:
        assert "./var:/opt/airflow/var" in COMPOSE["services"][name]["volumes"], name


# --- safe by default ------------------------------------------------------------------------------
TEXT = (PROJECT_DIR / "docker-compose.yaml").read_text()
VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
SECRET = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
#: the variables compose refuses to start without (`${VAR:?…}`)
REQUIRED = {name for name, op, _ in VARIABLE.findall(TEXT) if op == ":?"}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's own rules for ${VAR}, ${VAR:-default} and ${VAR:?error}."""
    def one(match: re.Match) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if op == ":?" and not value:
            raise KeyError(f"{name}: {arg}")
        return value or (arg if op == ":-" else "")
    return VARIABLE.sub(one, text)


def test_no_secret_has_a_usable_default():
    for name, op, _ in VARIABLE.findall(TEXT):
        if SECRET.search(name):
            assert op == ":?", f"${{{name}}} must be required (:?), not {op or 'optional'}"
    # no literal password either: every password-like setting comes from a required variable
    for service, spec in COMPOSE["services"].items():
        env = spec.get("environment") or {}
        for key, value in env.items():
            if SECRET.search(key) and not key.startswith("_AIRFLOW_WWW_USER_CREATE"):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", str(value)), f"{service}.{key} = {value!r}"
        for arg in spec.get("command") or []:
            for url_password in re.findall(r"://\w+:([^@]+)@", str(arg)):
                assert url_password.startswith("${") and ":?" in url_password, f"{service}: {arg}"
    for value in COMPOSE["services"]["airflow-scheduler"]["environment"].values():
        for url_password in re.findall(r"://\w*:([^@]*)@", str(value)):
            assert url_password == "" or (url_password.startswith("${") and ":?" in url_password), value


def test_it_refuses_to_start_without_the_secrets_and_uses_the_ones_given():
    with pytest.raises(KeyError, match="AIRFLOW_DB_PASSWORD|FERNET_KEY|AIRFLOW_JWT_SECRET"):
        interpolate(TEXT, {})
    given = {name: f"value-of-{name.lower()}" for name in REQUIRED}
    assert {"AIRFLOW_JWT_SECRET", "FERNET_KEY", "AIRFLOW_DB_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"} <= set(given)
    env = yaml.safe_load(interpolate(TEXT, given))["services"]["airflow-apiserver"]["environment"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "value-of-airflow_jwt_secret"
    assert "change-me" not in TEXT


def test_nothing_is_published_beyond_this_host_without_asking():
    for service, spec in COMPOSE["services"].items():
        for port in spec.get("ports") or []:
            assert str(port).startswith(("127.0.0.1:", "${AIRFLOW_UI_BIND:-127.0.0.1}:")), f"{service}: {port}"


def test_every_image_is_pinned_to_a_version():
    images = {service: spec["image"] for service, spec in COMPOSE["services"].items() if "image" in spec}
    images["base"] = re.search(r"^FROM (\S+)", (PROJECT_DIR / "Dockerfile").read_text(), re.M).group(1)
    for service, image in images.items():
        name, _, tag = image.rpartition(":")
        assert name and re.fullmatch(r"v?\d+\.\d+(\.\d+)?(-[\w.]+)?", tag), f"{service}: {image} is not pinned"


def test_a_team_auth_manager_with_the_first_admin_from_variables_and_the_official_profiles():
    env = COMPOSE["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
    assert "SIMPLE_AUTH_MANAGER_USERS" not in TEXT
    init = COMPOSE["services"]["airflow-init"]["environment"]
    assert init["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert init["_AIRFLOW_WWW_USER_PASSWORD"].startswith("${AIRFLOW_ADMIN_PASSWORD:?")
    assert COMPOSE["services"]["flower"]["profiles"] == ["flower"]
    assert COMPOSE["services"]["airflow-cli"]["profiles"] == ["debug"]


def test_links_readers_open_without_an_account_are_signed_and_start_at_the_address_given():
    """Every component signs or checks the PDF links with one required secret (without it the
    email and chat links would lead to the Airflow login), and makes links with the base URL the
    operator gives (the TLS proxy's), defaulting to the published UI."""
    given = {name: f"value-of-{name.lower()}" for name in REQUIRED}
    assert "CRM_KPIS_LINK_SECRET" in given
    for base_url, expected in (({}, "http://127.0.0.1:8080"),
                               ({"AIRFLOW_BASE_URL": "https://airflow.example.com"}, "https://airflow.example.com")):
        services = yaml.safe_load(interpolate(TEXT, {**given, **base_url}))["services"]
        for name in AIRFLOW_SERVICES:
            env = services[name]["environment"]
            assert env["CRM_KPIS_LINK_SECRET"] == "value-of-crm_kpis_link_secret", name
            assert env["AIRFLOW__API__BASE_URL"] == expected, name


def test_the_readmes_env_recipe_sets_every_required_variable():
    """`docker compose` refuses to start until each required variable is set: the README's recipe
    for `.env` must name them all, or a reader following it meets the refusal."""
    readme = (PROJECT_DIR / "README.md").read_text()
    recipe = re.search(r"cat > \.env <<ENV\n(.*?)\nENV\n", readme, re.S).group(1)
    written = {line.split("=", 1)[0] for line in recipe.splitlines()}
    assert written >= REQUIRED, sorted(REQUIRED - written)
