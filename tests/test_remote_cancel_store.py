"""Cancel requests through the store, piece by piece on a real SQLite store: a request is recorded only for a
running run, the owner's poller cancels exactly the calls asked for (once), and a requester whose owner never
acts answers that the request stands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from streamhost.events import Update
from streamhost.host import remote_cancels
from streamhost.host.config import Config, StoreSettings
from streamhost.host.handoff import LiveRuns
from streamhost.host.memory import Memory
from streamhost.host.remote_cancels import RemoteCancels, cancel_elsewhere
from streamhost.host.waiting import Waiting
from streamhost.store import RunEnd, RunStart, new_id, open_store
from streamhost.store.database import Store

pytestmark = pytest.mark.anyio


class _Statuses:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def send(self, update: Update) -> None:
        if update.status:
            self.lines.append(update.status)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_store(StoreSettings(path=str(tmp_path / "s.db")))
    yield opened
    await opened.close()


async def _running(store: Store) -> str:
    run_id = new_id("run")
    await store.create_run(RunStart(id=run_id, tool="generate", model="openai/slow"))
    return run_id


async def test_a_request_is_recorded_for_a_running_run_only(store: Store) -> None:
    running, ended = await _running(store), await _running(store)
    await store.finish_run(ended, RunEnd(status="completed"))
    assert await store.request_cancel(running)
    assert await store.request_cancel(running), "asking twice is still asking"
    assert not await store.request_cancel(ended), "an ended run is left as it ended"
    assert not await store.request_cancel("r_nosuchrun")
    assert await store.cancel_requests([running, ended, "r_nosuchrun"]) == [running]
    assert await store.cancel_requests([]) == []


async def test_the_poller_cancels_the_calls_asked_for_and_no_other(store: Store) -> None:
    asked, left = await _running(store), await _running(store)
    cancels = RemoteCancels(LiveRuns())
    calls = {run_id: asyncio.ensure_future(asyncio.sleep(60)) for run_id in (asked, left)}
    for run_id, call in calls.items():
        cancels.watch(run_id, call)
    assert await cancels.poll(store) == []
    await store.request_cancel(asked)
    assert await cancels.poll(store) == [asked]
    await asyncio.wait({calls[asked]}, timeout=30)
    assert calls[asked].cancelled()
    assert not calls[left].done()
    assert await cancels.poll(store) == [], "an ended call is no longer watched"
    calls[left].cancel()


async def test_a_request_nobody_acts_on_is_answered_as_standing(store: Store) -> None:
    run_id = await _running(store)
    statuses = _Statuses()
    assert not await cancel_elsewhere(store, run_id, statuses, follow_s=0.5)
    assert await store.cancel_requests([run_id]) == [run_id], "the request stands for when its owner reads it"
    assert any("another streamhost process" in line for line in statuses.lines), statuses.lines


async def test_a_requester_returns_once_the_run_ends(store: Store) -> None:
    run_id = await _running(store)

    async def owner() -> None:  # what the owning process does: sees the request, ends the run cancelled
        while not await store.cancel_requests([run_id]):
            await asyncio.sleep(0.05)
        await store.finish_run(run_id, RunEnd(status="cancelled"), text=[(0, "so far")])

    acting = asyncio.ensure_future(owner())
    assert await cancel_elsewhere(store, run_id, _Statuses(), follow_s=30)
    await acting
    record = await store.run(run_id)
    assert record is not None and record.status == "cancelled"
    assert await store.run_text(run_id) == "so far"


async def test_wait_cancel_of_a_run_whose_process_never_acts_says_the_request_stands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote_cancels, "FOLLOW_S", 0.5)
    memory = Memory(Config(store=StoreSettings(path=str(tmp_path / "s.db"))))
    try:
        store = await memory.require("test")
        run_id = await _running(store)  # recorded running, but no call of this process runs it
        await store.append_text(run_id, 0, "so far")
        answer = await Waiting(memory).wait(run_id, _Statuses(), cancel=True)
        assert answer.status == "running" and answer.run == run_id
        assert "cancel of run" in answer.text and "is recorded" in answer.text, answer.text
        assert await store.cancel_requests([run_id]) == [run_id]
    finally:
        await memory.aclose()
