"""The server's collections: start-up frozen once (after the warm-up thread, at a moment no call runs), then full
collections between calls instead of the collector's own in the middle of a load."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import anyio
import pytest

from streamhost.host import garbage

pytestmark = pytest.mark.anyio


class Node:
    """An object in a reference cycle: only the cyclic collector frees it."""

    def __init__(self) -> None:
        self.me = self


async def test_the_freeze_waits_for_the_warm_up_and_for_no_call_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garbage, "POLL_S", 0.01)
    warming, calls_running = threading.Event(), [True]
    thread = threading.Thread(target=warming.wait, name=garbage.WARMUP_THREAD, daemon=True)
    thread.start()
    gc.unfreeze()
    collecting = asyncio.ensure_future(garbage.collect_between_calls(lambda: not calls_running[0]))
    try:
        await asyncio.sleep(0.2)
        assert gc.get_freeze_count() == 0, "frozen while the warm-up was running"
        warming.set()
        thread.join(30)
        await asyncio.sleep(0.2)
        assert gc.get_freeze_count() == 0, "frozen while a call was running"
        calls_running[0] = False
        with anyio.fail_after(30):
            while gc.get_freeze_count() == 0:
                await asyncio.sleep(0.01)
    finally:
        warming.set()
        collecting.cancel()
        gc.unfreeze()


async def test_full_collections_wait_for_an_idle_moment_and_the_collectors_own_come_back_after(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garbage, "POLL_S", 0.01)
    monkeypatch.setattr(garbage, "IDLE_FULL_S", 0.05)
    before = gc.get_threshold()
    calls_running = [False]
    collecting = asyncio.ensure_future(garbage.collect_between_calls(lambda: not calls_running[0]))
    try:
        with anyio.fail_after(30):
            while gc.get_freeze_count() == 0:
                await asyncio.sleep(0.01)
        assert gc.get_threshold()[2] > 10_000, "the collector's own full collections must be off"
        calls_running[0] = True
        node = Node()
        gone = weakref.ref(node)
        gc.collect(1)  # the cycle moves to the oldest generation while still in use...
        gc.collect(1)
        del node  # ...and becomes garbage there: only a full collection frees it
        for _ in range(3):
            gc.collect(1)
        await asyncio.sleep(0.3)
        assert gone() is not None, "a full collection ran while a call was running"
        calls_running[0] = False
        with anyio.fail_after(30):
            while gone() is not None:
                await asyncio.sleep(0.01)
    finally:
        collecting.cancel()
        await asyncio.sleep(0)
        gc.unfreeze()
    assert gc.get_threshold() == before
