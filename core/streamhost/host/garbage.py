"""When a server process collects its cyclic garbage: full collections between calls, not in the middle of a load.

A full collection stops the loop while it walks every object the collector tracks. Two steps keep it short and
out of the way. Once the warm-up thread has ended and no call runs, what start-up built (modules, classes, the
catalog: ~200k objects, 0.2-0.4 s a walk) is frozen out of the collector's sight. And the collector's own full
collections are off: under load they came every few seconds, walked the running calls' objects (0.1 s with 200
streams, measured with bench/http_load.py) and held up every text that arrived meanwhile, though they found next
to nothing (the calls' garbage is freed by reference counting or in the young generations). Instead a full
collection runs when the process is idle, or at least every ``FULL_EVERY_S`` under continuous load, so no garbage
cycle lives long.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable

WARMUP_THREAD = "streamhost-warmup"
"""The name of the engine's warm-up thread (``Engine.warm_in_background``)."""
POLL_S = 1.0
IDLE_FULL_S = 10.0
"""An idle process collects fully at most this often (and only when the young generations were collected since)."""
FULL_EVERY_S = 60.0
"""Under continuous load, a full collection still runs this often."""
_NO_AUTOMATIC_FULL = 1 << 30
"""A gen-2 threshold the collector never reaches (it counts gen-1 collections: a few per second)."""


async def collect_between_calls(idle: Callable[[], bool]) -> None:
    """Freeze what start-up built once the warm-up has ended and no call runs, then run the full collections
    ourselves. Run it as a task beside a server; cancelling it gives the collector its own schedule back.
    """
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, _NO_AUTOMATIC_FULL)
    try:
        while any(thread.name == WARMUP_THREAD for thread in threading.enumerate()) or not idle():
            await asyncio.sleep(POLL_S)
        gc.collect()  # what is garbage already is freed, not frozen
        gc.freeze()
        last = time.monotonic()
        while True:
            await asyncio.sleep(POLL_S)
            since = time.monotonic() - last
            if gc.get_count()[2] and (since >= FULL_EVERY_S or (since >= IDLE_FULL_S and idle())):
                gc.collect()
                last = time.monotonic()
    finally:
        gc.set_threshold(young, middle, full)
