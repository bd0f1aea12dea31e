"""Alembic's environment for the warehouse, run only through crm_kpis.history.migrate.

Why no alembic.ini: the warehouse is an Airflow connection (`kpi_warehouse`), so the connection is
opened by the product and handed over in `config.attributes["connection"]`, already holding the
migration lock. `render_as_batch` lets a revision rename or retype a column on SQLite, which
cannot ALTER in place (Alembic copies the table).
"""

from alembic import context

from crm_kpis.history.migrate import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
