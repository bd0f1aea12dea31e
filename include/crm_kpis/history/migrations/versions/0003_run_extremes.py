"""kpi_runs.extremes: the largest row of each watched magnitude column, per published period.

Revision ID: 0003
Revises: 0002

Why: the quality gate judges a period's largest order against the largest orders of the recent
periods (one order typed ten times its amount), so each run keeps its period's largest rows.
Periods published before this revision have none; the gate judges by those that do.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kpi_runs", sa.Column("extremes", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kpi_runs") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("extremes")
