"""SQLite's per-call writes on their own thread (store/sqlite_writer.py), on a real file: batches of run starts
and ends with different columns, all or nothing, a clear error, and the same rows the SQLAlchemy path writes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import bindparam, update

from streamhost.host.config import StoreSettings
from streamhost.store import FileRecord, RunEnd, RunStart, StoreError, new_id, open_store, runs, schema
from streamhost.store.database import Store
from streamhost.store.sqlite_writer import SQLiteWriter

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=str(tmp_path / "streamhost.db")))
    yield opened
    await opened.close()


def _row(db: Path, run_id: str) -> sqlite3.Row:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()


async def test_ends_with_different_columns_in_one_transaction(store: Store, tmp_path: Path) -> None:
    """A batch of ends where some set the model or a checkpoint and one takes its length from the journal."""
    starts = [RunStart(id=new_id("run"), tool="generate", model="openai/a", prompt=f"p{i}",
                       files=[FileRecord(f"/f{i}", i, "ab" * 32)] if i % 2 else [])
              for i in range(4)]
    # Calls that start and end at the same moment: one transaction for each burst (the store's group commit).
    await asyncio.gather(*(store.create_run(start) for start in starts))
    ids = [start.id for start in starts]
    await asyncio.gather(
        store.finish_run(ids[0], RunEnd("completed", ttft_ms=1.5, chars=3), text=[(0, "abc")]),
        store.finish_run(ids[1], RunEnd("failed", error="boom", model="openai/b", chars=0), checkpoint=("state-1", 0)),
        store.finish_run(ids[2], RunEnd("completed", cost_usd=0.25, chars=None), text=[(0, "hello"), (5, " world")]),
        store.finish_run(ids[3], RunEnd("cancelled", chars=7)),
    )
    db = tmp_path / "streamhost.db"
    first, second, third, fourth = (_row(db, run_id) for run_id in ids)
    assert (first["status"], first["ttft_ms"], first["chars"], first["model"]) == ("completed", 1.5, 3, "openai/a")
    assert (second["status"], second["error"], second["model"]) == ("failed", "boom", "openai/b")
    assert (second["checkpoint"], second["checkpoint_chars"]) == ("state-1", 0)
    assert (third["chars"], third["cost_usd"]) == (11, 0.25)  # where its journal ends
    assert (fourth["status"], fourth["chars"], fourth["checkpoint"]) == ("cancelled", 7, None)
    assert await store.run_text(ids[2]) == "hello world"
    record = await store.run(ids[1])
    assert record is not None and record.files == [FileRecord("/f1", 1, "ab" * 32)] and record.prompt == "p1"


async def test_a_failing_statement_leaves_nothing_of_its_transaction(tmp_path: Path) -> None:
    store = await open_store(StoreSettings(path=str(tmp_path / "streamhost.db")))
    await store.close()  # the tables exist; the writer alone from here
    writer = SQLiteWriter(tmp_path / "streamhost.db", "the test store")
    try:
        taken = RunStart(id=new_id("run"), tool="generate", model=None)
        await writer.write(runs.start_steps([taken], 1.0, keep_text=True))
        fresh = RunStart(id=new_id("run"), tool="generate", model=None)
        with pytest.raises(StoreError, match=r"Cannot write to the test store \(UNIQUE constraint failed: runs\.id\)"):
            await writer.write(runs.start_steps([fresh], 2.0, keep_text=True) + runs.start_steps([taken], 2.0,
                                                                                                 keep_text=True))
        assert _row(tmp_path / "streamhost.db", fresh.id) is None  # rolled back with the duplicate
        # The connection is usable again after the failure.
        await writer.write(runs.start_steps([fresh], 3.0, keep_text=True))
        assert _row(tmp_path / "streamhost.db", fresh.id)["started_at"] == 3.0
    finally:
        await writer.close()


async def test_values_a_statement_binds_itself_are_kept(tmp_path: Path) -> None:
    """A statement with a literal of its own (``status = 'running'``) next to the rows' parameters."""
    store = await open_store(StoreSettings(path=str(tmp_path / "streamhost.db")))
    starts = [RunStart(id=new_id("run"), tool="generate", model=None) for _ in range(2)]
    for one in starts:
        await store.create_run(one)
    await store.finish_run(starts[1].id, RunEnd("completed", chars=0))
    await store.close()
    r = schema.runs
    beat = update(r).where(r.c.id == bindparam("run_id_"), r.c.status == "running")
    writer = SQLiteWriter(tmp_path / "streamhost.db", "the test store")
    try:
        await writer.write([(beat, [{"run_id_": start.id, "heartbeat_at": 99.0} for start in starts])])
    finally:
        await writer.close()
    assert _row(tmp_path / "streamhost.db", starts[0].id)["heartbeat_at"] == 99.0
    assert _row(tmp_path / "streamhost.db", starts[1].id)["heartbeat_at"] != 99.0  # ended: not running

