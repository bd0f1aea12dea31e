"""kpi_runs.latest_sync_ts: how far the last sync of the sources that stamp their syncs got.

Revision ID: 0002
Revises: 0001

Why: the quality gate judges a source read through an adapter that stamps its syncs (Fivetran's
`_fivetran_synced`) by its last sync rather than by its newest business record; the run keeps that
stamp beside the newest record, so that the report and the history say what the gate judged by.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("kpi_runs", sa.Column("latest_sync_ts", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kpi_runs") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("latest_sync_ts")
