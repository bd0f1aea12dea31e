"""Environment for running Airflow locally on the embedded default (demo, tests, `make airflow`).

Why a module: Airflow reads its configuration when it is first imported, so these variables must
be set before any `airflow` import; the demo runner and the tests call `configure()` first.
Values already set in the environment win, so a user can point at other folders or databases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_kpis.paths import PROJECT_DIR, var_dir

# SQLite has one writer at a time and Python's driver gives up after 5 s of waiting for the lock.
# With a scheduler, a dag-processor, an API server and a CLI command (a backfill being created)
# sharing the embedded metadata database on a busy 2-core machine, writes wait longer than that
# and fail with "database is locked" (seen in CI). Airflow imports these connect arguments by
# path (`[database] sql_alchemy_connect_args`); each of its processes gets its own copy.
SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, Any] = {"timeout": 60}


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
    _local_link_secret(airflow_home)
    if os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("sqlite"):
        os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS",
                              "crm_kpis.tools.local_airflow.SQLITE_CONNECT_ARGS")
        os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC",
                              "crm_kpis.tools.local_airflow.SQLITE_CONNECT_ARGS_ASYNC")
    return airflow_home


def _local_link_secret(airflow_home: Path) -> None:
    """This machine's secret for the reports' shared links (crm_kpis.delivery.shared_links), made
    once at random and kept beside Airflow's generated password, so that the demo's emails and
    `make airflow`'s messages carry links that open. A deployment sets its own; none is built in."""
    import secrets

    from crm_kpis.delivery.shared_links import LINK_SECRET_ENV

    if os.environ.get(LINK_SECRET_ENV):
        return
    kept = airflow_home / "link_secret.generated"
    if not kept.exists():
        kept.touch(mode=0o600)
        kept.write_text(secrets.token_urlsafe(32))
    os.environ[LINK_SECRET_ENV] = kept.read_text().strip()


def migrate() -> None:
    """Create or upgrade Airflow's metadata database (dag.test needs it)."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


# --- `make airflow`: Airflow's own standalone mode on the embedded default ---------------------
def _wait_healthy(base: str, proc: subprocess.Popen, timeout: float) -> bool:
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


def _token(base: str, password: str) -> str:
    """A JWT for the REST API, from Airflow's own login endpoint."""
    import urllib.request

    request = urllib.request.Request(f"{base}/auth/token", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"username": "admin", "password": password}).encode())
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.loads(r.read())["access_token"]


BACKFILL_ATTEMPTS = 3


