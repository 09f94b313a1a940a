"""Minimal HTTP/1.1 for :mod:`streamhost.testing.llm_server`, standard library only.

:class:`RequestReader` parses requests from an ``asyncio.StreamReader`` (Content-Length or chunked
bodies, keep-alive) and can watch for client EOF without losing pipelined bytes;
:func:`json_response`, :func:`stream_head` and :func:`chunk` frame responses.
"""

from __future__ import annotations

import asyncio
import http
import json
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_BODY", "MAX_LINE", "BadRequest", "HttpRequest", "RequestReader", "chunk", "json_response",
           "stream_head"]

MAX_LINE = 65536
MAX_BODY = 64 * 1024 * 1024


class BadRequest(Exception):
    """The bytes received are not a request this server can parse."""


@dataclass
class HttpRequest:
    """One parsed HTTP request (header names lower-cased, path without query string)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    started: float  # time.monotonic() when the request line arrived
    query: str = ""  # what followed "?" in the request target, undecoded


class RequestReader:
    """Buffered HTTP/1.1 request reader over an ``asyncio.StreamReader``.

    :meth:`wait_eof` reads ahead while a response is being written, keeping any
    pipelined bytes for the next :meth:`read_request`; :attr:`eof_at` is the
    monotonic time the client's EOF (or a reset) was first seen.
    """

    def __init__(self, reader: asyncio.StreamReader) -> None:
        """Wrap ``reader``."""
        self._r = reader
        self._buf = bytearray()
        self.eof_at: float | None = None

    async def _fill(self) -> bool:
        if self.eof_at is not None:
            return False
        try:
            data = await self._r.read(65536)
        except ConnectionError:
            data = b""
        if not data:
            self.eof_at = time.monotonic()
            return False
        self._buf += data
        return True

    async def wait_eof(self) -> None:
        """Return once the client closed its side of the connection (or reset it)."""
        while await self._fill():
            if len(self._buf) > MAX_BODY:
                self._buf.clear()

    async def _readline(self) -> bytes:
        while (i := self._buf.find(b"\n")) < 0:
            if len(self._buf) > MAX_LINE:
                raise BadRequest("line too long")
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self._buf), None)
        line = bytes(self._buf[: i + 1])
        del self._buf[: i + 1]
        return line

    async def _readexactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not await self._fill():
                raise asyncio.IncompleteReadError(bytes(self._buf), n)
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def read_request(self, writer: asyncio.StreamWriter) -> HttpRequest | None:
        """Next request on the connection, or None at a clean EOF between requests.

        Raises :class:`BadRequest` / ``ValueError`` on malformed input and
        ``asyncio.IncompleteReadError`` on EOF inside a request.
        """
        try:
            line = await self._readline()
            while line in (b"\r\n", b"\n"):
                line = await self._readline()
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            return None
        started = time.monotonic()
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest("bad request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        while (h := await self._readline()) not in (b"\r\n", b"\n"):
            name, sep, value = h.decode("latin-1").partition(":")
            if not sep or len(headers) > 200:
                raise BadRequest("bad header")
            headers[name.strip().lower()] = value.strip()
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = bytearray()
            while size := int((await self._readline()).split(b";")[0].strip() or b"0", 16):
                if len(body) + size > MAX_BODY:
                    raise BadRequest("body too large")
                body += (await self._readexactly(size + 2))[:-2]
            while (await self._readline()).strip():  # trailers
                pass
        else:
            length = int(headers.get("content-length") or 0)
            if not 0 <= length <= MAX_BODY:
                raise BadRequest("bad content-length")
            body = bytearray(await self._readexactly(length))
        conn = headers.get("connection", "").lower()
        keep_alive = "close" not in conn and (version != "HTTP/1.0" or "keep-alive" in conn)
        path, _, query = target.partition("?")
        return HttpRequest(method.upper(), path, headers, bytes(body), keep_alive, started, query)


def json_response(status: int, obj: Any, keep_alive: bool, headers: tuple[str, ...] = ()) -> bytes:
    """A complete ``application/json`` response with Content-Length."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    data = json.dumps(obj).encode()
    lines = [
        f"HTTP/1.1 {status} {phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def stream_head(keep_alive: bool, request_id: str) -> bytes:
    """Status line and headers of a chunked ``text/event-stream`` response."""
    return (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\nx-request-id: {request_id}\r\n\r\n"
    ).encode("latin-1")


def chunk(data: bytes, last: bool = False) -> bytes:
    """One chunk of a chunked body; ``last`` appends the terminating zero-size chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data) + (b"0\r\n\r\n" if last else b"")


