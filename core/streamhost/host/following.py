"""Following a run that runs in another process (another replica, or a ``streamhost serve`` that handed it off and
is still going): its text comes from the journal in the database, polled at the journal's pace.

Where to start: every hand-off records in the store how much of the answer its caller has been given
(``Store.hand_off``), so the next ``wait``, in any process, streams exactly the rest. The journal lags the
stream by up to one batch (~0.5 s); what the hand-off gave but the journal has not written yet is simply not
sent again: the follower waits for text past the recorded offset. The run's end and its last text are written
in one transaction, and the follower reads the status before the text, so a run seen ended is read whole.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError
from ..events import Sink, Update
from ..services import Generation
from .sinks import fold_tail

if TYPE_CHECKING:
    from ..store.database import Store

POLL_S = 0.5
"""How often the journal is read: its write interval (new text cannot show up sooner)."""


async def follow_stored(store: Store, run_id: str, sink: Sink, *, handoff_s: float,
                        poll_s: float = POLL_S) -> Generation | None:
    """Stream run ``run_id``'s text past where its last caller left off into ``sink`` until the run ends (None:
    read its end from the store) or ``handoff_s`` passes (0: never); then the text given here, ``status="running"``,
    with the new offset recorded for the next ``wait``."""
    start = await store.given(run_id)
    if start is None:
        return None  # ended meanwhile: the result is the whole answer, with nothing streamed again
    text, end = "", start  # text: the journal so far (for the tail); end: what has been given so far
    deadline = time.monotonic() + handoff_s if handoff_s > 0 else float("inf")
    await sink.send(Update(kind="status", status=f"following run {run_id} (running in another streamhost process)"))
    while True:
        # Status first, then text: a run seen ended has all its text written (one transaction).
        status, new = await store.follow_step(run_id, len(text))
        if status is None:
            raise InvalidArgumentError(f"unknown run {run_id!r}")
        text += new
        if len(text) > end:  # the journal may not have reached what the last hand-off gave yet
            await sink.send(Update(kind="text", delta=text[end:], offset=end, tail=fold_tail(text)))
            end = len(text)
        if status != "running":
            return None  # sent live above; the result is read from the store whole, as for any ended run
        left = deadline - time.monotonic()
        if left <= 0:
            await store.hand_off(run_id, end)
            record = await store.run(run_id)
            return Generation(text=text[start:end], usage=None, ttft_ms=None, duration_ms=0.0,
                              model=record.model or "" if record else "", run=run_id,
                              thread=record.thread_id if record else None, status="running")
        await asyncio.sleep(min(poll_s, left))
