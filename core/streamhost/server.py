"""``streamhost serve``: the MCP server over stdio."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from . import __version__
from .engine import Engine
from .progress import ProgressSink, progress_token
from .tools import build_tools, call, error_result

log = logging.getLogger("streamhost.server")

INSTRUCTIONS = (
    "streamhost gives you other language models: generate asks one (a second opinion, another vendor, a "
    "delegated sub-task), list_models shows which exist. With a fetcher plugin installed, fetch_url reads a web "
    "page as markdown, in slices, and summarize_urls summarizes up to 20 pages, one section per page. Answers "
    "and summaries stream to the user as they are written."
)
WARMUP_FALLBACK_S = 2.0


def build_server(engine: Engine, startup_error: str | None = None, warmup: Warmup | None = None) -> Server[Any]:
    """The low-level MCP server for this engine's tools; starts ``warmup`` after the first tools/list.

    With ``startup_error`` (a broken config file) the tools are listed but every call reports it.
    """
    specs = build_tools(engine)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        if warmup is not None:
            warmup.soon(0.05)
        return types.ListToolsResult(tools=[spec.tool for spec in specs.values()])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        spec = specs.get(params.name)
        if startup_error is not None:
            return error_result(startup_error)
        if spec is None:
            return error_result(f"unknown tool {params.name!r}; tools: {', '.join(specs)}")
        arguments = dict(params.arguments or {})
        sink = ProgressSink(ctx.session, ctx.request_id, progress_token(ctx.meta),
                            mode=engine.config.streaming.message, total=spec.total(arguments))
        try:
            return await call(spec, arguments, sink)
        except Exception as exc:  # a bug must not look like the SDK's generic text, nor stop the host
            log.exception("tool %s failed unexpectedly", params.name)
            return error_result(f"{params.name} failed unexpectedly: {type(exc).__name__}: {exc}")

    return Server("streamhost", version=__version__, instructions=INSTRUCTIONS,
                  on_list_tools=list_tools, on_call_tool=call_tool)


class Warmup:
    """Starts the background SDK import once, after the server has answered what it must answer."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.started = False

    def soon(self, delay: float) -> None:
        """Start the warm-up ``delay`` seconds from now, unless it started already or is turned off."""
        if self.started or not self.engine.config.warmup:
            return
        self.started = True
        asyncio.get_running_loop().call_later(delay, self.engine.warm_in_background)


async def serve_stdio(engine: Engine, wire_in: io.TextIOWrapper, wire_out: io.TextIOWrapper,
                      startup_error: str | None = None) -> None:
    """Serve MCP on the given wire streams until the client closes stdin."""
    warmup = Warmup(engine)
    server = build_server(engine, startup_error, warmup)
    async with stdio_server(anyio.wrap_file(wire_in), anyio.wrap_file(wire_out)) as (read, write):
        asyncio.get_running_loop().call_later(WARMUP_FALLBACK_S, warmup.soon, 0)
        try:
            await server.run(read, write, server.create_initialization_options())
        finally:
            await engine.aclose()
