"""The tables as the store's queries see them: the schema at the newest migration.

The migrations under ``migrations/versions`` create and change these tables and never import this module
(a migration is a record of one step, not of today's schema); ``tests/test_store_migrations.py`` checks
that upgrading to the newest revision gives exactly these tables and columns.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("tool", String(64), nullable=False),
    Column("model", String(255)),
    Column("status", String(16), nullable=False),
    Column("thread_id", String(32)),
    Column("process", String(255), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("ttft_ms", Float),
    Column("duration_ms", Float),
    Column("error", Text),
    Column("chars", Integer, nullable=False),
    Column("prompt", Text),
    # revision 0002
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("usage_estimated", Boolean, nullable=False),
    Column("cost_usd", Float),
    Column("owner_token", String(255)),
    # revision 0003: where the upstream can resume this run (the provider's opaque checkpoint), and how much
    # of the run's text that checkpoint covers
    Column("checkpoint", Text),
    Column("checkpoint_chars", Integer),
    # revision 0004: when a process that does not run it asked this run to stop (its owner polls for these)
    Column("cancel_requested_at", Float),
    Index("ix_runs_started_at", "started_at"),
    Index("ix_runs_status", "status"),
)

run_text = Table(
    "run_text",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("pos", Integer, primary_key=True),
    Column("text", Text, nullable=False),
)

run_files = Table(  # revision 0002
    "run_files",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
)

threads = Table(
    "threads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("last_model", String(255)),
    Column("title", String(255), nullable=False),
    Column("owner_token", String(255)),  # revision 0003
    Index("ix_threads_updated_at", "updated_at"),
)

turns = Table(
    "turns",
    metadata,
    Column("thread_id", String(32), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("model", String(255)),
    Column("run_id", String(32)),
    Column("at", Float, nullable=False),
)

tokens = Table(  # revision 0003: who may call the HTTP server; only a digest of each token is kept
    "tokens",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("digest", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("models", Text),  # JSON list of model patterns; NULL: every model
    Column("daily_usd", Float),
    Column("per_minute", Integer),
)