@dataclass
class RunningAirflow:
    """A started `airflow standalone`: where it answers and how to log in."""

    base_url: str
    password: str
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen
    _token: str | None = field(default=None, repr=False)

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call the REST API (v2) as admin; returns the decoded JSON answer."""
        import urllib.error
        import urllib.request

        if self._token is None:
            self._token = _token(self.base_url, self.password)
        request = urllib.request.Request(
            f"{self.base_url}/api/v2{path}", method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
        for attempt in range(5):
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as exc:
                # SQLite allows one writer: a busy scheduler makes a write answer 500/503; try again
                if exc.code not in (500, 503) or attempt == 4:
                    raise
                time.sleep(2 * (attempt + 1))
            except TimeoutError:
                # the same lock can hold an answer past the timeout; a read or a PATCH (idempotent)
                # is asked again, a POST is not (it may have been done)
                if method == "POST" or attempt == 4:
                    raise
                time.sleep(2 * (attempt + 1))
        return None

    def wait_for_dags(self, dag_ids: set[str], timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed and stored the DAGs (backfills need them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if dag_ids <= {d["dag_id"] for d in self.api("GET", "/dags?limit=100")["dags"]}:
                return
            time.sleep(2)
        raise RuntimeError(f"DAGs {sorted(dag_ids)} not parsed within {timeout:.0f} s; see {self.log_file}")

    def backfill(self, dag_id: str, first: str, last: str, *options: str) -> subprocess.CompletedProcess:
        """`airflow backfill create`, with the DAG paused meanwhile (as README advises on SQLite).

        The embedded SQLite database has one writer at a time: while the scheduler starts the
        first runs, creating the remaining ones can fail with "database is locked". Runs of a
        paused DAG wait queued, so the DAG is paused while the runs are created, then unpaused.
        """
        self.api("PATCH", f"/dags/{dag_id}", {"is_paused": True})
        try:
            args = ("backfill", "create", "--dag-id", dag_id, "--from-date", first, "--to-date", last, *options)
            open_before = self._open_backfills(dag_id)
            for attempt in range(1, BACKFILL_ATTEMPTS):
                result = self.cli(*args)
                # Even paused, the other components write: SQLite can refuse a write at once (a
                # reader turning writer does not wait). Airflow commits the backfill before its
                # runs and removes it after a lock error only on PostgreSQL and MySQL
                # (`is_lock_not_available_error` does not know SQLite's "database is locked"),
                # so the failed attempt leaves an open backfill without runs that would refuse
                # the retry ("There can be only one running backfill per Dag") until the
                # scheduler closes it two minutes later. Cancel it through the REST API.
                if result.returncode == 0 or "database is locked" not in result.stderr:
                    return result
                for orphan in self._open_backfills(dag_id) - open_before:
                    self._cancel_backfill(orphan)
                time.sleep(3 * attempt)
            return self.cli(*args)
        finally:
            self.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})

    def _open_backfills(self, dag_id: str) -> set[int]:
        """Ids of the DAG's backfills the scheduler has not closed yet."""
        backfills = self.api("GET", f"/backfills?dag_id={dag_id}&limit=100")["backfills"]
        return {b["id"] for b in backfills if not b["completed_at"]}

    def _cancel_backfill(self, backfill_id: int) -> None:
        """Close a backfill through the REST API; one closed meanwhile (409) is what was wanted."""
        import urllib.error

        try:
            self.api("PUT", f"/backfills/{backfill_id}/cancel")
        except urllib.error.HTTPError as exc:
            if exc.code != 409:
                raise

    def wait_backfills_completed(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the scheduler has closed the DAG's backfills (one may run per DAG at a time;
        it is closed a scheduler loop after its last run finished)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._open_backfills(dag_id):
                return
            time.sleep(2)
        raise RuntimeError(f"a backfill of {dag_id} is still open after {timeout:.0f} s; see {self.log_file}")

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run an `airflow` CLI command against this instance's metadata database."""
        return subprocess.run([sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout)


DAG_IDS = {"crm_kpis_daily", "crm_kpis_monthly"}


def executor_workers(airflow: RunningAirflow) -> int:
    """The LocalExecutor's worker processes among the started components (their process title)."""
    import psutil

    group = os.getpgid(airflow.process.pid)
    count = 0
    for proc in psutil.process_iter(["cmdline"]):
        with suppress(psutil.Error, ProcessLookupError):
            if os.getpgid(proc.pid) == group and "LocalExecutor" in " ".join(proc.info["cmdline"] or ()):
                count += 1
    return count


def _check(airflow: RunningAirflow) -> list[str]:
    """Log in through the REST API and list the DAGs (what a person sees in the UI)."""
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(f"{airflow.base_url}/api/v2/dags", timeout=5)
        raise RuntimeError("the API answered without authentication")
    except urllib.error.HTTPError as exc:
        if exc.code != 401:
            raise
    # the dag-processor parses the files shortly after start; if they do not come, list what there is
    with suppress(RuntimeError):
        airflow.wait_for_dags(DAG_IDS, timeout=60)
    return sorted(d["dag_id"] for d in airflow.api("GET", "/dags?limit=100")["dags"])


def task_slots(cores: int | None = None) -> int:
    """How many tasks `make airflow` runs at once: twice the cores, at least four (a run's three area
    tasks and one more). Why: the LocalExecutor forks one worker process per slot when it starts,
    and Airflow's default of 32 forked 32 processes on a 2-core laptop; an area task waits on its
    databases about half of the time, so two per core keep the cores busy without queueing a run."""
    return max(4, 2 * (cores if cores is not None else (os.cpu_count() or 1)))


def standalone_env(port: int, schedule: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        # standalone starts its components as `airflow ...`: the project's environment comes first
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        # links in alerts (a task's log) point where this UI answers, not at a default port
        "AIRFLOW__API__BASE_URL": os.environ.get("AIRFLOW__API__BASE_URL", f"http://127.0.0.1:{port}"),
        # task logs show the rows read, excluded and written (the demo's console stays at WARNING)
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("CRM_KPIS_AIRFLOW_LOG_LEVEL", "INFO"),
        "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", str(task_slots())),
        **(extra or {}),
    }
    if not schedule:  # no scheduled DAG runs; backfills and manual runs still run
        env["AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE"] = "False"
    return env


#: What `airflow standalone` starts, minus its log servers. Airflow 3.3.2's worker and triggerer log
#: servers bind every interface (`host=""`, no setting: docs/airflow-gaps.md), so a laptop's
#: `make airflow` served task logs to its whole network. On one machine they are not needed: the API server reads the log
#: files where the tasks wrote them. The shell is the process group's leader; stopping the group
#: stops every component and the task processes they started.
COMPONENTS = """
trap 'kill 0' TERM INT
airflow scheduler --skip-serve-logs &
airflow dag-processor &
airflow triggerer --skip-serve-logs &
airflow api-server --host 127.0.0.1 --port "$AIRFLOW__API__PORT" &
wait
"""


