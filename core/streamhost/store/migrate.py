"""Schema migrations: bring a database to the newest revision (or a given one), once, even with racing openers.

Alembic runs on a connection that is already in a transaction holding the migration lock: on SQLite the
writer's ``BEGIN IMMEDIATE`` (a second process opening at the same time waits on the file lock, then finds
the schema at head and does nothing), on PostgreSQL a transaction-scoped advisory lock (several replicas
starting at once migrate one after the other). DDL is transactional on both, so a failed upgrade leaves the
old schema as it was. A database already at ``HEAD`` is recognised without importing Alembic (~0.4 s).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from streamhost.store.records import StoreError

SCRIPTS = Path(__file__).resolve().parent / "migrations"
HEAD = "0004"
"""The newest revision under ``migrations/versions`` (a test checks they agree)."""
_PG_LOCK = 0x73747265616D  # "stream" in ASCII: the advisory-lock key every streamhost replica agrees on


def current(connection: Connection) -> str | None:
    """The revision the database is at (None: a new, empty database)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
    at = current(connection)
    if at == (HEAD if revision == "head" else revision):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        raise StoreError(f"The store is at schema revision {at}, which this streamhost does not know ({exc}): "
                         "it was written by a newer streamhost. Upgrade streamhost, or point [store] path "
                         "elsewhere.") from None


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision`` in one transaction under the migration lock."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, revision)
