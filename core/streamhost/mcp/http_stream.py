"""A 2026-era ``tools/call`` over HTTP whose progress is written to the connection by the task that makes it.

In its SSE mode the SDK hands each notification through a memory stream to a writer task: two more turns of the
event loop for every notification (the sender's checkpoint, the writer's wake-up). Under load a turn is tens of
milliseconds, and this was the largest part of a first text's way to the client (bench/http_load.py). Here the
SDK serves the request in its JSON mode (its whole validation ladder, handler and answer unchanged) and this
module owns the response's SSE framing: the first notification commits ``text/event-stream``, every
notification is written at once, and the answer the SDK then writes as JSON becomes the stream's last event. A
call that notified nothing is answered exactly as the SDK answers it (JSON, its status by error code).

As in the SDK's SSE mode, a response silent for ``PING_S`` gets a comment line (so a proxy's idle timeout cannot
close it), and a client that goes away cancels the call. Everything else (other methods, the 2025 eras, a client
that does not accept SSE) stays on the SDK's SSE mode.
"""

from __future__ import annotations

import json
import time
from contextvars import ContextVar
from typing import Any

import anyio
from mcp.shared.inbound import MCP_METHOD_HEADER, MCP_PROTOCOL_VERSION_HEADER
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PING_S = 15.0
"""Silence after which the response gets a comment line (the SDK's own interval)."""
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache, no-transform"),
               (b"connection", b"keep-alive"), (b"x-accel-buffering", b"no")]
_PING = b": ping\r\n\r\n"
_VERSION = MCP_PROTOCOL_VERSION_HEADER.encode("ascii")
_METHOD = MCP_METHOD_HEADER.encode("ascii")

_STREAM: ContextVar[DirectStream | None] = ContextVar("streamhost_http_stream", default=None)


def current() -> DirectStream | None:
    """The response stream of the request being served, when it is on this path (None on stdio and elsewhere)."""
    return _STREAM.get()


def takes(scope: Scope) -> bool:
    """Whether this path serves the request: a POST of ``tools/call`` in a stateless era (its protocol version is
    no handshake era's) from a client that accepts both JSON and SSE."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return False
    headers = dict(scope["headers"])
    version = headers.get(_VERSION)
    accept = headers.get(b"accept", b"").lower()
    return (version is not None and version.decode("latin-1") not in HANDSHAKE_PROTOCOL_VERSIONS
            and headers.get(_METHOD) == b"tools/call" and b"text/event-stream" in accept
            and b"application/json" in accept)


def event(data: bytes) -> bytes:
    """One SSE ``message`` event holding one JSON-RPC message."""
    return b"event: message\r\ndata: " + data + b"\r\n\r\n"


def encode(message: dict[str, Any]) -> bytes:
    """A JSON-RPC message as compact JSON, escaped as the SDK escapes its answers (so a lone UTF-16 surrogate that an
    upstream sent reads the same in the deltas as in the answer, and every byte is ASCII)."""
    return json.dumps(message, separators=(",", ":")).encode("ascii")


class DirectStream:
    """One response: notifications written as they are made; the SDK's answer, once it comes, ends it."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        """Whether ``text/event-stream`` was committed (by a notification or a ping)."""
        self.answering = False
        """Whether the SDK has begun its answer: nothing more is ours to write."""
        self.last_write = time.monotonic()
        self._answer = b""

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Write one notification now (dropped once the answer has begun)."""
        await self.write(event(encode({"jsonrpc": "2.0", "method": method, "params": params})))

    async def write(self, data: bytes) -> None:
        if self.answering:
            return
        self.last_write = time.monotonic()
        if not self.started:
            self.started = True  # before the await: a ping and a notification never both start the response
            await self._send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def answer(self, message: Message) -> None:
        """The SDK's send: its JSON answer as is when nothing was streamed, else as the stream's last event."""
        self.answering = True
        if not self.started:
            await self._send(message)
        elif message["type"] == "http.response.body":
            self._answer += message.get("body", b"")
            if not message.get("more_body", False):
                await self._send({"type": "http.response.body", "body": event(self._answer), "more_body": False})


async def serve(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one request with ``app`` (the SDK's transport in JSON mode), streaming what the call notifies."""
    stream = DirectStream(send)
    body_read = anyio.Event()

    async def receive_body() -> Message:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            body_read.set()
        return message

    async def watch(scope_: anyio.CancelScope) -> None:
        # After the body, the next message is the client going away; meanwhile a quiet stream gets pings.
        await body_read.wait()
        while True:
            with anyio.move_on_after(stream.last_write + PING_S - time.monotonic()):
                if (await receive())["type"] == "http.disconnect":
                    scope_.cancel()
                    return
            if not stream.answering and time.monotonic() - stream.last_write >= PING_S:
                await stream.write(_PING)

    token = _STREAM.set(stream)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(watch, tasks.cancel_scope)
            await app(scope, receive_body, stream.answer)
            tasks.cancel_scope.cancel()
    finally:
        _STREAM.reset(token)
