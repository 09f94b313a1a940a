"""The read side of the stdio wire: messages the reader thread parsed, handed to the server in batches.

Under load the reader must not wait for the event loop. It once handed each message over and waited
for the loop to take it, and the server took one message per turn of the loop; with the loop busy
relaying 200 streams a request waited seconds to reach its handler, and a cancel was read only after
its call had run. Now the thread reads ahead and only queues, and the server takes every queued
message in one turn.

Tool calls wait behind everything else. The SDK still moves one message per turn of the loop from
this stream to its dispatcher, so under a burst of calls a ``tools/list``, a ``ping``, a cancel or a
client's answer to our own request would otherwise wait for every call read before it. Only tool
calls are put back, so the handshake (``initialize``, then ``notifications/initialized``) keeps its
order, and a cancel that overtakes its call is already marked (the call stops before it starts).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from types import TracebackType

import anyio
import mcp_types as types
from mcp.shared.message import SessionMessage

MAX_BACKLOG = 1024
"""Messages read but not yet taken by the server; past this the reader waits (a client cannot fill our memory)."""
BATCH = 64
"""Messages the server takes in one go before it lets other tasks run."""


class Inbound:
    """The messages the reader thread has read, for the server: the read stream ``Server.run`` takes.

    The thread appends and wakes the loop once per chunk it read; it waits only when ``MAX_BACKLOG``
    messages are queued. ``receive`` returns a queued message without a turn of the loop (an anyio
    memory stream checkpoints on every receive: one message per loop turn), yielding every ``BATCH``
    messages so a flood cannot hold the loop; a tool call only when nothing else is queued.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.items: deque[SessionMessage] = deque()
        self.calls: deque[SessionMessage] = deque()
        self.closed = False
        self.room = threading.Event()
        self.waiter: asyncio.Future[None] | None = None
        self.run = 0

    # ------------------------------------------------------------------ the reader thread's side

    def put(self, items: list[SessionMessage]) -> bool:
        """Queue ``items`` and wake the server; False once the session is over (called from the thread)."""
        while len(self.items) + len(self.calls) >= MAX_BACKLOG and not self.closed:
            self.room.clear()
            self.room.wait(0.1)  # a timeout: a close or a drain between the check and the clear is not lost
        if self.closed:
            return False
        for item in items:
            call = isinstance(item.message, types.JSONRPCRequest) and item.message.method == "tools/call"
            (self.calls if call else self.items).append(item)
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is gone
            return False
        return True

    # ------------------------------------------------------------------ the event loop's side

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def close(self) -> None:
        """No more messages: ``receive`` returns what is queued, then ends the stream."""
        self.closed = True
        self.room.set()
        self._wake()

    async def receive(self) -> SessionMessage:
        """The next message read; raises ``anyio.EndOfStream`` once closed and drained."""
        while True:
            if self.items or self.calls:
                self.run += 1
                if self.run >= BATCH:
                    self.run = 0
                    await anyio.lowlevel.checkpoint()
                    continue
                item = self.items.popleft() if self.items else self.calls.popleft()
                if len(self.items) + len(self.calls) < MAX_BACKLOG // 2:
                    self.room.set()
                return item
            if self.closed:
                raise anyio.EndOfStream
            self.run = 0
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    async def aclose(self) -> None:
        """The server is done reading."""
        self.close()

    def __aiter__(self) -> Inbound:
        return self

    async def __anext__(self) -> SessionMessage:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Inbound:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.close()
