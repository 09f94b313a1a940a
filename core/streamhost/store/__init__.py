"""The store: runs (journaled while they stream), threads and usage, in SQLite by default or PostgreSQL.

Importing this package is cheap: the records and the journal need no database library. SQLAlchemy,
aiosqlite and Alembic are imported by ``open_store`` on first use, never at the host's start-up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamhost.store.journal import Journal
from streamhost.store.records import (
    FileRecord,
    RunEnd,
    RunRecord,
    RunStart,
    StoreError,
    ThreadSummary,
    Turn,
    UsageRow,
    new_id,
)

if TYPE_CHECKING:
    from streamhost.host.config import StoreSettings
    from streamhost.store.database import Store

__all__ = [
    "FileRecord",
    "Journal",
    "RunEnd",
    "RunRecord",
    "RunStart",
    "StoreError",
    "ThreadSummary",
    "Turn",
    "UsageRow",
    "new_id",
    "open_store",
    "preload",
]


async def open_store(settings: StoreSettings) -> Store:
    """Open the store ``settings`` names: created, migrated, dead runs marked interrupted, old runs pruned."""
    from streamhost.store import database

    return await database.open_store(settings)


def preload() -> None:
    """Import the database libraries now (~0.7 s), e.g. in the host's warm-up thread, so the first ``open_store``
    does not pay for them. Open the store itself on the loop that will use it: its connections belong to one loop.
    """
    import importlib

    for module in ("streamhost.store.database", "sqlalchemy.dialects.sqlite.aiosqlite", "aiosqlite"):
        importlib.import_module(module)
