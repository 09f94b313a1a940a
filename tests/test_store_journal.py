"""The journal on a real SQLite file: text reaches the sink at once and the store in batches, a blocked
database never holds the stream up, 50 runs journal at once, a cancelled caller's run still ends, and a
process killed mid-run leaves an interrupted run with its text up to the last batch."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamhost.events import Update
from streamhost.host.config import StoreSettings
from streamhost.host.sinks import CollectingSink
from streamhost.store import Journal, RunEnd, RunStart, new_id, open_store
from streamhost.store.database import Store

pytestmark = pytest.mark.anyio
DEADLINE_S = 30


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_STORE", raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "streamhost.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=str(db)))
    yield opened
    await opened.close()


def words(n: int, start: int = 0) -> list[str]:
    return [f"w{i} " for i in range(start, start + n)]


async def stream(sink: object, pieces: list[str], *, pause: float = 0.0, offset: int = 0) -> int:
    for piece in pieces:
        await sink.send(Update("text", delta=piece, offset=offset))  # type: ignore[attr-defined]
        offset += len(piece)
        await asyncio.sleep(pause)
    return offset


async def until(condition: object, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not await condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        await asyncio.sleep(0.02)


async def new_run(store: Store) -> str:
    run_id = new_id("run")
    await store.create_run(RunStart(id=run_id, tool="generate", model="openai/x", prompt="p"))
    return run_id


async def test_updates_pass_unchanged_and_the_whole_text_is_journaled(store: Store) -> None:
    run_id = await new_run(store)
    journal = Journal(store, run_id, interval_s=0.05)
    inner = CollectingSink()
    sink = journal.wrap(inner)
    status = Update("status", status="waiting for openai/x (10 s)")
    await sink.send(status)
    end = await stream(sink, words(300), pause=0.001)
    await until(lambda: _chars_at_least(store, run_id, 1), "a batch journaled while the run streams")
    running = await store.run(run_id)
    assert running is not None and running.status == "running"
    await journal.finish(RunEnd("completed", duration_ms=1.0))

    assert inner.updates[0] is status and len(inner.updates) == 301
    assert await store.run_text(run_id) == "".join(words(300))
    done = await store.run(run_id)
    assert done is not None and done.status == "completed" and done.chars == end


async def _chars_at_least(store: Store, run_id: str, chars: int) -> bool:
    record = await store.run(run_id)
    return record is not None and record.chars >= chars


async def test_a_locked_database_never_holds_the_stream_up(store: Store, db: Path) -> None:
    run_id = await new_run(store)
    journal = Journal(store, run_id, interval_s=0.02)
    inner = CollectingSink()
    sink = journal.wrap(inner)
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process's long write: the journal's writes must wait
    try:
        await stream(sink, words(200), pause=0.002)
        # Every update reached the sink while the store could not take a single write.
        assert len(inner.updates) == 200
        assert await store.run_text(run_id) == ""
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    await journal.finish(RunEnd("completed"))
    assert await store.run_text(run_id) == "".join(words(200))


async def test_fifty_runs_journal_at_once_without_loss_or_lock_errors(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="streamhost.store")

    async def one(n: int) -> tuple[str, str]:
        run_id = await new_run(store)
        journal = Journal(store, run_id, interval_s=0.05)
        sink = journal.wrap(CollectingSink())
        pieces = [f"[{n}:{i}]" for i in range(150)]
        await stream(sink, pieces, pause=0.002 + n % 5 * 0.001)
        await journal.finish(RunEnd("completed"))
        return run_id, "".join(pieces)

    results = await asyncio.gather(*(one(n) for n in range(50)))
    for run_id, expected in results:
        assert await store.run_text(run_id) == expected
        record = await store.run(run_id)
        assert record is not None and record.status == "completed" and record.chars == len(expected)
    assert not [r.getMessage() for r in caplog.records], "the journal reported failed writes"


async def test_a_cancelled_caller_still_ends_its_run(store: Store) -> None:
    run_id = await new_run(store)
    journal = Journal(store, run_id, interval_s=10)  # nothing written before finish
    await stream(journal.wrap(CollectingSink()), words(50))
    finishing = asyncio.create_task(journal.finish(RunEnd("cancelled", error="cancelled by the client")))
    await asyncio.sleep(0)
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing

    async def ended() -> bool:
        record = await store.run(run_id)
        return record is not None and record.status == "cancelled"

    await until(ended, "the cancelled run recorded as cancelled")
    assert await store.run_text(run_id) == "".join(words(50))


async def test_a_silent_run_is_kept_alive_by_heartbeats(store: Store, db: Path) -> None:
    run_id = await new_run(store)
    journal = Journal(store, run_id, interval_s=0.02, heartbeat_s=0.05)
    journal.wrap(CollectingSink())  # waiting for a first token that does not come
    first = _heartbeat(db, run_id)

    async def beaten() -> bool:
        return _heartbeat(db, run_id) > first

    await until(beaten, "a heartbeat while no text comes")
    await journal.finish(RunEnd("failed", error="upstream timed out"))


def _heartbeat(db: Path, run_id: str) -> float:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT heartbeat_at FROM runs WHERE id = ?", (run_id,)).fetchone()[0]


async def test_open_marks_runs_of_dead_or_silent_owners_interrupted(store: Store, db: Path) -> None:
    alive, silent, dead = [await new_run(store) for _ in range(3)]
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET heartbeat_at = heartbeat_at - 600 WHERE id = ?", (silent,))
        # A process that has ended: a child that already exited, on this host.
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        owner = conn.execute("SELECT process FROM runs WHERE id = ?", (dead,)).fetchone()[0]
        host = owner.rsplit(":", 2)[0]
        conn.execute("UPDATE runs SET process = ? WHERE id = ?", (f"{host}:{gone.stdout.strip()}:1", dead))
    again = await open_store(StoreSettings(path=str(db)))
    try:
        statuses = {run_id: (await again.run(run_id)).status for run_id in (alive, silent, dead)}  # type: ignore[union-attr]
    finally:
        await again.close()
    assert statuses == {alive: "running", silent: "interrupted", dead: "interrupted"}


CHILD = textwrap.dedent("""
    import asyncio, sys
    from streamhost.events import Update
    from streamhost.host.config import StoreSettings
    from streamhost.host.sinks import CollectingSink
    from streamhost.store import Journal, RunStart, new_id, open_store

    async def main():
        store = await open_store(StoreSettings(path=sys.argv[1]))
        run_id = new_id("run")
        await store.create_run(RunStart(id=run_id, tool="generate", model="openai/x", prompt="long"))
        sink = Journal(store, run_id, interval_s=0.1).wrap(CollectingSink())
        print(run_id, flush=True)
        offset = 0
        for i in range(1_000_000):  # far longer than the test waits: it is killed mid-run
            piece = f"w{i} "
            await sink.send(Update("text", delta=piece, offset=offset))
            offset += len(piece)
            await asyncio.sleep(0.002)

    asyncio.run(main())
