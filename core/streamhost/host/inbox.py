"""Between a provider's stream and the relay: the task that reads the stream (:func:`pump`) and the inbox it fills.

The reader runs in a task of its own, so the relay wakes on its own timers (windows, heartbeats, the deadline)
while the upstream is silent, and a cancel closes the upstream however busy the relay is. One exception to "the
reader only queues": the stream's first text, read while the relay waits for it with nothing queued, is handed to
the relay's handler in the reader's task (:meth:`Inbox.take_first`). Waking the relay for it took a turn of the
loop, and under load a turn is tens of milliseconds (bench/http_load.py: the first text's p99 halved).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ..events import Checkpoint, TextDelta, close_stream

log = logging.getLogger("streamhost.relay")

END = object()
"""The stream ended."""
STOPPED = object()
"""The reader was cancelled from outside the call's task (``relay.stoppable_upstreams``)."""
_WAITED_S = 0.001
"""A read of the stream that took longer than this waited for the upstream (queued events come at once)."""


@dataclass
class Failure:
    """The stream raised ``error``."""

    error: BaseException


class Inbox:
    """Events from the producer to the relay: a deque and one waiter.

    Not a Queue with asyncio.wait_for: on 3.11 wait_for can swallow a cancellation that races with an
    item arriving, and it starts a task per wait. Here a wait is one future and one timer, and a wait
    that is not ``eager`` is woken only by an urgent item (anything but text) or its timer.
    """

    def __init__(self) -> None:
        self.items: deque[Any] = deque()
        self.waiter: asyncio.Future[bool] | None = None
        self.eager = True
        self.due = float("-inf")
        """Until when the relay holds text (an open window): reading the upstream sooner only wakes the reader."""
        self.first: Callable[[Any], Awaitable[None]] | None = None
        """What takes the stream's first text in the reader's own task while the relay waits for it (once)."""

    def take_first(self, event: Any) -> Callable[[Any], Awaitable[None]] | None:
        """The handler for ``event`` when it is the first text and the relay waits for it eagerly with nothing queued
        (so nothing the relay does can interleave with it but a timer's wake-up); None otherwise, and from then on.

        What the handler raises ends the reader as the stream's own failure would.
        """
        first = self.first
        if first is None or type(event) is not TextDelta or self.waiter is None or not self.eager or self.items:
            return None
        self.first = None
        return first

    def put(self, item: Any, urgent: bool = True) -> None:
        """Add an item; wake the relay if it waits eagerly or the item is urgent."""
        self.items.append(item)
        if self.waiter is not None and (urgent or self.eager):
            _wake(self.waiter, False)

    async def wait(self, timeout: float, eager: bool = True, due: float = float("-inf")) -> bool:
        """Return when an item wakes us (False) or ``timeout`` seconds have passed (True); a wait that is not
        ``eager`` holds text until ``due``.

        A cancellation always propagates.
        """
        loop = asyncio.get_running_loop()
        self.waiter = waiter = loop.create_future()
        self.eager = eager
        self.due = float("-inf") if eager else due
        timer = loop.call_later(timeout, _wake, waiter, True)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None


def _wake(waiter: asyncio.Future[bool], timed_out: bool) -> None:
    if not waiter.done():
        waiter.set_result(timed_out)


async def pump(open_stream: Callable[[], AsyncIterator[Any]], inbox: Inbox) -> None:
    """Move events into the inbox; always close the stream, so its HTTP request ends with it.

    While the loop runs late and the relay holds text in an open window, an event the stream had to wait for
    says nothing more is queued: the next read waits for the window's end, and what arrived meanwhile is read in
    one go, instead of a wake-up of this task (and of every layer of the stream) for each chunk. The first text
    is never held: while the relay waits for it, it goes out from this task (``Inbox.take_first``).
    """
    stream: AsyncIterator[Any] | None = None
    try:
        stream = open_stream()
        events = aiter(stream)
        while True:
            asked = time.monotonic()
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
            first = inbox.take_first(event)
            if first is not None:
                await first(event)
                continue
            # A checkpoint is not urgent either: it waits for the text it comes with.
            inbox.put(event, type(event) is not TextDelta and type(event) is not Checkpoint)
            now = time.monotonic()
            # Only after text: what follows usage or a status is mostly the stream's end, which is never held.
            if type(event) is TextDelta and inbox.due > now and now - asked > _WAITED_S:
                await asyncio.sleep(inbox.due - now - _WAITED_S)
        inbox.put(END)
    except asyncio.CancelledError:
        inbox.put(STOPPED)  # read only if the cancel came from outside (stoppable_upstreams)
        raise
    except Exception as exc:
        inbox.put(Failure(exc))
    finally:
        try:
            await close_stream(stream)
        except Exception as exc:  # closing must not hide the call's own outcome
            log.debug("closing the stream failed: %r", exc)
