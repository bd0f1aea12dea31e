"""The warehouse as the last release before migrations left it, from any earlier state.

Revision ID: 0001
Revises: (none)

Why idempotent, unlike a usual first revision: warehouses written before migrations have no
version table, and may predate some columns (the hand-kept `ADDED_COLUMNS` list of that release).
This revision creates each table that is missing and adds each column that is missing, so that
every such warehouse, and a new one, arrives at the same schema; later revisions are ordinary.
The definitions are frozen here on purpose: a revision never reads the live table definitions.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

DOUBLE = sa.Float(precision=53)


def _tables() -> dict[str, list[sa.Column]]:
    return {
        "kpi_history": [
            sa.Column("kpi_id", sa.String(80), primary_key=True),
            sa.Column("grain", sa.String(10), primary_key=True),
            sa.Column("period_start", sa.Date, primary_key=True),
            sa.Column("dimension", sa.String(40), primary_key=True),
            sa.Column("member", sa.String(120), primary_key=True),
            sa.Column("period_end", sa.Date, nullable=False),
            sa.Column("timezone", sa.String(64), nullable=False),
            sa.Column("value", DOUBLE),
            sa.Column("numerator", DOUBLE),
            sa.Column("denominator", DOUBLE),
            sa.Column("run_id", sa.String(250), nullable=False),
            sa.Column("computed_at", sa.DateTime, nullable=False),
            sa.Column("note", sa.Text),
            sa.Column("coverage", DOUBLE),
        ],
        "kpi_staging": [
            sa.Column("run_id", sa.String(250), primary_key=True),
            sa.Column("area", sa.String(20), primary_key=True),
            sa.Column("grain", sa.String(10), nullable=False),
            sa.Column("period_start", sa.Date, nullable=False),
            sa.Column("payload", sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb"), nullable=False),
            sa.Column("staged_at", sa.DateTime, nullable=False),
        ],
        "kpi_runs": [
            sa.Column("grain", sa.String(10), primary_key=True),
            sa.Column("period_start", sa.Date, primary_key=True),
            sa.Column("timezone", sa.String(64), nullable=False),
            sa.Column("run_id", sa.String(250), nullable=False),
            sa.Column("computed_at", sa.DateTime, nullable=False),
            sa.Column("kpis", sa.Integer, nullable=False),
            sa.Column("values_written", sa.Integer, nullable=False),
            sa.Column("rows_read", sa.Text, nullable=False),
            sa.Column("rows_rejected", sa.Text, nullable=False),
            sa.Column("latest_source_ts", sa.DateTime),
            sa.Column("warnings", sa.Text),
            sa.Column("rows_excluded", sa.Text),
            sa.Column("unreadable", sa.Text),
            sa.Column("not_tracked", sa.Text),
            sa.Column("models", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")),
        ],
        "report_deliveries": [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("report_id", sa.String(80), nullable=False),
            sa.Column("variant", sa.String(120), nullable=False, server_default=""),
            sa.Column("grain", sa.String(10), nullable=False),
            sa.Column("period_start", sa.Date, nullable=False),
            sa.Column("run_id", sa.String(250), nullable=False),
            sa.Column("transport", sa.String(10), nullable=False),
            sa.Column("recipients", sa.Text, nullable=False),
            sa.Column("subject", sa.Text, nullable=False),
            sa.Column("message_id", sa.String(250), nullable=False),
            sa.Column("attachment_bytes", sa.Integer, nullable=False),
            sa.Column("sent_at", sa.DateTime, nullable=False),
        ],
        "delivery_intents": [
            sa.Column("report_id", sa.String(80), primary_key=True),
            sa.Column("grain", sa.String(10), primary_key=True),
            sa.Column("period_start", sa.Date, primary_key=True),
            sa.Column("variant", sa.String(120), primary_key=True),
            sa.Column("attempt", sa.Integer, primary_key=True),
            sa.Column("recipient", sa.String(320), primary_key=True),
            sa.Column("channel", sa.String(20), nullable=False),
            sa.Column("message_id", sa.String(250), nullable=False),
            sa.Column("state", sa.String(12), nullable=False),
            sa.Column("detail", sa.Text),
            sa.Column("claim", sa.String(64)),
            sa.Column("transport", sa.String(10)),
            sa.Column("created_by", sa.String(250), nullable=False),
            sa.Column("run_id", sa.String(250), nullable=False),
            sa.Column("updated_at", sa.DateTime, nullable=False),
        ],
    }


#: Columns a warehouse of an earlier release may lack: added where missing (nullable, or with a default).
ADDED_LATER = {
    "kpi_history": ("note", "coverage"),
    "kpi_runs": ("warnings", "rows_excluded", "unreadable", "not_tracked", "models"),
    "report_deliveries": ("variant",),
}
INDEXES = {
    "ix_kpi_history_period": ("kpi_history", ["grain", "period_start"]),
    "ix_report_deliveries_period": ("report_deliveries", ["report_id", "period_start"]),
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    existing = set(inspector.get_table_names())
    for name, columns in _tables().items():
        if name not in existing:
            op.create_table(name, *columns)
            continue
        present = {c["name"] for c in inspector.get_columns(name)}
        missing = [c for c in columns if c.name in ADDED_LATER.get(name, ()) and c.name not in present]
        unknown = [c.name for c in columns if c.name not in present and c.name not in ADDED_LATER.get(name, ())]
        if unknown:
            raise RuntimeError(f"the warehouse table {name} lacks {', '.join(unknown)}, which every release "
                               "created: it is not this product's table (point kpi_warehouse at another database)")
        for column in missing:
            op.add_column(name, column)  # nullable or defaulted: no rewrite of the rows
    for index, (table, columns) in INDEXES.items():
        if index not in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes(table)}:
            op.create_index(index, table, columns)


def downgrade() -> None:
    for index, (table, _) in INDEXES.items():
        op.drop_index(index, table_name=table)
    for name in reversed(list(_tables())):
        op.drop_table(name)
