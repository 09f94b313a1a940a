"""The MCP stdio transport: JSON lines in on one fd, JSON lines out on another, both edges ours.

Why not the SDK's ``stdio_server``: a message it cannot parse gets no answer at all, one string it
cannot encode (a lone UTF-16 surrogate) stops its writer for good, its blocking reads in anyio worker
threads keep the process alive after a signal, and it writes a progress notification for a request
the client has already cancelled. Here a daemon thread reads and parses, every request whose id can
be read gets an answer, the writer repairs what it cannot encode, and cancels act at once.

Neither side waits for the event loop, which may be busy relaying hundreds of streams: the reader
reads ahead and queues (a cancel acts the moment its line is parsed, whatever is queued before it) and
the server takes every queued message in one turn of the loop (``inbound.py``); what the server sends
is encoded at once and written by another daemon thread (``outbound.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import stat
import threading
from collections.abc import AsyncIterator, Callable

import anyio
import mcp_types as types
from mcp.shared.dispatcher import as_request_id, coerce_request_id
from mcp.shared.message import ServerMessageMetadata, SessionMessage

from .calls import Calls
from .framing import Refusal, encode, parse
from .inbound import Inbound
from .outbound import Outbound

log = logging.getLogger("streamhost.wire")

FLUSH_S = 2.0
"""How long a stop waits for answers already made to reach a client that is slow to read."""
_CHUNK = 1 << 16


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
        self.inbound = Inbound(asyncio.get_running_loop())
        self.outbound: Outbound | None = None
        self.stopping = False

    @contextlib.asynccontextmanager
    async def streams(self) -> AsyncIterator[tuple[Inbound, Outbound]]:
        """Run the reader and the writer; yields the streams ``Server.run`` takes.

        Returns once the server has finished with them: when the client closes stdin, after ``stop()``,
        or when the client closes our stdout (then running calls are cancelled at once).
        """
        loop = asyncio.get_running_loop()
        self.outbound = outbound = Outbound(self.fd_out, self._encode, self.calls.is_cancelled,
                                            self.on_first_answer, self.stop)
        threading.Thread(target=self._read, args=(loop,), name="streamhost-wire-in", daemon=True).start()
        watching = self._watch_peer(loop)
        try:
            yield self.inbound, outbound
        finally:
            self.stop("the server ended")  # no-op after a stop
            with anyio.move_on_after(FLUSH_S, shield=True):
                await outbound.drained()
            if watching:
                loop.remove_reader(self.fd_out)

    def stop(self, reason: str) -> None:
        """Stop reading: the server cancels running calls, answers them, and its writes are flushed."""
        if self.stopping:
            return
        self.stopping = True
        log.info("stopping: %s", reason)
        self.inbound.close()

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
                # The whole chunk is handed over at once: one wake of the loop, however many lines.
                read = [message for line in lines if line.strip() and (message := self._take(loop, line))]
                if read and not self.inbound.put(read):
                    return
            if rest:
                parts.append(rest)
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self.stop, "the client closed stdin")

    def _take(self, loop: asyncio.AbstractEventLoop, line: bytes) -> SessionMessage | None:
        """Parse one line: the message for the server, or None (a refusal goes straight to the writer)."""
        item = parse(line)
        if isinstance(item, Refusal):
            if not item.answer:
                log.warning("ignored a malformed message: %s", item.message)
                return None
            log.warning("refused request %r: %s", item.id, item.message)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._refuse, SessionMessage(item.error()))
            return None
        metadata = None
        if isinstance(item, types.JSONRPCRequest):
            key = coerce_request_id(item.id)
            self.calls.opened(key)
            metadata = ServerMessageMetadata(on_request_unanswered=lambda: self._unanswered(key))
        elif isinstance(item, types.JSONRPCNotification) and item.method == "notifications/cancelled":
            rid = as_request_id((item.params or {}).get("requestId"))
            # Before the notification even reaches the dispatcher: nothing more may be written for
            # this request, and its handler stops now rather than after the loop gets round to it. A
            # request still queued behind it is marked, so its handler is cancelled before it starts.
            if rid is not None and self.calls.cancel_read(coerce_request_id(rid)):
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self.calls.cancel_now, coerce_request_id(rid))
        return SessionMessage(item, metadata=metadata)

    def _refuse(self, answer: SessionMessage) -> None:
        """Queue a refusal's error for the client (on the loop; the reader never waits for it)."""
        if self.outbound is not None and not self.stopping:
            self.outbound.send_nowait(answer)

    async def _unanswered(self, key: types.RequestId) -> None:
        self.calls.closed(key)

    # ------------------------------------------------------------------ writing

    def _encode(self, item: SessionMessage) -> tuple[bytes, types.RequestId | None] | None:
        """The line for a message and the request it relates to; None when it must not be written."""
        message = item.message
        if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id is not None:
            if self.calls.closed(coerce_request_id(message.id)):
                log.debug("dropped the answer to cancelled request %r", message.id)
                return None
            return encode(message), None
        related = item.metadata.related_request_id if isinstance(item.metadata, ServerMessageMetadata) else None
        if related is None:
            return encode(message), None
        key = coerce_request_id(related)
        if self.calls.is_cancelled(key):
            return None
        return encode(message), key

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
