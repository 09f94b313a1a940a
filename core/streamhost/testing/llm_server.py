"""A scriptable OpenAI-compatible HTTP streaming server for tests.

:class:`LLMTestServer` listens on a free loopback port and runs its own asyncio
event loop in a daemon thread, so it can be used from sync tests, from async
tests on any event loop, and by subprocesses over loopback. The HTTP/1.1 layer
is a small standard-library implementation (``asyncio.start_server``) so that
timing, stalls and client-disconnect detection are exact.

Endpoints: ``POST /v1/chat/completions``, ``POST /v1/responses`` (streaming and
not, ``background: true`` too), ``GET /v1/responses/{id}`` (polled, or streamed
again with ``?stream=true&starting_after=N``), ``POST /v1/responses/{id}/cancel``,
``GET /v1/models`` and ``GET /v1/models/{id}``. Replies are driven by
:class:`Script` objects queued per model; every request is recorded as a
:class:`RequestRecord`.

This module is the server: its thread and loop, connections, and the request records. What it answers is
``llm_replies.py``; the payloads are ``openai_wire.py`` and the modules it re-exports.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import hmac
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from . import http_wire
from . import openai_wire as wire
from .background import responses_action
from .llm_replies import Replies
from .scripts import RequestRecord, Script

__all__ = ["LLMTestServer", "RequestRecord", "Script"]

_log = logging.getLogger(__name__)
_POLL_S = 0.005


class LLMTestServer:
    """OpenAI-compatible streaming test server on a loopback port (its own thread and loop)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, require_key: str | None = None) -> None:
        """Configure (does not bind): ``port=0`` picks a free port; ``require_key`` enables 401s."""
        self._host, self._port_req, self._require_key = host, port, require_key
        self._lock = threading.Lock()
        self._life = threading.Lock()
        self._records: list[RequestRecord] = []
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()
        self._port: int | None = None
        self._replies = Replies(require_key, self._set)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> LLMTestServer:
        """Start the server thread and bind; returns self. Idempotent."""
        with self._life:
            if self._thread is not None:
                return self
            ready: concurrent.futures.Future[int] = concurrent.futures.Future()
            thread = threading.Thread(target=self._run, args=(ready,), name="LLMTestServer", daemon=True)
            thread.start()
            self._port = ready.result(timeout=10)
            self._thread = thread
            return self

    def stop(self) -> None:
        """Close every connection (stalled ones too) and end the thread. Idempotent."""
        with self._life:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None:
                return
            if threading.current_thread() is thread:
                raise RuntimeError("LLMTestServer.stop() called from the server's own thread")
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
            except Exception:  # pragma: no cover - best effort
                _log.exception("LLMTestServer shutdown failed")
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=5)
            self._thread = self._loop = self._server = None

    def __enter__(self) -> LLMTestServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    def _run(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(asyncio.start_server(self._handle, self._host, self._port_req))
        except BaseException as exc:
            loop.close()
            ready.set_exception(exc)
            return
        self._loop, self._server = loop, server
        ready.set_result(server.sockets[0].getsockname()[1])
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        try:
            await asyncio.wait_for(self._server.wait_closed(), 1.0)
        except asyncio.TimeoutError:  # pragma: no cover
            pass

    # ------------------------------------------------------------------ public API

    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("LLMTestServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL for the openai SDK, e.g. ``http://127.0.0.1:PORT/v1``."""
        host = "127.0.0.1" if self._host in ("", "0.0.0.0") else self._host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/v1"

    def script(self, model: str, *scripts: Script) -> None:
        """Queue ``scripts`` for requests naming ``model``: used in order, the last repeats forever.

        Replaces any previous queue for that model; no scripts removes it (default reply).
        """
        self._replies.script(model, scripts)

    def set_models(self, ids: list[str], delay_s: float = 0.0) -> None:
        """Set what ``GET /v1/models`` lists (default: every scripted model name, sorted), in that order,
        answered after ``delay_s`` seconds (a slow endpoint)."""
        self._replies.set_models(ids, delay_s)

    @property
    def requests(self) -> list[RequestRecord]:
        """Snapshot copies of the request records, in arrival order."""
        with self._lock:
            return [copy.copy(r) for r in self._records]

    def clear(self) -> None:
        """Forget all request records."""
        with self._lock:
            self._records.clear()

    def wait_for(self, predicate: Callable[[list[RequestRecord]], bool], timeout: float = 5.0) -> bool:
        """Poll :attr:`requests` (blocking) until ``predicate`` is true; False on timeout."""
        deadline = time.monotonic() + timeout
        while not predicate(self.requests):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)
        return True

    async def await_for(self, predicate: Callable[[list[RequestRecord]], bool], timeout: float = 5.0) -> bool:
        """Like :meth:`wait_for` but polls with ``asyncio.sleep``; works on any event loop."""
        deadline = time.monotonic() + timeout
        while not predicate(self.requests):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True

    # ------------------------------------------------------------------ connection handling

    def _set(self, rec: RequestRecord, **fields: Any) -> None:
        with self._lock:
            for name, value in fields.items():
                setattr(rec, name, value)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = http_wire.RequestReader(reader)
        try:
            while True:
                try:
                    req = await conn.read_request(writer)
                except (http_wire.BadRequest, ValueError, UnicodeError):
                    writer.write(http_wire.json_response(400, wire.error_body(400, "Malformed HTTP request"), False))
                    break
                if req is None:
                    break
                if not await self._exchange(req, conn, writer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # server stopping: drop the connection hard
            # Not re-raised: asyncio's start_server callback logs handler tasks that end cancelled.
            conn.eof_at = conn.eof_at or time.monotonic()
        except Exception:
            _log.exception("LLMTestServer: unexpected error while serving a connection")
        finally:
            self._handlers.discard(task)
            if conn.eof_at is not None:
                writer.transport.abort()
            else:
                writer.close()

    async def _exchange(
        self, req: http_wire.HttpRequest, conn: http_wire.RequestReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Answer one request while watching the client for EOF; True to keep the connection."""
        rec = self._record(req)
        respond = asyncio.ensure_future(self._replies.respond(req, rec, writer))
        watch = asyncio.ensure_future(conn.wait_eof())
        try:
            await asyncio.wait((respond, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (respond, watch):
                t.cancel()
            await asyncio.gather(respond, watch, return_exceptions=True)
            exc = None if respond.cancelled() or not respond.done() else respond.exception()
            if respond.cancelled() or exc is not None:  # interrupted: client gone, write failed or server stopping
                now = time.monotonic()
                if conn.eof_at is not None or isinstance(exc, ConnectionError):
                    self._set(rec, disconnected=True, disconnected_at=conn.eof_at or now, ended=now)
                else:
                    self._set(rec, ended=now)
        if exc is not None and not isinstance(exc, ConnectionError):
            raise exc
        kept = exc is None and not respond.cancelled() and respond.result() is not False
        return kept and req.keep_alive and conn.eof_at is None

    def _record(self, req: http_wire.HttpRequest) -> RequestRecord:
        body: dict[str, Any] | None = None
        if req.body:
            try:
                parsed = json.loads(req.body)
                body = parsed if isinstance(parsed, dict) else None
            except ValueError:
                body = None
        auth = req.headers.get("authorization", "")
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        if self._require_key is None:
            authorized = bool(key)
        else:
            authorized = bool(key) and hmac.compare_digest(key.encode(), self._require_key.encode())
        api = {"/v1/chat/completions": "chat", "/v1/responses": "responses"}.get(req.path, "other")
        if req.path == "/v1/models" or req.path.startswith("/v1/models/"):
            api = "models"
        query = {name: values[-1] for name, values in urllib.parse.parse_qs(req.query).items()}
        action, response_id, after = responses_action(req.method, req.path, query)
        model = body.get("model") if body else None
        rec = RequestRecord(
            method=req.method,
            path=req.path,
            model=model if isinstance(model, str) else None,
            body=body,
            api="responses" if action else api,
            stream=bool(body and body.get("stream") is True) or query.get("stream") == "true",
            authorized=authorized,
            started=req.started,
            action=action,
            response_id=response_id,
            starting_after=after,
        )
        with self._lock:
            self._records.append(rec)
        return rec
