"""Airflow's distributed setup as local processes: scheduler, dag-processor, triggerer, API server
and several Celery workers (CeleryExecutor, Redis broker, PostgreSQL metadata database).

Why: the compose file and a Helm deployment run tasks on separate workers, and whatever a task
leaves on its own worker's disk is missing for the next task on another one. This runs the same
topology on one machine without a container engine (`make celery`, and the distributed test): every
component gets its own `AIRFLOW_HOME`, and with `own_homes` its own `CRM_KPIS_HOME` too, so only
what is shared on purpose is shared: the metadata database, the broker, the warehouse and sources
(connections), the reports' store (`reports_url`) and the task-log folder (the official compose
file mounts one `logs` volume into every container for the same reason).

Each component runs in a process group of its own, so that `kill_worker` can take a worker down
the way a lost host goes: SIGKILL to the Celery worker, its pool and the task it was running.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from crm_kpis.delivery.reports_store import REPORTS_URL_ENV
from crm_kpis.paths import PROJECT_DIR, var_dir
from crm_kpis.tools.local_airflow import RunningAirflow, _stop, _wait_healthy, serve_until_stopped

#: The worker's name for `TaskInstance.hostname` (Airflow's `[core] hostname_callable`): two
#: workers on one machine would otherwise both report the machine's name.
WORKER_NAME_ENV = "CRM_KPIS_WORKER_NAME"
DEFAULT_METADATA_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/crm_kpis_airflow"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"


def worker_hostname() -> str:
    """`[core] hostname_callable` for named workers: the worker's name, else the machine's."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


