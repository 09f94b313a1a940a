"""The MCP stdio transport: JSON lines in on one fd, JSON lines out on another, both edges ours.

Why not the SDK's ``stdio_server``: a message it cannot parse gets no answer at all, one string it
cannot encode (a lone UTF-16 surrogate) stops its writer for good, its blocking reads in anyio worker
threads keep the process alive after a signal, and it writes a progress notification for a request
the client has already cancelled. Here a daemon thread reads and parses, every request whose id can
be read gets an answer, the writer repairs what it cannot encode, and cancels act at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import select
import stat
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.message import ServerMessageMetadata, SessionMessage

from .calls import Calls
from .framing import Refusal, encode, parse

log = logging.getLogger("streamhost.wire")

FLUSH_S = 2.0
"""How long a stop waits for answers already made to reach a client that is slow to read."""
_CHUNK = 1 << 16


class Output:
    """Blocking writes to the wire fd in a daemon thread, so a client that reads slowly never blocks the loop."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.loop = asyncio.get_running_loop()
        self.jobs: queue.SimpleQueue[tuple[bytes, asyncio.Future[None]]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="streamhost-wire-out", daemon=True).start()

    async def write(self, data: bytes) -> None:
        """Write all of ``data``; raises OSError (BrokenPipeError: the client closed its end)."""
        done = self.loop.create_future()
        self.jobs.put((data, done))
        await done

    def _run(self) -> None:
        while True:
            data, done = self.jobs.get()
            error: OSError | None = None
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]
            except OSError as exc:
                error = exc
            try:
                self.loop.call_soon_threadsafe(_settle, done, error)
            except RuntimeError:  # the loop is gone: nobody waits any more
                return


