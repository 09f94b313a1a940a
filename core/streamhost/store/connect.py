"""Where the store lives and how to reach it: a SQLite file (the default) or a PostgreSQL URL.

SQLite gets two engines: one writer connection whose transactions start with ``BEGIN IMMEDIATE`` (so a
write never has to upgrade a read lock, the case ``busy_timeout`` cannot wait out and reports as
``database is locked``) and a small pool of readers (WAL lets them read while the writer writes).
PostgreSQL gets two pools too, though its writers do not block one another: the store's writes (a run's record,
its hand-off, its end) never queue for a connection behind the reads that followers poll, and the readers run in
autocommit (no BEGIN and ROLLBACK round trips around a poll). A pooled connection is checked only when it sat idle
for a while (a server restarted meanwhile), not on every checkout: that check costs three round trips on asyncpg.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from streamhost.store.records import StoreError

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another process's write to end before giving up."""

POSTGRES_WRITERS = 10
"""PostgreSQL connections per process for writes. No overflow: at a burst (hundreds of runs recorded or handed off
at once) a write waits a few ms for a pooled connection rather than open one (tens of ms) to close it after."""
POSTGRES_READERS = 10
"""The same for reads (followers' polls, history, wait)."""
IDLE_CHECK_S = 10.0
"""A pooled PostgreSQL connection idle this long is checked before use (the server may have restarted)."""

_POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}


@dataclass(frozen=True)
class Target:
    """A resolved store location: the SQLAlchemy URL, the SQLite file (None for a server) and a safe label."""

    url: URL
    path: Path | None
    label: str


def default_path() -> Path:
    """``streamhost.db`` in the platform's user data directory."""
    import platformdirs

    return Path(platformdirs.user_data_dir("streamhost")) / "streamhost.db"


def resolve(location: str | None) -> Target:
    """Turn ``[store] path``/``url``/``$STREAMHOST_STORE`` (a path or URL; None: the default file) into a target."""
    if not location:
        path = default_path()
    elif "://" not in location:
        path = Path(location).expanduser().resolve()
    else:
        try:
            url = make_url(location)
        except ArgumentError as exc:
            raise StoreError(f"The store URL is not valid ({exc}): check [store] url or STREAMHOST_STORE.") from None
        label = url.render_as_string(hide_password=True)
        if url.drivername in _POSTGRES_SCHEMES:
            driver = "postgresql+psycopg" if url.drivername == "postgresql+psycopg" else "postgresql+asyncpg"
            return Target(url.set(drivername=driver), None, label)
        if url.drivername not in ("sqlite", "sqlite+aiosqlite"):
            raise StoreError(f"The store URL {label} names a database streamhost does not support: use a SQLite "
                             "path, sqlite:///PATH or postgresql://USER:PASSWORD@HOST/DB.")
        if not url.database or url.database == ":memory:":
            raise StoreError(f"The store URL {label} names no file: an in-memory SQLite database would forget "
                             "everything at exit; give a path (sqlite:///PATH).")
        path = Path(url.database).expanduser().resolve()
    return Target(URL.create("sqlite+aiosqlite", database=str(path)), path, str(path))


def create_file(path: Path) -> None:
    """Create the SQLite file user-only (0600), and its directory 0700 when it does not exist yet."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    except OSError as exc:
        raise StoreError(f"Cannot create the store {path} ({exc.strerror}): set [store] path or STREAMHOST_STORE "
                         "to a writable place, or [store] enabled = false.") from None


def set_up_sqlite(connection: Any) -> None:
    """What every connection to the SQLite store sets first (the engines' and ``sqlite_writer``'s): a sqlite3
    connection, or aiosqlite's adapter of one."""
    # Transactions are ours to begin (``BEGIN IMMEDIATE`` for writes), not the sqlite3 module's, which would begin
    # them deferred.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    # In WAL mode NORMAL loses nothing when the process dies (kill -9), only on a power cut.
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.close()


def _sqlite_engine(url: URL, *, begin: str | None, pool_size: int) -> AsyncEngine:
    # No rollback round trip when a connection returns to the pool: the writer always ends its transactions
    # itself (``engine.begin()``), and a reader never opens one (below).
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, pool_reset_on_return=None)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        set_up_sqlite(dbapi_connection)

    if begin is not None:
        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

    return engine


def engines(target: Target) -> tuple[AsyncEngine, AsyncEngine]:
    """The (writer, reader) engines for ``target``; the same engine twice for PostgreSQL."""
    if target.path is not None:
        # Readers run each query on its own, in autocommit (every store read is one statement, and SQLite reads
        # one statement from one snapshot): no BEGIN and ROLLBACK around it, each a trip to aiosqlite's thread
        # that costs more than a small query itself.
        return (_sqlite_engine(target.url, begin="BEGIN IMMEDIATE", pool_size=1),
                _sqlite_engine(target.url, begin=None, pool_size=4))
    try:
        writer = _postgres_engine(target.url, POSTGRES_WRITERS)
        reader = _postgres_engine(target.url, POSTGRES_READERS, isolation_level="AUTOCOMMIT")
    except ModuleNotFoundError as exc:
        raise StoreError(f"The store {target.label} needs the PostgreSQL driver {exc.name}: "
                         "pip install 'streamhost[postgres]'.") from None
    return writer, reader


def _postgres_engine(url: URL, pool_size: int, **options: Any) -> AsyncEngine:
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0, **options)

    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        # Checked only after a pause (pool_pre_ping would check every checkout, a busy server's hundreds a
        # second); a connection that fails is replaced by the pool, the caller never sees it.
        if time.monotonic() - record.info.get("idle_since", float("inf")) < IDLE_CHECK_S:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection is gone ({exc})") from exc

    return engine
