"""Bearer tokens for the HTTP server, the token that owns a thread, and where a run's upstream can resume.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("checkpoint", sa.Text))
        batch.add_column(sa.Column("checkpoint_chars", sa.Integer))
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("owner_token", sa.String(255)))
    op.create_table(
        "tokens",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float),
        sa.Column("models", sa.Text),
        sa.Column("daily_usd", sa.Float),
        sa.Column("per_minute", sa.Integer),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("owner_token")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("checkpoint_chars")
        batch.drop_column("checkpoint")
