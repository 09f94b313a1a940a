"""The server's one-time freeze of what start-up built: after the warm-up thread, at a moment no call runs."""

from __future__ import annotations

import asyncio
import gc
import threading

import anyio
import pytest

from streamhost.host import lag

pytestmark = pytest.mark.anyio


async def test_the_freeze_waits_for_the_warm_up_and_for_no_call_running(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lag, "FREEZE_POLL_S", 0.01)
    warming, calls_running = threading.Event(), [True]
    thread = threading.Thread(target=warming.wait, name=lag.WARMUP_THREAD, daemon=True)
    thread.start()
    gc.unfreeze()
    try:
        freezing = asyncio.ensure_future(lag.freeze_when_warm(lambda: not calls_running[0]))
        await asyncio.sleep(0.2)
        assert not freezing.done() and gc.get_freeze_count() == 0, "frozen while the warm-up was running"
        warming.set()
        thread.join(30)
        await asyncio.sleep(0.2)
        assert not freezing.done() and gc.get_freeze_count() == 0, "frozen while a call was running"
        calls_running[0] = False
        with anyio.fail_after(30):
            await freezing
        assert gc.get_freeze_count() > 0
    finally:
        warming.set()
        gc.unfreeze()
