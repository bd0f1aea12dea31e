"""Environment for running Airflow locally on the embedded default (demo, tests, `make airflow`).

Why a module: Airflow reads its configuration when it is first imported, so these variables must
be set before any `airflow` import; the demo runner and the tests call `configure()` first.
Values already set in the environment win, so a user can point at other folders or databases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from crm_kpis.config import PROJECT_DIR, var_dir


def configure(home: Path | None = None) -> Path:
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", home or var_dir() / "airflow")).resolve()
    airflow_home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return airflow_home


def migrate() -> None:
    """Create or upgrade Airflow's metadata database (dag.test needs it)."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


# --- `make airflow`: Airflow's own standalone mode on the embedded default ---------------------
def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float) -> bool:
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=3) as r:
                health = json.loads(r.read())
            if all(part.get("status") == "healthy" for part in health.values()):
                return True
        except OSError:
            pass
        time.sleep(2)
    return False


def _password(home: Path) -> str:
    generated = home / "simple_auth_manager_passwords.json.generated"
    return json.loads(generated.read_text())["admin"] if generated.exists() else "(see the log)"


def _check(base: str, password: str) -> list[str]:
    """Log in through the REST API and list the DAGs (what a person sees in the UI)."""
    import time
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{base}/api/v2/dags", timeout=5)
        raise RuntimeError("the API answered without authentication")
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise
    request = urllib.request.Request(f"{base}/auth/token", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"username": "admin", "password": password}).encode())
    with urllib.request.urlopen(request, timeout=10) as r:
        token = json.loads(r.read())["access_token"]
    for _ in range(30):  # the dag-processor parses the files shortly after start
        request = urllib.request.Request(f"{base}/api/v2/dags", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            dag_ids = sorted(d["dag_id"] for d in json.loads(r.read())["dags"])
        if dag_ids:
            return dag_ids
        time.sleep(2)
    return []


def main(argv: list[str] | None = None) -> int:
    """Start `airflow standalone` with the project's DAGs; stop it and all its children on Ctrl-C."""
    import argparse
    import os
    import signal

    parser = argparse.ArgumentParser(prog="python -m crm_kpis.local_airflow", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8080, help="UI and API port (default 8080)")
    parser.add_argument("--check", action="store_true", help="start, log in through the API, list the DAGs, stop")
    args = parser.parse_args(argv)
    home = configure()
    migrate()
    env = {
        **os.environ,
        # standalone starts its components as `airflow ...`: the project's environment comes first
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(args.port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{args.port}/execution/",
        # the log servers bind every interface by default (8793, 8794): keep them beside the UI port
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(args.port + 1),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(args.port + 2),
    }
    if args.check:  # a check looks, it does not run anything: no scheduled DAG runs
        env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    log_file = home / "standalone.log"
    base = f"http://127.0.0.1:{args.port}"
    with open(log_file, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def stop(*_: object) -> None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the whole group: scheduler, api-server, workers, log servers
            proc.wait(timeout=30)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        print("Airflow stopped.")

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    try:
        print(f"starting Airflow (log: {log_file}) ...", flush=True)
        if not _wait_healthy(base, proc, timeout=240):
            print(f"Airflow did not become healthy; see {log_file}", file=sys.stderr)
            return 1
        password = _password(home)
        print(f"\nAirflow UI: {base}\nLogin: admin / {password}\nDAGs folder: {env['AIRFLOW__CORE__DAGS_FOLDER']}")
        if args.check:
            dag_ids = _check(base, password)
            print(f"DAGs seen through the API: {', '.join(dag_ids) or 'none'}")
            return 0 if {"crm_kpis_daily", "crm_kpis_monthly"} <= set(dag_ids) else 1
        print("Press Ctrl-C to stop.", flush=True)
        proc.wait()
        return proc.returncode or 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
