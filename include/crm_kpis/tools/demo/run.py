"""Run the demo: the monthly DAG over a year of history and the daily DAG over the last days.

    python -m crm_kpis.tools.demo.run [--end-month YYYY-MM] [--months 13] [--days 2]

Each period is one real Airflow DAG run (`dag.test()`, in-process, no scheduler needed). The
earlier periods only compute and store history (their render and send tasks are marked done);
the last month and the last day also render the PDF and write the email, so the reports can
compare with the previous period and the same period a year earlier.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from datetime import UTC, date, datetime, timedelta

from crm_kpis.tools import local_airflow

HISTORY_ONLY = r"^edition\.(render_report|send_report)$"


def _without_font_subsetting_warning(record: logging.LogRecord) -> bool:
    """WeasyPrint warns per font and report when Debian's libharfbuzz-subset0 is missing: the PDF is
    right, only slower, and `make demo` already said so once (deploy/system-prereqs.sh)."""
    return "instead of HarfBuzz-Subset" not in record.getMessage()


def _months(end_month: date, count: int) -> list[date]:
    out = []
    year, month = end_month.year, end_month.month
    for _ in range(count):
        out.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_kpis.tools.demo.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--end-month", help="last month to report, YYYY-MM (default: the last complete month)")
    parser.add_argument("--months", type=int, default=13, help="monthly runs, ending with --end-month (default 13)")
    parser.add_argument("--days", type=int, default=2, help="daily runs, the last days of --end-month (default 2)")
    args = parser.parse_args(argv)
    # dag.test() runs tasks through Airflow's in-process test client, which warns that httpx with
    # starlette.testclient is deprecated: Airflow's business, not something a demo user can act on
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient` is deprecated")
    logging.getLogger("weasyprint").addFilter(_without_font_subsetting_warning)

    local_airflow.configure()
    local_airflow.migrate()
    import pendulum
    from airflow.dag_processing.dagbag import DagBag

    from crm_kpis.config.settings import load_settings
    from crm_kpis.delivery.reports_store import reports_root
    from crm_kpis.paths import outbox_dir, var_dir
    from crm_kpis.tools.demo.generator import default_end_month, next_month

    end_month = date.fromisoformat(f"{args.end_month}-01") if args.end_month else default_end_month(date.today())
    tz = load_settings().timezone
    bag = DagBag()
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1
    monthly, daily = bag.get_dag("crm_kpis_monthly"), bag.get_dag("crm_kpis_daily")

    def run(dag, logical: date, history_only: bool) -> None:
        started = time.perf_counter()
        # logical date = the period's start, as the scheduler's run for that period has it; Airflow
        # names an in-process run after its run_after, so the runs list says which period it computed
        start = pendulum.datetime(logical.year, logical.month, logical.day, tz=tz)
        dag_run = local_airflow.run_in_process(
            dag, logical_date=start, run_after=start,
            mark_success_pattern=HISTORY_ONLY if history_only else None,
            not_run_because="marked success by the demo: it stores every period's history and renders and "
                            "sends only the last period's report (python -m crm_kpis.tools.demo.run)",
        )
        print(f"  {dag.dag_id} {dag_run.data_interval_start:%Y-%m-%d} .. {dag_run.data_interval_end:%Y-%m-%d} "
              f"(logical date {dag_run.logical_date:%Y-%m-%d}): {dag_run.state} "
              f"({time.perf_counter() - started:.1f} s)", flush=True)
        if str(dag_run.state) not in ("success", "DagRunState.SUCCESS"):
            raise SystemExit(f"{dag.dag_id} failed for {logical}: see the task logs under {var_dir() / 'airflow'}")

    months = _months(end_month, args.months)
    print(f"monthly runs {months[0]:%Y-%m} .. {months[-1]:%Y-%m}:", flush=True)
    for i, month in enumerate(months):
        run(monthly, month, history_only=i < len(months) - 1)
    last_day = next_month(end_month) - timedelta(days=1)
    days = [last_day - timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    print(f"daily runs {days[0]} .. {days[-1]}:", flush=True)
    for i, day in enumerate(days):
        run(daily, day, history_only=i < len(days) - 1)

    print("\nOutputs:")
    for pdf in sorted(reports_root().glob("*/*.pdf"), key=str):
        print(f"  report  {pdf.path}")
    for eml in sorted(outbox_dir().glob("*.eml")):
        print(f"  {'alert' if eml.name.startswith('kpi_alert.') else 'email':<7} {eml}")
    print(f"  history {var_dir() / 'data' / 'warehouse.db'} (table kpi_history)")
    print(f"  logs    {var_dir() / 'airflow' / 'logs'}")
    print(f"finished {datetime.now(UTC):%H:%M:%S} UTC")
    return 0


if __name__ == "__main__":
    sys.exit(main())
