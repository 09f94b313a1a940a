"""The write side of the stdio wire: what the server sends, encoded at once and written by a daemon thread.

A blocking write in a thread never blocks the loop when the client reads slowly. The server's ``send``
neither waits for the write nor for another task: with the anyio memory stream (no buffer) and a
writer task that this replaced, every notification and answer waited for two more turns of the loop
and for the write of the batch before it, which under load put a whole loop turn on every first text.
``send`` waits only while ``MAX_PENDING`` bytes are queued (a client that stopped reading).

What one turn of the loop sends goes to the thread in one piece, at the start of the next turn: a
wake-up of the thread per message made it take the GIL from the loop a thousand times a second, and
the loop waited for it each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from mcp.shared.message import SessionMessage

log = logging.getLogger("streamhost.wire")

MAX_PENDING = 4 << 20
"""Bytes queued for the client before ``send`` waits for it to read."""
_BATCH = 256
_DRAINED = object()


class Outbound:
    """The write stream ``Server.run`` takes.

    :param encode: one message as ``(line, request id)``; None to drop it. The id is of the request
        a notification relates to: such a line is still dropped when that request's cancel is read
        before the line is handed to the writer.
    :param cancelled: whether the client cancelled a request.
    :param on_written: called once, on the loop, after the first line reached the client.
    :param on_broken: called on the loop with the reason when the client closed our end.
    """

    def __init__(self, fd: int, encode: Callable[[SessionMessage], tuple[bytes, Any] | None],
                 cancelled: Callable[[Any], bool], on_written: Callable[[], None] | None,
                 on_broken: Callable[[str], None]) -> None:
        self.fd = fd
        self.encode = encode
        self.cancelled = cancelled
        self.on_written = on_written
        self.on_broken = on_broken
        self.loop = asyncio.get_running_loop()
        self.jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.lines: list[tuple[bytes, Any]] = []  # this turn's, not yet handed to the thread
        self.queued = 0  # bytes handed to the thread, counted on the loop
        self.written = 0  # bytes written, counted by the thread (each side writes only its own counter)
        self.room: asyncio.Future[None] | None = None
        self.broken = False
        self.closed = False
        threading.Thread(target=self._run, name="streamhost-wire-out", daemon=True).start()

    async def send(self, item: SessionMessage) -> None:
        """Queue one message for the client (dropped once the client has gone or the stream is closed)."""
        self.send_nowait(item)
        if self.queued - self.written > MAX_PENDING and not self.broken:
            self.room = self.loop.create_future()
            try:
                if self.queued - self.written > MAX_PENDING and not self.broken:  # the thread may have caught up
                    await self.room
            finally:
                self.room = None

    def send_nowait(self, item: SessionMessage) -> None:
        """Queue one message without waiting, however much is queued (for the wire's own refusals)."""
        if self.broken or self.closed:
            return
        encoded = self.encode(item)
        if encoded is None:
            return
        if not self.lines:
            self.loop.call_soon(self._hand_over)
        self.lines.append(encoded)

    def _hand_over(self) -> None:
        lines, self.lines = self.lines, []
        data = b"".join(line for line, key in lines if key is None or not self.cancelled(key))
        if data and not self.broken:
            self.queued += len(data)
            self.jobs.put(data)

    async def drained(self) -> None:
        """Return once everything queued so far was written (or the client has gone)."""
        self._hand_over()
        done = self.loop.create_future()
        self.jobs.put((_DRAINED, done))
        await done

    async def aclose(self) -> None:
        """The server has nothing more to send."""
        self.closed = True

    async def __aenter__(self) -> Outbound:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.closed = True

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            batch = [self.jobs.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(self.jobs.get_nowait())
                except queue.Empty:
                    break
            data = b"".join(job for job in batch if type(job) is bytes)
            if data and not self.broken:
                self._write(data)
            self.written += len(data)
            room = self.room  # read after ``written`` was updated: ``send`` checks in the other order
            try:
                if room is not None and (self.broken or self.queued - self.written <= MAX_PENDING // 2):
                    self.loop.call_soon_threadsafe(_settle, room)
                for job in batch:
                    if type(job) is tuple:
                        self.loop.call_soon_threadsafe(_settle, job[1])
            except RuntimeError:  # the loop is gone: nobody waits any more
                return

    def _write(self, data: bytes) -> None:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]
        except OSError as exc:
            self.broken = True
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.on_broken, f"the client closed stdout ({exc.strerror or exc})")
            return
        if self.on_written is not None:
            self.on_written, written = None, self.on_written
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(written)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
