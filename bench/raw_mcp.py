"""Raw MCP clients for the time-to-first-text benchmarks: the least a client can do, so what is timed is the server.

:class:`RawHttp` keeps one HTTP/1.1 connection alive and POSTs stateless 2026-07-28 ``tools/call`` requests,
reading each SSE response to its end; :class:`RawStdio` writes JSON-RPC lines to a spawned ``streamhost serve``
after the ``initialize`` handshake. Both timestamp the first ``notifications/progress`` that carries text.
The SDK's clients do much more per call (the HTTP one opens a new connection for every call: it closes an SSE
response as soon as it has the answer, before the response's end, so the connection cannot be reused).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import common

ERA = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": ERA, "io.modelcontextprotocol/clientInfo": {"name": "raw-bench",
        "version": "1"}, "io.modelcontextprotocol/clientCapabilities": {}}


def call_message(number: int, arguments: dict[str, Any], meta: dict[str, Any], tool: str = "generate") -> bytes:
    """A ``tools/call`` with a progress token (the request id)."""
    return json.dumps({"jsonrpc": "2.0", "id": number, "method": "tools/call", "params": {
        "name": tool, "arguments": arguments, "_meta": {**meta, "progressToken": number}}}).encode()


def request_bytes(port: int, key: int, tool: str, arguments: dict[str, Any], era: str = ERA,
                  client: str = "raw-bench") -> bytes:
    """A stateless ``tools/call`` POST whose progress token is ``key``: in the 2026-07-28 era with the ``_meta``
    envelope and the routing headers, in 2025-11-25 with neither (a stateless server needs no ``initialize``)."""
    modern = era == ERA
    meta = {**META, "io.modelcontextprotocol/clientInfo": {"name": client, "version": "1"}} if modern else {}
    body = call_message(key, arguments, meta, tool)
    routing = f"MCP-Method: tools/call\r\nMCP-Name: {tool}\r\n" if modern else ""
    head = (f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: {era}\r\n"
            f"{routing}Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


async def body_pieces(reader: asyncio.StreamReader, headers: dict[str, str]) -> AsyncIterator[tuple[float, bytes]]:
    """A response body as it arrives (chunked or until EOF), each piece with its arrival time."""
    if "chunked" not in headers.get("transfer-encoding", ""):
        while data := await reader.read(65536):
            yield time.monotonic(), data
        return
    while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
        data = await reader.readexactly(size + 2)
        yield time.monotonic(), data[:-2]


def has_text(message: bytes) -> bool:
    return b"notifications/progress" in message and common.DELTA.encode() in message


class RawHttp:
    """One keep-alive connection to ``serve --http``; a call is one POST and its SSE response read to the end."""

    def __init__(self, port: int, pid: int = 0, era: str = ERA) -> None:
        self.port = port
        self.pid = pid  # the server's, for its CPU time
        self.era = era  # 2026-07-28: the _meta envelope and routing headers; 2025-11-25: neither (stateless server)
        self.number = 0
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def first_text(self, arguments: dict[str, Any]) -> tuple[float, float]:
        """(call start, first text arrival), both ``time.monotonic()``."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        self.number += 1
        request = request_bytes(self.port, self.number, "generate", arguments, self.era)
        t0 = time.monotonic()
        writer.write(request)
        status = await reader.readline()
        chunked = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            chunked = chunked or line.lower().startswith(b"transfer-encoding: chunked")
        if not status.startswith(b"HTTP/1.1 200") or not chunked:
            raise RuntimeError(f"unexpected response: {status!r}")
        first = None
        while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
            data = await reader.readexactly(size + 2)
            if first is None and has_text(data):
                first = time.monotonic()
        await reader.readline()  # the blank line after the last chunk: the connection is ready for the next call
        if first is None:
            raise RuntimeError("the call streamed no text")
        return t0, first

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


class RawStdio:
    """``streamhost serve`` spawned with pipes, after the ``initialize`` handshake; calls one at a time."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.number = 0
        self.process: Any = None
        self.pid = 0

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *common.streamhost_cmd(), env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, limit=16 * 1024 * 1024)
        self.pid = self.process.pid
        self._send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw-bench", "version": "1"}}})
        while b'"id":0' not in (await self._line()).replace(b" ", b""):
            pass
        self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def first_text(self, arguments: dict[str, Any]) -> tuple[float, float]:
        """(call start, first text arrival), both ``time.monotonic()``."""
        self.number += 1
        t0 = time.monotonic()
        self.process.stdin.write(call_message(self.number, arguments, {}) + b"\n")
        first = None
        answer = f'"id":{self.number}'.encode()
        while True:
            line = await self._line()
            if first is None and has_text(line):
                first = time.monotonic()
            if b'"result"' in line and answer in line.replace(b" ", b""):
                break
        if first is None:
            raise RuntimeError("the call streamed no text")
        return t0, first

    def _send(self, message: dict[str, Any]) -> None:
        self.process.stdin.write(json.dumps(message).encode() + b"\n")

    async def _line(self) -> bytes:
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("streamhost serve stopped")
        return bytes(line)

    async def close(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()
