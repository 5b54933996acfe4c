"""Storage reports: one row per report, with scalar sizes for growth queries.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_reports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("total_bytes", sa.BigInteger),
        sa.Column("influxdb_bytes", sa.BigInteger),
        sa.Column("sql_bytes", sa.BigInteger),
        sa.Column("report", sa.Text, nullable=False),
    )
    op.create_index("ix_storage_reports_created_at", "storage_reports", ["created_at"])


def downgrade() -> None:
    op.drop_table("storage_reports")
