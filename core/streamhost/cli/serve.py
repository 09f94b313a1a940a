"""``streamhost serve``: the MCP server on stdio, the main job.

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


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve MCP on stdin/stdout until the client goes; logs on stderr only."""
    from ..mcp.stdio_guard import claim_stdio

    wire_in, wire_out = claim_stdio()
    setup_logging(args.log_level)
    import asyncio

    from ..host.config import Config
    from ..host.engine import Engine
    from ..host.loading import load_plugins
    from ..mcp.server import serve_stdio

    startup_error = None
    try:
        engine = load_engine(warn=False)  # logged below, with the log's prefix
    except PluginError as exc:
        log.error("%s", exc.message)
        return 3
    except ConfigError as exc:
        log.error("%s — every tool call will report this until the file is fixed", exc.message)
        # No installed plugin is loaded with a config that cannot be read; the built-in tools are listed.
        engine, startup_error = Engine(Config(), load_plugins(Config(), entry_points=[])), exc.message
    for warning in engine.config.warnings + engine.registry.warnings:
        log.warning("%s", warning)
    log.info("serving %d provider(s): %s; %d fetcher(s): %s", len(engine.registry.providers),
             ", ".join(engine.registry.providers), len(engine.registry.fetchers), ", ".join(engine.registry.fetchers))
    try:
        asyncio.run(serve_stdio(engine, wire_in, wire_out, startup_error=startup_error))
    except KeyboardInterrupt:  # only before the server's own signal handlers are in place
        pass
    # Everything is answered and flushed. Skip the interpreter's teardown: with the SDKs imported it
    # takes a second or more, and a client stopping us (SIGINT, then SIGTERM 100 ms later) wants us gone.
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


def add_commands(sub: Any) -> None:
    """Add ``serve`` to the ``streamhost`` parser's subcommands."""
    serve = sub.add_parser("serve", help="run the MCP server on stdio (the main job)")
    serve.add_argument("--log-level", default=os.environ.get("STREAMHOST_LOG_LEVEL", "info"))
    serve.set_defaults(func=cmd_serve)
