"""The store under several replicas, in-process: recovery sweeps mark a dead replica's runs once (of replicas
sweeping at once, exactly one reports each run), running runs keep their heartbeat fresh, hand-off offsets
only move forward, and processes opening a fresh SQLite file at once all succeed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamhost.events import Update
from streamhost.host.config import StoreSettings
from streamhost.host.sinks import CollectingSink
from streamhost.host.sweeping import Sweeper
from streamhost.store import Journal, RunEnd, RunStart, migrate, new_id, open_store
from streamhost.store.connect import engines, resolve
from streamhost.store.database import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_STORE", raising=False)


@pytest.fixture
async def two(pg_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one PostgreSQL database, as two replicas have them."""
    first = await open_store(StoreSettings(url=pg_url))
    second = await open_store(StoreSettings(url=pg_url))
    yield first, second
    await first.close()
    await second.close()


async def _owned_elsewhere(url: str, run_ids: list[str], *, silent_for: float) -> None:
    """Make the runs belong to a replica on another machine whose last heartbeat was ``silent_for`` s ago."""
    from sqlalchemy import text

    writer, _ = engines(resolve(url))
    try:
        async with writer.begin() as conn:
            await conn.execute(text("UPDATE runs SET process = 'other-host:4242:1', heartbeat_at = :at "
                                    "WHERE id = ANY(:ids)"), {"at": time.time() - silent_for, "ids": run_ids})
    finally:
        await writer.dispose()


async def test_replicas_sweeping_at_once_report_each_dead_run_exactly_once(two, pg_url):
    dead = [new_id("run") for _ in range(20)]
    alive = new_id("run")
    for run_id in [*dead, alive]:
        await two[0].create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
    await _owned_elsewhere(pg_url, dead, silent_for=600)
    await _owned_elsewhere(pg_url, [alive], silent_for=1)
    heard: list[tuple[int, list[str]]] = []
    sweepers = [Sweeper(), Sweeper()]
    for n, sweeper in enumerate(sweepers):
        sweeper.listen(lambda _store, ids, n=n: heard.append((n, ids)))
    marked = await asyncio.gather(*(sweeper.sweep(store) for sweeper, store in zip(sweepers, two, strict=True)))
    assert sorted(marked[0] + marked[1]) == sorted(dead), "each dead run marked by exactly one replica"
    assert sorted(run_id for _, ids in heard for run_id in ids) == sorted(dead), "and reported once"
    assert (await two[1].run(alive)).status == "running"  # type: ignore[union-attr]
    assert {(await two[1].run(run_id)).status for run_id in dead} == {"interrupted"}  # type: ignore[union-attr]
    assert await two[0].recover() == [], "a second sweep finds nothing new"


async def test_a_serving_replica_sweeps_while_its_own_runs_keep_beating(pg_url, monkeypatch):
    # The journal beats every second (a quarter of it): only a stall of some 3 s could pass for death.
    monkeypatch.setenv("STREAMHOST_STALE_S", "4")
    store = await open_store(StoreSettings(url=pg_url))
    sweeper = Sweeper()
    heard: asyncio.Queue[list[str]] = asyncio.Queue()

    async def tell(_store: Store, ids: list[str]) -> None:
        await heard.put(ids)

    sweeper.listen(tell)
    sweeper.start(store)
    try:
        # A run of this replica, streaming for longer than the stale time: its heartbeats keep it alive.
        mine = new_id("run")
        journal = Journal(store, mine, interval_s=0.1, start=RunStart(id=mine, tool="generate", model="openai/a"))
        sink = journal.wrap(CollectingSink())
        dead = new_id("run")
        await store.create_run(RunStart(id=dead, tool="generate", model="openai/a"))
        await _owned_elsewhere(pg_url, [dead], silent_for=0)  # its replica dies now: silent from here on
        offset, started = 0, time.monotonic()
        while time.monotonic() - started < 6:
            await sink.send(Update("text", delta="x", offset=offset))
            offset += 1
            await asyncio.sleep(0.05)
        assert await asyncio.wait_for(heard.get(), 30) == [dead], "the sweep found the dead replica's run"
        assert (await store.run(mine)).status == "running", "a run that beats is never taken for dead"  # type: ignore[union-attr]
        await journal.finish(RunEnd("completed"))
        assert (await store.run(mine)).status == "completed"  # type: ignore[union-attr]
    finally:
        await sweeper.stop()
        await store.close()


async def test_a_listener_registered_after_the_opening_hears_what_the_opening_marked(pg_url):
    first = await open_store(StoreSettings(url=pg_url))
    left = new_id("run")
    await first.create_run(RunStart(id=left, tool="generate", model="openai/a"))
    await first.close()
    await _owned_elsewhere(pg_url, [left], silent_for=600)
    store = await open_store(StoreSettings(url=pg_url))
    try:
        assert store.recovered == [left]
        sweeper, heard = Sweeper(), asyncio.Event()
        sweeper.start(store)
        sweeper.listen(lambda _store, ids: heard.set() if ids == [left] else None)
        await asyncio.wait_for(heard.wait(), 10)
        await sweeper.stop()
    finally:
        await store.close()


async def test_the_hand_off_offset_only_moves_forward(two):
    run_id = new_id("run")
    assert not await two[0].hand_off(run_id, 5), "not recorded yet"
    await two[0].create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
    assert await two[0].given(run_id) == 0
    assert await two[0].hand_off(run_id, 40)
    assert await two[1].hand_off(run_id, 25)  # a slower replica's stale offset
    assert await two[1].given(run_id) == 40
    await two[0].append_text(run_id, 0, "a" * 10)
    await two[0].finish_run(run_id, RunEnd("completed"), text=[(10, "b" * 5)])
    record = await two[1].run(run_id)
    assert record is not None and record.chars == 15, "the end writes the real length over the hand-off offset"
    assert await two[0].given(run_id) is None, "an ended run has no offset: its record holds the whole text"
    assert await two[1].run_text(run_id, 8) == "aabbbbb"


OPENER = ("import asyncio, sys\n"
          "from streamhost.host.config import StoreSettings\n"
          "from streamhost.store import open_store\n"
          "async def main():\n"
          "    store = await open_store(StoreSettings(path=sys.argv[1]))\n"
          "    await store.close()\n"
          "asyncio.run(main())\n")


async def test_processes_opening_a_fresh_sqlite_file_at_once_all_work(tmp_path: Path):
    path = tmp_path / "fresh.db"

    def opener() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", OPENER, str(path)], capture_output=True, text=True, timeout=120)

    results = await asyncio.gather(*(asyncio.to_thread(opener) for _ in range(4)))
    assert [r.returncode for r in results] == [0] * 4, [r.stderr[-2000:] for r in results]
    writer, _ = engines(resolve(str(path)))
    try:
        async with writer.connect() as conn:
            assert await conn.run_sync(migrate.current) == migrate.HEAD
    finally:
        await writer.dispose()
