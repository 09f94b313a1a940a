"""The store on a real PostgreSQL server (``tests/pg_server.py``: skipped, with the reason, without one).

Each test gets a database of its own on the one server.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from streamhost.events import Update
from streamhost.host.config import StoreSettings
from streamhost.host.sinks import CollectingSink
from streamhost.store import Journal, RunEnd, RunStart, Turn, migrate, new_id, open_store
from streamhost.store.connect import engines, resolve
from streamhost.store.database import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_STORE", raising=False)


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(url=pg_url))
    yield opened
    await opened.close()


async def test_runs_threads_and_usage_on_postgresql(store: Store) -> None:
    assert ":***@" in store.location and "not-needed" not in store.location
    run_id = new_id("run")
    journal = Journal(store, run_id, interval_s=0.02, start=RunStart(
        id=run_id, tool="generate", model="openai/a", thread_id="t_pg", prompt="q", owner_token="alice"))
    sink = journal.wrap(CollectingSink())
    offset = 0
    for i in range(100):
        await sink.send(Update("text", delta=f"w{i} ", offset=offset))
        offset += len(f"w{i} ")
        await asyncio.sleep(0.001)
    # Duplicate chunks, sent at once so they share one group commit, change nothing.
    await asyncio.gather(*(store.append_text(run_id, 0, chunk) for chunk in ("w0 ", "w0 w1 ", "w0")))
    await journal.finish(RunEnd("completed", input_tokens=10, output_tokens=100, cost_usd=0.25))
    record = await store.run(run_id)
    assert record is not None and (record.status, record.chars, record.owner_token) == ("completed", offset, "alice")
    assert await store.run_text(run_id) == "".join(f"w{i} " for i in range(100))

    await store.append_turns("t_pg", [Turn("user", "q"), Turn("assistant", "a", model="openai/a", run_id=run_id)])
    await store.append_turns("t_pg", [Turn("user", "q2"), Turn("assistant", "b", model="litellm/b")])
    summary = await store.thread("t_pg")
    assert summary is not None and (summary.turns, summary.last_model, summary.title) == (4, "litellm/b", "q")
    assert [turn.content for turn in await store.turns("t_pg")] == ["q", "a", "q2", "b"]

    (row,) = await store.usage(since=None, by="token")
    assert (row.key, row.runs, row.input_tokens, row.output_tokens, row.cost_usd) == ("alice", 1, 10, 100, 0.25)
    assert await store.cost_since(0) == 0.25
    assert [r.id for r in await store.runs(model="openai/a")] == [run_id]
    assert await store.delete_thread("t_pg") and await store.prune(1e-9) == 1


async def test_fifty_runs_journal_at_once_on_postgresql(store: Store) -> None:
    async def one(n: int) -> tuple[str, str]:
        run_id = new_id("run")
        journal = Journal(store, run_id, interval_s=0.05,
                          start=RunStart(id=run_id, tool="generate", model="openai/a"))
        sink = journal.wrap(CollectingSink())
        pieces, offset = [f"[{n}:{i}]" for i in range(100)], 0
        for piece in pieces:
            await sink.send(Update("text", delta=piece, offset=offset))
            offset += len(piece)
            await asyncio.sleep(0.002)
        await journal.finish(RunEnd("completed"))
        return run_id, "".join(pieces)

    for run_id, expected in await asyncio.gather(*(one(n) for n in range(50))):
        assert await store.run_text(run_id) == expected


OPENER = ("import asyncio, sys\n"
          "from streamhost.host.config import StoreSettings\n"
          "from streamhost.store import open_store\n"
          "async def main():\n"
          "    store = await open_store(StoreSettings(url=sys.argv[1]))\n"
          "    await store.close()\n"
          "asyncio.run(main())\n")


async def test_replicas_starting_at_once_migrate_once(pg_url: str) -> None:
    def opener() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", OPENER, pg_url], capture_output=True, text=True, timeout=120)

    results = await asyncio.gather(*(asyncio.to_thread(opener) for _ in range(3)))
    assert [r.returncode for r in results] == [0] * 3, [r.stderr[-2000:] for r in results]
    writer, _ = engines(resolve(pg_url))
    try:
        async with writer.connect() as conn:
            assert await conn.run_sync(migrate.current) == migrate.HEAD
    finally:
        await writer.dispose()


async def test_an_old_store_upgrades_on_postgresql(pg_url: str) -> None:
    from sqlalchemy import text

    writer, _ = engines(resolve(pg_url))
    try:
        await migrate.upgrade(writer, "0001")
        async with writer.begin() as conn:
            await conn.execute(text(
                "INSERT INTO runs (id, tool, model, status, thread_id, process, started_at, heartbeat_at, chars, "
                "prompt) VALUES ('r_old', 'generate', 'openai/a', 'completed', NULL, 'h:1:1', :now, :now, 3, 'p')"),
                {"now": time.time()})
            await conn.execute(text("INSERT INTO run_text (run_id, pos, text) VALUES ('r_old', 0, 'old')"))
    finally:
        await writer.dispose()
    store = await open_store(StoreSettings(url=pg_url))
    try:
        record = await store.run("r_old")
        assert record is not None and (record.status, record.usage_estimated, record.files) == ("completed", False, [])
        assert await store.run_text("r_old") == "old"
    finally:
        await store.close()


async def test_a_dead_replicas_runs_are_interrupted_by_a_survivor(store: Store, pg_url: str) -> None:
    from sqlalchemy import text

    silent, busy = new_id("run"), new_id("run")
    for run_id in (silent, busy):
        await store.create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
    writer, _ = engines(resolve(pg_url))
    try:
        async with writer.begin() as conn:  # both owned by a replica on another machine; one stopped beating
            await conn.execute(text("UPDATE runs SET process = 'other-host:4242:1'"))
            await conn.execute(text("UPDATE runs SET heartbeat_at = heartbeat_at - 600 WHERE id = :id"), {"id": silent})
    finally:
        await writer.dispose()
    survivor = await open_store(StoreSettings(url=pg_url))
    try:
        assert (await survivor.run(silent)).status == "interrupted"  # type: ignore[union-attr]
        assert (await survivor.run(busy)).status == "running"  # type: ignore[union-attr]
    finally:
        await survivor.close()
