"""``streamhost serve``: the MCP server on stdio, the main job; ``--http`` serves a team over Streamable HTTP.

Its start-up path is kept lean: the wire is claimed before anything can print, and nothing of the
terminal face (rich, the pages features) is imported on the way to the first answer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from ..errors import ConfigError, PluginError
from .common import load_engine, log, setup_logging

HOST_ENV = "_STREAMHOST_HTTP_HOST"
"""The listening host, for the worker processes of ``--workers N`` (each builds its app with :func:`http_app`)."""


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve MCP on stdin/stdout until the client goes (or over HTTP with ``--http``); logs on stderr only."""
    if args.http:
        return serve_http(args)
    from ..mcp.stdio_guard import claim_stdio

    wire_in, wire_out = claim_stdio()
    setup_logging(args.log_level)
    import asyncio

    from ..mcp.server import serve_stdio

    try:
        engine, startup_error = engine_for_serving()
    except PluginError as exc:
        log.error("%s", exc.message)
        return 3
    try:
        asyncio.run(serve_stdio(engine, wire_in, wire_out, startup_error=startup_error))
    except KeyboardInterrupt:  # only before the server's own signal handlers are in place
        pass
    # Everything is answered and flushed. Skip the interpreter's teardown: with the SDKs imported it
    # takes a second or more, and a client stopping us (SIGINT, then SIGTERM 100 ms later) wants us gone.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def engine_for_serving() -> tuple[Any, str | None]:
    """The engine and the start-up error every call reports (a broken config file: only built-in tools then).

    :raises PluginError: a plugin cannot be loaded.
    """
    from ..host.config import Config
    from ..host.engine import Engine
    from ..host.loading import load_plugins

    startup_error = None
    try:
        engine = load_engine(warn=False)  # logged below, with the log's prefix
    except ConfigError as exc:
        log.error("%s — every tool call will report this until the file is fixed", exc.message)
        # No installed plugin is loaded with a config that cannot be read; the built-in tools are listed.
        engine, startup_error = Engine(Config(), load_plugins(Config(), entry_points=[])), exc.message
    for warning in engine.config.warnings + engine.registry.warnings:
        log.warning("%s", warning)
    log.info("serving %d provider(s): %s; %d fetcher(s): %s", len(engine.registry.providers),
             ", ".join(engine.registry.providers), len(engine.registry.fetchers), ", ".join(engine.registry.fetchers))
    return engine, startup_error


def serve_http(args: argparse.Namespace) -> int:
    """Serve MCP over Streamable HTTP at ``/mcp`` (and ``/healthz``, ``/readyz``) until SIGINT/SIGTERM."""
    setup_logging(args.log_level)
    import uvicorn

    from ..mcp.http_server import GRACEFUL_S, build_http_app

    try:
        engine, startup_error = engine_for_serving()
    except PluginError as exc:
        log.error("%s", exc.message)
        return 3
    settings = engine.config.http
    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    workers = args.workers if args.workers is not None else settings.workers
    if not 0 < port < 65536 or workers < 1:
        log.error("--port must be 1-65535 and --workers at least 1 (got %s and %s)", port, workers)
        return 2
    # uvicorn's own logging config would print access lines on stdout: its loggers go to ours (stderr). The loop is
    # named, not left to uvicorn's "auto", so the one logged is the one every worker runs.
    loop = event_loop()
    options: dict[str, Any] = {"host": host, "port": port, "log_config": None, "timeout_graceful_shutdown": GRACEFUL_S,
                               "loop": loop}
    log.info("MCP over HTTP at http://%s:%d/mcp (%d process(es), event loop: %s)", host, port, workers, loop)
    if workers == 1:
        uvicorn.run(build_http_app(engine, startup_error, host=host), **options)
    else:
        # Each worker process builds its own engine; they share the port and the store.
        os.environ[HOST_ENV] = host
        os.environ.setdefault("STREAMHOST_LOG_LEVEL", args.log_level)
        uvicorn.run("streamhost.cli.serve:http_app", factory=True, workers=workers, **options)
    return 0


def event_loop() -> str:
    """The event loop ``serve --http`` runs on, chosen as uvicorn's ``loop="auto"`` chooses: uvloop if importable.

    uvloop runs the loop in C: less CPU per request and per streamed token than asyncio's. It has no Windows build.
    """
    if sys.platform not in ("win32", "cygwin"):
        try:
            import uvloop  # noqa: F401
        except ImportError:
            pass
        else:
            return "uvloop"
    return "asyncio"


def http_app() -> Any:
    """The HTTP app of one ``--workers`` process (uvicorn's factory): its own engine, logging on stderr."""
    from ..mcp.http_server import build_http_app

    setup_logging(os.environ.get("STREAMHOST_LOG_LEVEL", "info"))
    engine, startup_error = engine_for_serving()
    return build_http_app(engine, startup_error, host=os.environ.get(HOST_ENV, "127.0.0.1"))


def add_commands(sub: Any) -> None:
    """Add ``serve`` to the ``streamhost`` parser's subcommands."""
    serve = sub.add_parser("serve", help="run the MCP server on stdio (the main job), or over HTTP with --http")
    serve.add_argument("--log-level", default=os.environ.get("STREAMHOST_LOG_LEVEL", "info"))
    serve.add_argument("--http", action="store_true", help="serve MCP over Streamable HTTP at /mcp (for a team)")
    serve.add_argument("--host", default=None, help="the address to listen on (default [http] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="the port (default [http] port, 8707)")
    serve.add_argument("--workers", type=int, default=None,
                       help="processes sharing the port (default [http] workers, 1); they share the store")
    serve.set_defaults(func=cmd_serve)
