"""``streamhost serve --http``: the MCP server over Streamable HTTP, one server for many callers.

The same low-level server as on stdio (:func:`build_server`), served by the SDK's Streamable HTTP
transport in SSE mode (progress travels on the request's own response stream; JSON mode drops it),
stateless in both protocol eras, so any process or replica can answer any request. A 2026-era
``tools/call`` takes a shorter way: the SDK serves it in JSON mode and ``http_stream.py`` writes its
progress and answer as SSE. What stdio keeps per server is kept per request here: the caller, the
client's name, the call's cancel scope. Closing a response cancels its call and closes the upstream
request, as a cancel does on stdio (the SDK's stateless transports and ``http_stream.py`` cancel the
handler when the client goes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import InvalidArgumentError
from ..host.callers import CALLER
from ..host.config import HttpSettings
from ..host.engine import Engine
from ..host.garbage import collect_between_calls
from ..pages.host_services import HostServices
from . import http_stream
from .calls import Calls
from .http_auth import CALLER_KEY, BearerAuth
from .server import Warmup, build_server, client_name

MCP_PATH = "/mcp"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
READY_TIMEOUT_S = 5.0
GRACEFUL_S = 5.0
"""After a stop, how long open responses get to finish (their calls are cancelled at once) before uvicorn cuts them."""

_CLIENT: ContextVar[str | None] = ContextVar("streamhost_http_client", default=None)
_CALL: ContextVar[int | None] = ContextVar("streamhost_http_call", default=None)
_numbers = itertools.count(1)


class HttpServices(HostServices):
    """The services of a server with many callers: the client's name is the current request's."""

    @property  # type: ignore[override]
    def client(self) -> str | None:
        """The name of the client whose call is running (its ``clientInfo``), per request."""
        return _CLIENT.get()

    @client.setter
    def client(self, value: str | None) -> None:
        # The stdio server sets its one client's name; here each request brings its own (set per call).
        pass


class HttpCalls(Calls):
    """The calls in flight: keyed by their HTTP request, since JSON-RPC ids repeat across callers."""

    def running(self, request_id: types.RequestId | None) -> Any:
        """A cancel scope for a handler, which a stop cancels at once."""
        return super().running(_CALL.get() if request_id is not None else None)

    def cancel_all(self) -> None:
        """Cancel every running call and its upstream requests (the server is stopping)."""
        for key in list(self._scopes):
            self.cancel_now(key)


def http_roots(settings: HttpSettings) -> Callable[[], Awaitable[list[Path]]]:
    """Where ``files`` may be read from over HTTP: ``[http] roots``, else nowhere (the server's files are not
    the caller's)."""
    roots = [Path(root).expanduser() for root in settings.roots]

    async def allowed() -> list[Path]:
        if not roots:
            raise InvalidArgumentError("files: local files as context are off over HTTP (the server's files are not "
                                       "the caller's): set [http] roots in the server's config to allow directories")
        return roots

    return allowed


def security_settings(settings: HttpSettings, host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection: Host and Origin must be loopback, the listening host, or listed in ``[http]``."""
    if "*" in settings.allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = [*LOOPBACK_HOSTS, *([] if host in ("0.0.0.0", "::", "") else [f"[{host}]" if ":" in host else host])]
    hosts = [spelled for name in names for spelled in (name, f"{name}:*")]
    origins = [f"{scheme}://{name}{port}" for name in LOOPBACK_HOSTS for scheme in ("http", "https")
               for port in ("", ":*")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=[*hosts, *settings.allowed_hosts],
                                     allowed_origins=[*origins, *settings.allowed_origins])


def build_http_app(engine: Engine, startup_error: str | None = None, *, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app: MCP at ``/mcp`` for bearer-token holders, ``/healthz`` and ``/readyz`` for anyone; its lifespan
    closes the engine."""
    settings = engine.config.http
    # Over HTTP only [http] roots may be read: the [context] roots are the server user's, not the caller's.
    engine.config.context = replace(engine.config.context, roots=settings.roots)
    services = HttpServices(engine, model_initiated=True)
    services.roots = http_roots(settings)
    calls = HttpCalls()
    server = build_server(engine, startup_error, calls, services=services)
    server.middleware.insert(0, _per_request)
    security = security_settings(settings, host)
    mcp_app = server.streamable_http_app(streamable_http_path=MCP_PATH, json_response=False, stateless_http=True,
                                         transport_security=security, host=host)
    # 2026-era calls: the SDK in JSON mode, their progress written by http_stream.py (fewer turns of the loop).
    direct = StreamableHTTPSessionManager(app=server, json_response=True, stateless=True, security_settings=security)
    calls_app = StreamableHTTPASGIApp(direct)

    async def mcp_routes(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == MCP_PATH and http_stream.takes(scope):
            await http_stream.serve(calls_app, scope, receive, send)
        else:
            await mcp_app(scope, receive, send)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        problem = await _not_ready(engine, startup_error)
        if problem is not None:
            return JSONResponse({"status": "unavailable", "reason": problem}, status_code=503)
        return JSONResponse({"status": "ready"})

    def stop_calls() -> None:
        # The host is stopping: calls cut short now are left for a later start to resume (a background run is not
        # cancelled upstream), then cancelled with their upstream requests.
        engine.stopping = lambda: True
        calls.cancel_all()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        warmup = Warmup(engine, calls)
        async with server.session_manager.run(), direct.run():
            with _stops_calls(stop_calls):
                warmup.start()
                collecting = asyncio.create_task(collect_between_calls(calls.idle))  # full collections stop the loop
                try:
                    yield
                finally:
                    collecting.cancel()
                    stop_calls()
        with anyio.CancelScope(shield=True):
            await engine.aclose()

    routes = [Route("/healthz", healthz), Route("/readyz", readyz), Mount("", app=mcp_routes)]
    return BearerAuth(Starlette(routes=routes, lifespan=lifespan), engine.memory)


async def _per_request(ctx: Any, call_next: Any) -> Any:
    """Server middleware: each request's caller (its bearer token's), client name and call key, for its handler."""
    caller = ctx.request.scope.get(CALLER_KEY) if ctx.request is not None else None
    tokens = CALLER.set(caller), _CLIENT.set(client_name(ctx)), _CALL.set(next(_numbers))
    try:
        return await call_next(ctx)
    finally:
        CALLER.reset(tokens[0])
        _CLIENT.reset(tokens[1])
        _CALL.reset(tokens[2])


async def _not_ready(engine: Engine, startup_error: str | None) -> str | None:
    """Why the server cannot serve calls yet, or None when it can."""
    if startup_error is not None:
        return startup_error
    if not engine.registry.providers:
        return "no provider plugin is loaded: install one (streamhost-openai, streamhost-litellm)"
    if not engine.memory.enabled:
        return None
    try:
        store = await asyncio.wait_for(engine.memory.store(), READY_TIMEOUT_S)
        if store is not None:
            await asyncio.wait_for(store.runs(limit=1), READY_TIMEOUT_S)
    except (asyncio.TimeoutError, TimeoutError):
        return f"the store did not answer within {READY_TIMEOUT_S:g} s (it may still be opening)"
    except Exception as exc:  # a database that went away after it opened
        return f"the store is unreachable: {type(exc).__name__}"
    if store is None:
        return f"the store is unavailable: {engine.memory.failure}"
    return None


@contextlib.contextmanager
def _stops_calls(stop_calls: Callable[[], None]) -> Iterator[None]:
    """On SIGINT/SIGTERM, cancel the running calls at once, then let uvicorn's own handler stop the server.

    uvicorn waits for open responses before it stops; a call streaming for minutes would hold it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in signums}

    def stop(signum: int, frame: Any) -> None:
        loop.call_soon_threadsafe(stop_calls)
        handler = previous[signum]
        if callable(handler):
            handler(signum, frame)

    for signum in signums:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
