"""Backfill periods, not logical dates: `python -m crm_kpis.tools.backfill --months 2025-11..2026-10`.

Why: Airflow's `backfill create` selects runs by logical date, which is each period's start in the
report timezone. With a report timezone east of UTC that start is the evening before in UTC, so
`--from-date 2026-10-01` silently selects the wrong runs (the October daily dry run listed 30 days).
This command takes the periods an analyst means, computes their starts in the report timezone with
their UTC offset, and runs Airflow's own `backfill create` with them, in the same environment as
`make airflow`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from crm_kpis.config.settings import dag_id_for, load_settings
from crm_kpis.periods import ReportPeriod, logical_date


def parse_range(grain: str, text: str, tz: str) -> tuple[ReportPeriod, ReportPeriod]:
    """`2025-11..2026-10` (months) or `2026-10-01..2026-10-31` (days); one period alone is a range too."""
    first, _, last = text.partition("..")
    try:
        start, end = ReportPeriod.parse(grain, first.strip(), tz), ReportPeriod.parse(grain, (last or first).strip(), tz)
    except ValueError as exc:
        example = "2025-11..2026-10" if grain == "monthly" else "2026-10-01..2026-10-31"
        raise SystemExit(f"{text!r} is not a range of {grain} periods (e.g. {example}): {exc}") from None
    if end < start:
        raise SystemExit(f"{text!r}: the last period is before the first")
    return start, end


def count_periods(first: ReportPeriod, last: ReportPeriod) -> int:
    n, p = 1, first
    while p < last:
        p, n = p.shift(1), n + 1
    return n


def backfill_command(grain: str, first: ReportPeriod, last: ReportPeriod, *, dry_run: bool = False,
                     reprocess: str | None = None, deliver: str | None = None,
                     max_active_runs: int = 2) -> list[str]:
    command = [sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", dag_id_for(grain),
               "--from-date", logical_date(first), "--to-date", logical_date(last),
               "--max-active-runs", str(max_active_runs)]
    if reprocess:
        command += ["--reprocess-behavior", reprocess]
    if deliver:
        command += ["--dag-run-conf", json.dumps({"deliver": deliver})]
    if dry_run:
        command.append("--dry-run")
    return command


def airflow_cli(*args: str) -> subprocess.CompletedProcess:
    """Airflow's own CLI in this environment (the public interface to its metadata database)."""
    return subprocess.run([sys.executable, "-m", "airflow", *args], capture_output=True, text=True,
                          env=os.environ.copy())


def dag_paused(dag_id: str) -> bool | None:
    """Whether Airflow has the DAG paused (`airflow dags details`); None if it does not know the DAG
    (never parsed: `make airflow` has not run in this Airflow home)."""
    result = airflow_cli("dags", "details", dag_id, "--output", "json")
    start = result.stdout.find("[{")  # warnings may come before the JSON on the same stream
    if result.returncode != 0 or start < 0:
        return None
    details = json.loads(result.stdout[start:])[0]
    return str(details.get("is_paused")).lower() == "true"


def ready_to_run(dag_id: str, unpause: bool) -> str | None:
    """None when the backfill's runs can start; otherwise what stops them and the fix. A paused DAG's
    backfill runs are created and then wait queued for ever, with no error anywhere."""
    paused = dag_paused(dag_id)
    if paused is None:
        return (f"Airflow does not know the DAG {dag_id} yet: start `make airflow` once (it parses the DAGs), "
                "then run this again")
    if paused and not unpause:
        return (f"the DAG {dag_id} is paused: a backfill's runs would wait queued and never run. Unpause it "
                f"(the toggle in the UI, or `airflow dags unpause {dag_id}`), or run this again with --unpause "
                "(make backfill … ARGS=--unpause). Unpaused, the scheduler also runs its scheduled periods.")
    if paused:
        result = airflow_cli("dags", "unpause", dag_id)
        if result.returncode != 0:
            return f"could not unpause {dag_id}: {(result.stderr or result.stdout).strip().splitlines()[-1:]}"
        print(f"unpaused {dag_id}", flush=True)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.tools.backfill", description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--months", help="monthly periods, e.g. 2025-11..2026-10")
    which.add_argument("--days", help="daily periods, e.g. 2026-10-01..2026-10-31")
    parser.add_argument("--dry-run", action="store_true", help="list the runs Airflow would create")
    parser.add_argument("--reprocess", choices=["none", "failed", "completed"],
                        help="re-run periods that already ran (Airflow's --reprocess-behavior)")
    parser.add_argument("--deliver", choices=["auto", "yes", "no"], help="the runs' deliver param (default auto: no email)")
    parser.add_argument("--max-active-runs", type=int, default=2)
    parser.add_argument("--unpause", action="store_true", help="unpause the DAG if it is paused (else: refused)")
    args = parser.parse_args(argv)
    grain = "monthly" if args.months else "daily"
    tz = load_settings().timezone
    first, last = parse_range(grain, args.months or args.days, tz)
    command = backfill_command(grain, first, last, dry_run=args.dry_run, reprocess=args.reprocess,
                               deliver=args.deliver, max_active_runs=args.max_active_runs)
    print(f"{grain} {first.key} .. {last.key} ({count_periods(first, last)} periods, report timezone {tz}): "
          f"logical dates {logical_date(first)} .. {logical_date(last)}", flush=True)
    from crm_kpis.tools import local_airflow

    local_airflow.configure()
    dag_id = dag_id_for(grain)
    if not args.dry_run and (why := ready_to_run(dag_id, args.unpause)):
        print(f"not created: {why}", file=sys.stderr)
        return 2
    returncode = subprocess.run(command, env=os.environ.copy()).returncode
    if returncode == 0 and not args.dry_run:
        print(f"Follow it: the runs of type backfill in the UI (http://127.0.0.1:8080/dags/{dag_id}/runs with "
              f"`make airflow`'s default port), run by its scheduler (which must be running), {args.max_active_runs} "
              f"periods at a time; or `airflow dags list-runs {dag_id}`.", flush=True)
    return returncode


if __name__ == "__main__":
    sys.exit(main())