@contextmanager
def standalone(port: int = 8080, schedule: bool = True, extra_env: dict[str, str] | None = None,
               timeout: float = 240) -> Iterator[RunningAirflow]:
    """Start Airflow's components (as `airflow standalone` does, without log servers) in their own
    process group, bound to 127.0.0.1; stop the whole group on exit."""
    home = configure()
    migrate()
    env = standalone_env(port, schedule, extra_env)
    log_file = home / "standalone.log"
    base = f"http://127.0.0.1:{port}"
    with open(log_file, "ab") as out:
        proc = subprocess.Popen(["bash", "-c", COMPONENTS], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        if not _wait_healthy(base, proc, timeout=timeout):
            raise RuntimeError(f"Airflow did not become healthy within {timeout:.0f} s; see {log_file}")
        yield RunningAirflow(base, _password(home), env, log_file, proc)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen, grace: float = 30) -> None:
    """Stop the whole process group: scheduler, api-server, workers, log servers.

    The standalone parent can exit while its children are still shutting down (and still
    listening), so this waits until no process of the group is left, killing stragglers after
    the grace period.
    """
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        proc.poll()  # reap the parent so that it does not linger as a zombie of the group
        if not _group_alive(proc.pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    proc.wait(timeout=10)
    while _group_alive(proc.pid) and time.monotonic() < deadline + 10:
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run_in_process(dag: Any, *, logical_date: Any, not_run_because: str = "", **test_kwargs: Any) -> Any:
    """One DAG run of the period starting at `logical_date`, in this process: `dag.test()`, as
    `airflow dags test` runs it (the demo and the tests run periods so).

    The run is Airflow's own, recorded by `dag.test()` and not touched afterwards (nothing here
    writes Airflow's metadata): a manual run triggered by a test, whose logical date and data
    interval are the period's. Airflow names it after its `run_after`: the time it ran by default
    (`manual__<time>`); the demo passes the period's start, so that its runs read
    `manual__2026-10-01T00:00:00+00:00` in the runs list. Each call is a new DAG run (Airflow
    replaces an earlier in-process run of the period); with the default `run_after` a `resend` in
    its conf sends again, as a newly triggered run does. Each task's log is written where a
    worker's would be, so the UI shows it (crm_kpis.tools.task_log_files); a task marked success
    without running (`mark_success_pattern`) gets one line saying so, `not_run_because` if given.

    In Airflow 3.3.2 `dag.test()` crashes when the run ends for any DAG with a Deadline Alert
    (`DagRun.update_state` looks the alerts up by id, and `dag.test()` hands it the serialized
    alerts: "'dict' object has no attribute 'hex'"). A deadline belongs to the scheduler's runs only
    (crm_kpis.orchestration.deadlines gives other runs none), so the in-process run drops it. What
    Airflow itself records for such a run, and what the scheduler does after it, is in
    docs/airflow-gaps.md.
    """
    from crm_kpis.orchestration.approval import IN_PROCESS_ENV
    from crm_kpis.tools.task_log_files import note_tasks_not_run, written_like_a_worker

    dag.deadline = None
    os.environ[IN_PROCESS_ENV] = "1"  # nobody can answer an approval request here (crm_kpis.orchestration.approval)
    try:
        with written_like_a_worker() as logs:  # the UI's log view reads them (crm_kpis.tools.task_log_files)
            dag_run = dag.test(logical_date=logical_date, **test_kwargs)
            if test_kwargs.get("mark_success_pattern"):
                note_tasks_not_run(logs, dag_run, not_run_because or
                                   f"marked success by mark_success_pattern {test_kwargs['mark_success_pattern']}")
            return dag_run
    finally:
        os.environ.pop(IN_PROCESS_ENV, None)


def serve_until_stopped(run: Callable[[], int]) -> int:
    """Run a started Airflow's command-line session: Ctrl-C or SIGTERM stops it cleanly (the context
    managers inside `run` stop every component), a start that fails says why; exit code of `run`."""
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))  # unwinds the context manager: a clean stop
    try:
        return run()
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        print("Airflow stopped.")


def main(argv: list[str] | None = None) -> int:
    """Start Airflow (scheduler, dag-processor, triggerer, API server on 127.0.0.1) with the project's DAGs and
    plugins; stop it and all its children on Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m crm_kpis.tools.local_airflow", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8080, help="UI and API port (default 8080)")
    parser.add_argument("--check", action="store_true", help="start, log in through the API, list the DAGs, stop")
    args = parser.parse_args(argv)
    print(f"starting Airflow (log: {configure() / 'standalone.log'}) ...", flush=True)

    def run() -> int:
        # a check looks, it does not run anything: no scheduled DAG runs
        with standalone(args.port, schedule=not args.check) as airflow:
            print(f"\nAirflow UI: {airflow.base_url}\nLogin: admin / {airflow.password}\n"
                  f"DAGs folder: {airflow.env['AIRFLOW__CORE__DAGS_FOLDER']}\n"
                  f"KPI history: {airflow.base_url}/plugin/kpi-history (Browse → KPI history)")
            print(f"Tasks at once: {airflow.env['AIRFLOW__CORE__PARALLELISM']} (AIRFLOW__CORE__PARALLELISM)")
            if args.check:
                dag_ids = _check(airflow)
                print(f"DAGs seen through the API: {', '.join(dag_ids) or 'none'}")
                print(f"LocalExecutor worker processes: {executor_workers(airflow)}")
                return 0 if set(dag_ids) >= DAG_IDS else 1
            print("Press Ctrl-C to stop.", flush=True)
            return airflow.process.wait() or 0

    return serve_until_stopped(run)


if __name__ == "__main__":
    sys.exit(main())
