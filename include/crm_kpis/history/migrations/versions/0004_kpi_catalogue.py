"""kpi_catalogue, kpi_targets and kpi_history.definition_version: the catalogue in the warehouse.

Revision ID: 0004
Revises: 0003

Why: analysts join the history to names, units, directions and targets from a BI tool or a
notebook, which cannot read the Python and YAML those live in. The publish task keeps both tables
in step with the code and the reports configuration. Each history row keeps the version of the
definition that computed it, so a changed formula shows as a version change, not a silent break
in a series; rows published before this revision have none.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DOUBLE = sa.Float(precision=53)


def upgrade() -> None:
    op.create_table(
        "kpi_catalogue",
        sa.Column("kpi_id", sa.String(80), primary_key=True),
        sa.Column("grain", sa.String(10), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("area", sa.String(20), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("direction", sa.String(10)),
        sa.Column("flow", sa.Boolean, nullable=False),
        sa.Column("breakdowns", sa.String(200), nullable=False),
        sa.Column("formula", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("target", DOUBLE),
        sa.Column("at_risk", DOUBLE),
        sa.Column("definition_version", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "kpi_targets",
        sa.Column("kpi_id", sa.String(80), primary_key=True),
        sa.Column("grain", sa.String(10), primary_key=True),
        sa.Column("dimension", sa.String(40), primary_key=True),
        sa.Column("member", sa.String(120), primary_key=True),
        sa.Column("target", DOUBLE, nullable=False),
        sa.Column("at_risk", DOUBLE),
        sa.Column("updated_at", sa.DateTime, nullable=False),
    )
    op.add_column("kpi_history", sa.Column("definition_version", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kpi_history") as batch:  # SQLite drops a column by copying the table
        batch.drop_column("definition_version")
    op.drop_table("kpi_targets")
    op.drop_table("kpi_catalogue")
