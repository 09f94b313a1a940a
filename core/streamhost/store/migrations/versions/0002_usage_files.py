"""Usage and cost per run, the caller's token, the files sent as context, and runs listed by time.

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
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("input_tokens", sa.Integer))
        batch.add_column(sa.Column("output_tokens", sa.Integer))
        # Runs recorded before this revision had no usage at all, so none of it was estimated.
        batch.add_column(sa.Column("usage_estimated", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("cost_usd", sa.Float))
        batch.add_column(sa.Column("owner_token", sa.String(255)))
    op.create_index("ix_runs_started_at", "runs", ["started_at"])
    op.create_table(
        "run_files",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_files")
    op.drop_index("ix_runs_started_at", "runs")
    with op.batch_alter_table("runs") as batch:
        for column in ("owner_token", "cost_usd", "usage_estimated", "output_tokens", "input_tokens"):
            batch.drop_column(column)