""")


async def test_a_killed_process_leaves_an_interrupted_run_with_its_text(tmp_path: Path, db: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True)
    try:
        run_id = (await asyncio.to_thread(child.stdout.readline)).strip()  # type: ignore[union-attr]
        assert run_id.startswith("r_"), "the child did not start its run"
        reader = sqlite3.connect(db)

        def journaled_chars() -> int:
            query = "SELECT MAX(pos + LENGTH(text)) FROM run_text WHERE run_id = ?"
            return reader.execute(query, (run_id,)).fetchone()[0] or 0

        async def journaled() -> bool:
            return journaled_chars() >= 2000

        await until(journaled, "2,000 characters journaled by the child")
        seen = journaled_chars()
        reader.close()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=DEADLINE_S)
    assert child.returncode == -signal.SIGKILL

    store = await open_store(StoreSettings(path=str(db)))
    try:
        record = await store.run(run_id)
        text = await store.run_text(run_id)
    finally:
        await store.close()
    assert record is not None and record.status == "interrupted" and record.ended_at is not None
    assert len(text) >= seen and len(text) == record.chars
    assert text == "".join(words(len(text)))[: len(text)]


async def test_a_journal_given_the_start_records_the_run_off_the_stream(store: Store) -> None:
    run_id = new_id("run")
    start = RunStart(id=run_id, tool="summarize_urls", model="openai/x", prompt="p")
    journal = Journal(store, run_id, interval_s=0.05, start=start)
    sink = journal.wrap(CollectingSink())
    await stream(sink, words(20))  # sent before the run may even be in the database

    async def recorded() -> bool:
        return await store.run(run_id) is not None

    await until(recorded, "the run recorded by the journal")
    await journal.finish(RunEnd("completed"))
    record = await store.run(run_id)
    assert record is not None and (record.tool, record.status) == ("summarize_urls", "completed")
    assert await store.run_text(run_id) == "".join(words(20))

    never_wrapped = new_id("run")
    await Journal(store, never_wrapped, start=RunStart(id=never_wrapped, tool="generate", model=None)).finish(
        RunEnd("failed", error="no such model"))
    failed = await store.run(never_wrapped)
    assert failed is not None and (failed.status, failed.error, failed.chars) == ("failed", "no such model", 0)
