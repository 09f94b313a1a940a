"""Group commit of run records: a burst of runs recorded at once shares transactions, and one bad record (a
duplicate id) fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import event

from streamhost.host.config import StoreSettings
from streamhost.store import RunStart, new_id, open_store
from streamhost.store.batching import GroupCommit
from streamhost.store.database import Store

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STREAMHOST_STORE", raising=False)


def commits_from_now(store: Store) -> Callable[[], int]:
    """The transactions the store commits from now on, on either path it writes by: SQLAlchemy's engine, and on
    SQLite the writer thread that takes a call's own writes (a run's record, its journal, its end)."""
    counted: list[int] = []
    event.listen(store._writer.sync_engine, "commit", lambda _conn: counted.append(1))
    writer = store._sqlite
    before = writer.commits if writer is not None else 0
    return lambda: len(counted) + (writer.commits - before if writer is not None else 0)


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
async def test_a_burst_of_runs_is_recorded_in_a_few_transactions(where: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    settings = StoreSettings(path=str(tmp_path / "s.db")) if where == "sqlite" else StoreSettings(
        url=request.getfixturevalue("pg_url"))
    store = await open_store(settings)
    commits = commits_from_now(store)
    ids = [new_id("run") for _ in range(200)]
    try:
        await asyncio.gather(*(store.create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
                               for run_id in ids))
        assert commits() <= 10, f"{commits()} transactions for 200 run records"
        recorded = await asyncio.gather(*(store.run(run_id) for run_id in ids))
        assert all(record is not None and record.status == "running" for record in recorded)
    finally:
        await store.close()


async def test_a_duplicate_fails_only_its_own_caller(tmp_path: Path) -> None:
    store = await open_store(StoreSettings(path=str(tmp_path / "s.db")))
    taken = new_id("run")
    await store.create_run(RunStart(id=taken, tool="generate", model="openai/a"))
    others = [new_id("run") for _ in range(5)]
    try:
        outcomes = await asyncio.gather(*(store.create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
                                          for run_id in [others[0], taken, *others[1:]]), return_exceptions=True)
        assert [isinstance(outcome, Exception) for outcome in outcomes] == [False, True, False, False, False, False]
        assert None not in [await store.run(run_id) for run_id in others]
    finally:
        await store.close()


async def test_a_cancelled_writer_leaves_the_others_an_error_not_a_hang() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    written: list[list[int]] = []

    async def write(items: list[int]) -> None:
        written.append(items)
        started.set()
        await release.wait()

    batcher: GroupCommit[int] = GroupCommit(write)
    first = asyncio.ensure_future(batcher.submit(1))
    await started.wait()
    queued = [asyncio.ensure_future(batcher.submit(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    release.set()
    await first
    await asyncio.gather(*queued)
    assert written == [[1], [2, 3]], "items submitted during a write go together in the next"

    started.clear()
    release.clear()
    head = asyncio.ensure_future(batcher.submit(4))
    await started.wait()
    tail = asyncio.ensure_future(batcher.submit(5))
    await asyncio.sleep(0)
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    release.set()
    await asyncio.wait_for(tail, 5)  # written by the next batch: the cancelled write did not take it along
    assert written[-1] == [5]


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
async def test_hand_offs_at_once_share_a_statement_and_each_learns_its_own_outcome(
        where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from streamhost.store import RunEnd

    settings = StoreSettings(path=str(tmp_path / "s.db")) if where == "sqlite" else StoreSettings(
        url=request.getfixturevalue("pg_url"))
    store = await open_store(settings)
    ids = [new_id("run") for _ in range(100)]
    try:
        for run_id in ids:
            await store.create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
        ended = ids[-1]
        await store.finish_run(ended, RunEnd(status="completed", chars=3))
        commits = commits_from_now(store)
        # Each running run handed off twice at once (the higher offset stays), plus an ended and an unknown run.
        offsets = [(run_id, n) for n, run_id in enumerate(ids[:-1])] + [(run_id, n + 5) for n, run_id in
                                                                          enumerate(ids[:-1])]
        offsets += [(ended, 50), ("r_unknown", 7)]
        outcomes = await asyncio.gather(*(store.hand_off(run_id, offset) for run_id, offset in offsets))
        assert outcomes == [True] * (len(offsets) - 2) + [False, False]
        assert commits() <= 10, f"{commits()} transactions for {len(offsets)} hand-offs"
        assert [await store.given(run_id) for run_id in ids[:3]] == [5, 6, 7]
        assert await store.given(ended) is None
        assert await store.hand_off(ids[0], 1) and await store.given(ids[0]) == 5, "an offset never moves back"
    finally:
        await store.close()


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
async def test_runs_ending_at_once_share_a_transaction_with_their_last_text(
        where: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    from streamhost.store import RunEnd

    settings = StoreSettings(path=str(tmp_path / "s.db")) if where == "sqlite" else StoreSettings(
        url=request.getfixturevalue("pg_url"))
    store = await open_store(settings)
    ids = [new_id("run") for _ in range(100)]
    try:
        await asyncio.gather(*(store.create_run(RunStart(id=run_id, tool="generate", model="openai/a"))
                               for run_id in ids))
        await asyncio.gather(*(store.append_text(run_id, 0, f"{run_id} ") for run_id in ids))
        commits = commits_from_now(store)
        await asyncio.gather(*(store.finish_run(run_id, RunEnd(status="completed" if n % 2 else "failed",
                                                               error=None if n % 2 else "boom"),
                                                text=[(len(run_id) + 1, "end")])
                               for n, run_id in enumerate(ids)))
        assert commits() <= 10, f"{commits()} transactions for 100 runs ending"
        for n, run_id in enumerate(ids[:4]):
            record = await store.run(run_id)
            assert record is not None and record.status == ("completed" if n % 2 else "failed")
            assert record.error == (None if n % 2 else "boom")
            assert await store.run_text(run_id) == f"{run_id} end" and record.chars == len(f"{run_id} end")
    finally:
        await store.close()