def _settle(done: asyncio.Future[None], error: OSError | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


def _peer_gone(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


class StdioWire:
    """Serves one MCP session on a pair of file descriptors (the client's pipe or socket ends).

    ``calls`` is shared with the tool handlers: the reader marks a request cancelled the moment the
    cancel is read and cancels its handler at once; the writer then drops whatever still relates to it.
    """

    def __init__(self, fd_in: int, fd_out: int, calls: Calls, on_first_answer: Callable[[], None] | None = None):
        self.fd_in, self.fd_out, self.calls = fd_in, fd_out, calls
        self.on_first_answer = on_first_answer
        self.read_send, self.read_receive = anyio.create_memory_object_stream[SessionMessage | Exception](16)
        self.write_send, self.write_receive = anyio.create_memory_object_stream[SessionMessage](0)
        self.refusals = self.write_send.clone()
        self.stopping = False

    @contextlib.asynccontextmanager
    async def streams(self) -> AsyncIterator[tuple[MemoryObjectReceiveStream[Any], MemoryObjectSendStream[Any]]]:
        """Run the reader and the writer; yields the streams ``Server.run`` takes.

        Returns once the server has finished with them: when the client closes stdin, after ``stop()``,
        or when the client closes our stdout (then running calls are cancelled at once).
        """
        loop = asyncio.get_running_loop()
        output = Output(self.fd_out)
        threading.Thread(target=self._read, args=(loop,), name="streamhost-wire-in", daemon=True).start()
        watching = self._watch_peer(loop)
        try:
            async with anyio.create_task_group() as tg:
                written = anyio.Event()
                tg.start_soon(self._write, output, written)
                try:
                    yield self.read_receive, self.write_send
                finally:
                    self.stop("the server ended")  # no-op after a stop; else the refusals' stream stays open
                    with anyio.move_on_after(FLUSH_S, shield=True):
                        await written.wait()
                    tg.cancel_scope.cancel()
        finally:
            if watching:
                loop.remove_reader(self.fd_out)

    def stop(self, reason: str) -> None:
        """Stop reading: the server cancels running calls, answers them, and its writes are flushed."""
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: %s", reason)
        self.read_send.close()
        self.refusals.close()

    # ------------------------------------------------------------------ reading (a daemon thread)

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        parts: list[bytes] = []
        while True:
            try:
                chunk = os.read(self.fd_in, _CHUNK)
            except OSError:
                chunk = b""
            if not chunk:
                break
            *lines, rest = chunk.split(b"\n")
            if lines:
                lines[0] = b"".join([*parts, lines[0]])
                parts = []
                for line in lines:
                    if line.strip() and not self._take(loop, line):
                        return
            if rest:
                parts.append(rest)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.stop, "the client closed stdin")

    def _take(self, loop: asyncio.AbstractEventLoop, line: bytes) -> bool:
        """Parse and hand over one line; False once the session is over."""
        item = parse(line)
        if isinstance(item, Refusal):
            if not item.answer:
                log.warning("ignored a malformed message: %s", item.message)
                return True
            log.warning("refused request %r: %s", item.id, item.message)
            return self._hand(loop, self.refusals, SessionMessage(item.error()))
        metadata = None
        if isinstance(item, types.JSONRPCRequest):
            key = coerce_request_id(item.id)
            self.calls.opened(key)
            metadata = ServerMessageMetadata(on_request_unanswered=lambda: self._unanswered(key))
        elif isinstance(item, types.JSONRPCNotification) and item.method == "notifications/cancelled":
            rid = as_request_id((item.params or {}).get("requestId"))
            # Before the notification even reaches the dispatcher: nothing more may be written for
            # this request, and its handler stops now rather than after the loop gets round to it.
            if rid is not None and self.calls.cancel_read(coerce_request_id(rid)):
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self.calls.cancel_now, coerce_request_id(rid))
        return self._hand(loop, self.read_send, SessionMessage(item, metadata=metadata))

    @staticmethod
    def _hand(loop: asyncio.AbstractEventLoop, stream: MemoryObjectSendStream[Any], item: Any) -> bool:
        try:
            asyncio.run_coroutine_threadsafe(stream.send(item), loop).result()
        except (RuntimeError, anyio.ClosedResourceError, anyio.BrokenResourceError, concurrent.futures.CancelledError):
            return False
        return True

    async def _unanswered(self, key: types.RequestId) -> None:
        self.calls.closed(key)

    # ------------------------------------------------------------------ writing

    async def _write(self, output: Output, written: anyio.Event) -> None:
        try:
            async with self.write_receive:
                async for first in self.write_receive:
                    batch = [first]
                    with contextlib.suppress(anyio.WouldBlock, anyio.EndOfStream):
                        while len(batch) < 256:
                            batch.append(self.write_receive.receive_nowait())
                    data = b"".join(filter(None, map(self._encode, batch)))
                    if not data:
                        continue
                    await output.write(data)
                    if self.on_first_answer is not None:
                        self.on_first_answer, first_answer = None, self.on_first_answer
                        first_answer()
        except OSError as exc:
            self.stop(f"the client closed stdout ({exc.strerror or exc})")
        finally:
            written.set()

    def _encode(self, item: SessionMessage) -> bytes | None:
        message = item.message
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id is not None:
            key = coerce_request_id(message.id)
            if self.calls.closed(key):
                log.debug("dropped the answer to cancelled request %r", message.id)
                return None
        else:
            related = item.metadata.related_request_id if isinstance(item.metadata, ServerMessageMetadata) else None
            if related is not None and self.calls.is_cancelled(coerce_request_id(related)):
                return None
        return encode(message)

    def _watch_peer(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Notice a client that closed our stdout while we are idle (a write would notice it too, later)."""
        try:
            mode = os.fstat(self.fd_out).st_mode
            if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
                return False
            loop.add_reader(self.fd_out, self._peer_event, loop)
        except (OSError, ValueError):
            return False
        return True

    def _peer_event(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.remove_reader(self.fd_out)  # level-triggered: once is enough, and a half-closed socket would spin
        if _peer_gone(self.fd_out):
            self.stop("the client closed stdout")
