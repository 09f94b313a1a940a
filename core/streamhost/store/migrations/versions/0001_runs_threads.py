"""Runs with their journaled text, and threads with their turns.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("thread_id", sa.String(32)),
        sa.Column("process", sa.String(255), nullable=False),
        sa.Column("started_at", sa.Float, nullable=False),
        sa.Column("heartbeat_at", sa.Float, nullable=False),
        sa.Column("ended_at", sa.Float),
        sa.Column("ttft_ms", sa.Float),
        sa.Column("duration_ms", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("chars", sa.Integer, nullable=False),
        sa.Column("prompt", sa.Text),
    )
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_table(
        "run_text",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("pos", sa.Integer, primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "threads",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("last_model", sa.String(255)),
        sa.Column("title", sa.String(255), nullable=False),
    )
    op.create_index("ix_threads_updated_at", "threads", ["updated_at"])
    op.create_table(
        "turns",
        sa.Column("thread_id", sa.String(32), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("model", sa.String(255)),
        sa.Column("run_id", sa.String(32)),
        sa.Column("at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    for table in ("turns", "threads", "run_text", "runs"):
        op.drop_table(table)