@dataclass
class Cluster:
    """A started distributed Airflow: the API server (as `RunningAirflow`) and its workers."""

    airflow: RunningAirflow
    homes: Path
    components: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def workers(self) -> list[str]:
        return [name for name in self.components if name.startswith("worker")]

    def alive(self, name: str) -> bool:
        return self.components[name].poll() is None

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's whole process group (Celery's parent, its pool, the running task)."""
        proc = self.components[name]
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def log(self, name: str) -> Path:
        return self.homes / name / "component.log"


def cluster_env(port: int, metadata_url: str, broker_url: str, shared: Path, reports_url: str | None,
                extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every component shares (what a deployment sets for all of its containers)."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        # Airflow would take asyncpg for its async engine; psycopg 3 (installed) is async too
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url.replace("+psycopg:", "+psycopg_async:", 1),
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
        # secrets made for this start, never a default (README "Deploying with Docker Compose")
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "crm_kpis.tools.distributed.worker_hostname",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(shared / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("CRM_KPIS_AIRFLOW_LOG_LEVEL", "INFO"),
        # scheduled runs only when asked: the DAGs' latest period may have no data yet
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    })
    if reports_url:
        env[REPORTS_URL_ENV] = reports_url
    env.update(extra or {})
    return env


def ensure_database(url: str) -> None:
    """Create the PostgreSQL metadata database when it does not exist (Airflow migrates it)."""
    from sqlalchemy import create_engine, make_url, text

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}).first() is None:
                conn.execute(text(f'CREATE DATABASE "{target.database}"'))  # the name is the deployment's own
    finally:
        admin.dispose()


def _component_env(env: dict[str, str], homes: Path, name: str, own_homes: bool) -> dict[str, str]:
    home = homes / name
    home.mkdir(parents=True, exist_ok=True)
    out = {**env, "AIRFLOW_HOME": str(home), WORKER_NAME_ENV: name}
    if own_homes:
        out["CRM_KPIS_HOME"] = str(home / "var")
    return out


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "airflow", *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(log: Path, proc: subprocess.Popen, marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{log.parent.name} exited with {proc.returncode}; see {log}")
        if log.exists() and marker in log.read_text(errors="replace"):
            return
        time.sleep(1)
    raise RuntimeError(f"{log.parent.name} not ready within {timeout:.0f} s; see {log}")


def _flush_broker(broker_url: str) -> None:
    """Start from an empty queue: messages of an earlier, killed cluster would run stale tries."""
    import redis

    redis.Redis.from_url(broker_url).flushdb()


@contextmanager
def celery_cluster(port: int, homes: Path, workers: int = 2, metadata_url: str = DEFAULT_METADATA_URL,
                   broker_url: str = DEFAULT_BROKER_URL, reports_url: str | None = None, own_homes: bool = False,
                   extra_env: dict[str, str] | None = None, fresh_broker: bool = False,
                   timeout: float = 300) -> Iterator[Cluster]:
    """Start the components (each in its own home and process group, bound to 127.0.0.1) and stop
    them all on exit. `own_homes` gives each its own `CRM_KPIS_HOME` as well; `fresh_broker`
    empties the broker's Redis database first (a test's own database, never a user's)."""
    shared = homes / "shared"
    (shared / "logs").mkdir(parents=True, exist_ok=True)
    env = cluster_env(port, metadata_url, broker_url, shared, reports_url, extra_env)
    ensure_database(metadata_url)
    if fresh_broker:
        _flush_broker(broker_url)
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                             env=_component_env(env, homes, "migrate", own_homes))
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-2000:]}\n{migrate.stderr[-2000:]}")
    commands = {
        "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(port)],
        "scheduler": ["scheduler", "--skip-serve-logs"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer", "--skip-serve-logs"],
        # one task at a time per worker, so that a run's parallel tasks spread over the workers
        **{f"worker{i}": ["celery", "worker", "--concurrency", "1", "--celery-hostname", f"worker{i}@%h",
                          "--skip-serve-logs", "--without-mingle", "--without-gossip"]
           for i in range(1, workers + 1)},
    }
    cluster = Cluster(airflow=None, homes=homes)  # type: ignore[arg-type]
    try:
        for name, args in commands.items():
            component_env = _component_env(env, homes, name, own_homes)
            cluster.components[name] = _start(args, component_env, cluster.log(name))
        api = cluster.components["api-server"]
        base = f"http://127.0.0.1:{port}"
        if not _wait_healthy(base, api, timeout=timeout):
            raise RuntimeError(f"Airflow did not become healthy within {timeout:.0f} s; see {cluster.log('api-server')}")
        for name in cluster.workers:
            _wait_ready(cluster.log(name), cluster.components[name], " ready.", timeout)
        home = homes / "api-server"
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        cluster.airflow = RunningAirflow(base, password, {**env, "AIRFLOW_HOME": str(home)}, cluster.log("api-server"),
                                         api)
        yield cluster
    finally:
        for proc in cluster.components.values():
            _stop(proc)


def main(argv: list[str] | None = None) -> int:
    """Run Airflow's distributed setup on this machine: scheduler, dag-processor, triggerer, API server
    (127.0.0.1) and Celery workers, with a PostgreSQL metadata database and a Redis broker; Ctrl-C stops it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crm_kpis.tools.distributed", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8080, help="UI and API port (default 8080)")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    parser.add_argument("--metadata-url", default=os.environ.get("CRM_KPIS_AIRFLOW_DB_URL", DEFAULT_METADATA_URL),
                        help="Airflow's metadata database (PostgreSQL; created when missing)")
    parser.add_argument("--broker-url", default=os.environ.get("CRM_KPIS_BROKER_URL", DEFAULT_BROKER_URL),
                        help="Celery broker (Redis)")
    args = parser.parse_args(argv)
    homes = var_dir() / "celery"
    print(f"starting Airflow with {args.workers} Celery workers (logs: {homes}/<component>/component.log) ...",
          flush=True)

    def run() -> int:
        with celery_cluster(args.port, homes, args.workers, args.metadata_url, args.broker_url) as cluster:
            print(f"\nAirflow UI: {cluster.airflow.base_url}\nLogin: admin / {cluster.airflow.password}\n"
                  f"Workers: {', '.join(cluster.workers)}\nPress Ctrl-C to stop.", flush=True)
            while all(p.poll() is None for p in cluster.components.values()):
                time.sleep(2)
            gone = [n for n, p in cluster.components.items() if p.poll() is not None]
            print(f"stopped: {', '.join(gone)} exited; see {homes}", file=sys.stderr)
            return 1

    return serve_until_stopped(run)


if __name__ == "__main__":
    sys.exit(main())
