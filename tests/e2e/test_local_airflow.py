"""`make airflow`: Airflow's standalone mode starts with the project's DAGs, requires a login, and
stops with every child process (the check mode starts it, uses the REST API, and stops it)."""

import subprocess
import sys

from tests.e2e.helpers import free_port_block, port_is_free


def test_standalone_starts_lists_the_dags_and_stops_cleanly(airflow_db):
    port = free_port_block()
    result = subprocess.run([sys.executable, "-m", "crm_kpis.local_airflow", "--port", str(port), "--check"],
                            capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DAGs seen through the API: crm_kpis_daily, crm_kpis_monthly" in result.stdout
    assert f"Airflow UI: http://127.0.0.1:{port}" in result.stdout and "Login: admin / " in result.stdout
    assert "Airflow stopped." in result.stdout
    assert all(port_is_free(port + i) for i in (0, 1, 2)), "a component still listens after stopping"
