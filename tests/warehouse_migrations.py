"""What the warehouse migrations must do on every engine (used by the SQLite and server tests).

"The last release" is the warehouse as the release before migrations created it: every table of
`crm_kpis.history.store.metadata`, no version table. "The first release" is older: kpi_runs
without the columns added since, kpi_history without `note` and `coverage`, report_deliveries
without `variant`. Both hold rows, and both must arrive at the newest revision with their rows.
"""

from __future__ import annotations

from datetime import date, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, Float, inspect, select, text

from crm_kpis.history.migrate import VERSION_TABLE, current, head, upgrade
from crm_kpis.history.store import kpi_history, kpi_runs, metadata, report_deliveries

HISTORY_ROW = {"kpi_id": "sales.revenue", "grain": "monthly", "period_start": date(2026, 9, 1), "dimension": "",
               "member": "", "period_end": date(2026, 10, 1), "timezone": "UTC", "value": 1234.5,
               "numerator": None, "denominator": None, "run_id": "scheduled__2026-09",
               "computed_at": datetime(2026, 10, 1, 6, 0)}
RUN_ROW = {"grain": "monthly", "period_start": date(2026, 9, 1), "timezone": "UTC", "run_id": "scheduled__2026-09",
           "computed_at": datetime(2026, 10, 1, 6, 0), "kpis": 1, "values_written": 1,
           "rows_read": '{"sales": {"orders": 10}}', "rows_rejected": "{}"}
DELIVERY_ROW = {"report_id": "monthly_executive", "grain": "monthly", "period_start": date(2026, 9, 1),
                "run_id": "scheduled__2026-09", "transport": "smtp", "recipients": "ceo@example.com",
                "subject": "Monthly KPI report", "message_id": "<m@example.com>", "attachment_bytes": 100,
                "sent_at": datetime(2026, 10, 1, 6, 5)}


def _same_float(context, inspected, metadata_column, inspected_type, metadata_type) -> bool | None:
    """A double-precision float reads back as MariaDB's DOUBLE, which Alembic reports as a change of
    type; any other type is compared as Alembic does (None)."""
    return False if isinstance(inspected_type, Float) and isinstance(metadata_type, Float) else None


def differences(engine: Engine) -> list:
    """What Alembic's autogenerate finds between the migrated schema and the tables the code queries."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(
            connection, opts={"compare_type": _same_float, "version_table": VERSION_TABLE}), metadata)


#: columns later revisions added to tables of the last release before migrations (revision 0001)
ADDED_SINCE_0001 = {"kpi_runs": {"latest_sync_ts", "extremes"}, "kpi_history": {"definition_version"}}
#: tables later revisions created (0004: the catalogue in the warehouse)
CREATED_SINCE_0001 = {"kpi_catalogue", "kpi_targets"}


def _create_with(engine: Engine, table, columns) -> None:
    """`table` created with only the columns `columns(name)` keeps: a table of an earlier release."""
    old = table.to_metadata(type(metadata)())
    for column in [c for c in old.columns if not columns(c.name)]:
        old._columns.remove(column)
    old.create(engine)


def last_release(engine: Engine) -> None:
    """The tables as the release before migrations created them (the columns of revision 0001)."""
    for table in [t for t in metadata.sorted_tables if t.name not in CREATED_SINCE_0001]:
        _create_with(engine, table, lambda name, t=table.name: name not in ADDED_SINCE_0001.get(t, set()))
    with engine.begin() as connection:
        connection.execute(kpi_history.insert().values(**HISTORY_ROW, note=None, coverage=0.97))
        connection.execute(kpi_runs.insert().values(**RUN_ROW, warnings='["volume: low"]'))
        connection.execute(report_deliveries.insert().values(**DELIVERY_ROW, variant=""))


def first_release(engine: Engine) -> None:
    """The three tables as first released (their later columns missing), with a row each."""
    keep = {"kpi_history": set(HISTORY_ROW), "kpi_runs": set(RUN_ROW) | {"latest_source_ts"},
            "report_deliveries": set(DELIVERY_ROW) | {"id"}}
    for table in (kpi_history, kpi_runs, report_deliveries):
        _create_with(engine, table, lambda name, t=table.name: name in keep[t])
    with engine.begin() as connection:
        connection.execute(kpi_history.insert().values(**HISTORY_ROW))
        connection.execute(kpi_runs.insert().values(**RUN_ROW))
        connection.execute(report_deliveries.insert().values(**DELIVERY_ROW))


def assert_upgraded_with_rows_kept(engine: Engine, columns_added: bool) -> None:
    with engine.connect() as connection:
        assert current(connection) == head()
        history = connection.execute(select(kpi_history)).mappings().one()
        run = connection.execute(select(kpi_runs)).mappings().one()
        delivery = connection.execute(select(report_deliveries)).mappings().one()
        versions = connection.execute(text("SELECT COUNT(*) FROM kpi_schema_version")).scalar()
    assert versions == 1
    assert {k: history[k] for k in HISTORY_ROW} == HISTORY_ROW
    assert {k: run[k] for k in RUN_ROW} == RUN_ROW
    assert {k: delivery[k] for k in DELIVERY_ROW} == DELIVERY_ROW
    assert delivery["variant"] == ""  # the company-wide report, as the release that added it said
    if columns_added:  # added by the migration, empty
        assert history["note"] is None and history["coverage"] is None and run["warnings"] is None
    else:  # written by the last release, kept
        assert history["coverage"] == 0.97 and run["warnings"] == '["volume: low"]'
    assert differences(engine) == []
    assert upgrade(engine) == head()  # a second upgrade finds nothing to do


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())
