"""`make airflow`: Airflow's standalone mode starts with the project's DAGs, requires a login, and
stops with every child process (the check mode starts it, uses the REST API, and stops it)."""

import socket
import subprocess
import sys


def _free_port_block() -> int:
    """A port whose two neighbours (the log servers) are free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and all(_free(port + i) for i in (1, 2)):
            return port
    raise RuntimeError("no free port block")


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_standalone_starts_lists_the_dags_and_stops_cleanly(airflow_db):
    port = _free_port_block()
    result = subprocess.run([sys.executable, "-m", "crm_kpis.local_airflow", "--port", str(port), "--check"],
                            capture_output=True, text=True, timeout=420)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "DAGs seen through the API: crm_kpis_daily, crm_kpis_monthly" in result.stdout
    assert f"Airflow UI: http://127.0.0.1:{port}" in result.stdout and "Login: admin / " in result.stdout
    assert "Airflow stopped." in result.stdout
    assert all(_free(port + i) for i in (0, 1, 2)), "a component still listens after stopping"
