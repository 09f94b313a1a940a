"""SQLite's writes of every call, each transaction in one trip to a thread: a run's record, its journal, its end.

Through SQLAlchemy's asyncio layer over aiosqlite, every statement is three trips to aiosqlite's thread (cursor,
execute, close) and every transaction two more (BEGIN, COMMIT); each trip wakes the event loop and switches a
greenlet. A call's run record and its end took 17 of them and ~5.7 ms of the server's CPU, a third of what a whole
``generate`` call costs it. Here one transaction is one function run on this writer's own thread and sqlite3
connection: the SQL is compiled once per statement and set of columns, from the same SQLAlchemy statements the
PostgreSQL path executes (``runs.py``). The store's other writes (threads, tokens, pruning: rare) still go through
SQLAlchemy; both paths take the store's one write lock, so neither waits on the other's file lock.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from streamhost.store.connect import set_up_sqlite
from streamhost.store.records import StoreError
from streamhost.store.runs import Step


class SQLiteWriter:
    """One connection to a SQLite file, on a thread of its own; :meth:`write` runs a transaction there."""

    def __init__(self, path: Path, label: str) -> None:
        self._path = path
        self._label = label
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="streamhost-sqlite")
        self._connection: sqlite3.Connection | None = None  # opened on the thread, used only there
        self._sql: dict[tuple[Any, tuple[str, ...]], tuple[str, dict[str, Any]]] = {}
        self.commits = 0
        """Transactions committed so far (what group commit saves shows here)."""

    async def write(self, steps: Sequence[Step]) -> None:
        """Run the steps in one transaction (``BEGIN IMMEDIATE`` … ``COMMIT``); all or nothing."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, steps)

    async def close(self) -> None:
        """Close the connection and end the thread (after a write under way)."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)

    # -- on the writer's thread -----------------------------------------------------------------------------

    def _transaction(self, steps: Sequence[Step]) -> None:
        try:
            connection = self._connect()
            connection.execute("BEGIN IMMEDIATE")  # never a read lock to upgrade: busy_timeout waits out writers
            try:
                for statement, rows in steps:
                    self._run(connection, statement, rows)
                connection.execute("COMMIT")
                self.commits += 1
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"Cannot write to {self._label} ({exc}).") from None

    def _run(self, connection: sqlite3.Connection, statement: Any, rows: list[dict[str, Any]]) -> None:
        for keys, same in itertools.groupby(rows, key=tuple):  # rows with the same keys share one executemany
            sql, constants = self._compiled(statement, keys)
            group = [{**constants, **row} for row in same]
            if len(group) == 1:
                connection.execute(sql, group[0])
            else:
                connection.executemany(sql, group)

    def _compiled(self, statement: Any, keys: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        """The SQL of ``statement`` setting the columns ``keys`` names, and the values it binds itself."""
        found = self._sql.get((statement, keys))
        if found is None:
            from sqlalchemy.dialects import sqlite

            compiled = statement.compile(dialect=sqlite.dialect(paramstyle="named"), column_keys=list(keys))
            constants = {name: value for name, value in compiled.params.items() if name not in keys}
            found = self._sql[statement, keys] = (str(compiled), constants)
        return found

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            connection = sqlite3.connect(self._path)
            set_up_sqlite(connection)  # as the store's SQLAlchemy engines do
            self._connection = connection
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
