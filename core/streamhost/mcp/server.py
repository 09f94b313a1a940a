"""``streamhost serve``: the MCP server over stdio."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from .. import __version__
from ..host.callers import CALLER
from ..host.engine import Engine
from ..host.toolbox import Listed, Toolbox
from ..pages.host_services import HostServices
from . import http_stream
from .calls import Calls
from .client_roots import ClientRoots
from .framing import describe
from .progress import ProgressSink, progress_token
from .tasks import Tasks
from .tasks_wire import install as install_tasks
from .tools import call_result, definition, error_result
from .wire import StdioWire

log = logging.getLogger("streamhost.server")

INSTRUCTIONS = (
    "streamhost gives you other language models: generate asks one (a second opinion, another vendor, a "
    "delegated sub-task), list_models shows which exist. With a fetcher plugin installed, fetch_url reads a web "
    "page as markdown, in slices, and summarize_urls summarizes up to 20 pages, one section per page. Answers "
    "and summaries stream to the user as they are written."
)
WARMUP_FALLBACK_S = 2.0
"""Warm up this long after start even if the client has not asked anything yet."""


def build_server(engine: Engine, startup_error: str | None = None, calls: Calls | None = None,
                 services: HostServices | None = None) -> Server[Any]:
    """The low-level MCP server for this engine's tools (the plugins' tools that can work with what loaded).

    With ``startup_error`` (a broken config file) the tools are listed but every call reports it.
    ``calls`` lets the transport cancel a tool call the moment the client's cancel is read. ``services``
    with their own ``roots`` replace the one client's (the HTTP face: many callers, its own roots policy).
    """
    services = services or HostServices(engine, model_initiated=True)
    roots = ClientRoots()
    if services.roots is None:
        # One stdio server serves one client: its roots bound where generate's files may be read from.
        services.roots = roots
    toolbox = Toolbox(engine.registry.tools.values(), services)
    tasks = Tasks(toolbox, engine.memory)
    definitions = [definition(listed, tasks=startup_error is None and tasks.supports(name))
                   for name, listed in toolbox.listed.items()]
    calls = calls if calls is not None else Calls()

    def introduce(ctx: Any) -> None:
        roots.seen(ctx.session)
        services.client = services.client or client_name(ctx)

    restricted: dict[tuple[str, ...], list[types.Tool]] = {}

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        caller = CALLER.get()
        if caller is None or caller.models is None:
            return types.ListToolsResult(tools=definitions)
        # A token held to some models reads only those in the descriptions (generate names the models it knows).
        if caller.models not in restricted:
            restricted[caller.models] = [
                definition(Listed(listed.tool, listed.tool.description_for(services), listed.input_schema),
                           tasks=startup_error is None and tasks.supports(name))
                for name, listed in toolbox.listed.items()]
        return types.ListToolsResult(tools=restricted[caller.models])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if startup_error is not None:
            return error_result(startup_error)
        introduce(ctx)
        arguments = dict(params.arguments or {})
        total = toolbox.total(params.name, arguments) if params.name in toolbox.listed else None
        sink = ProgressSink(ctx.session, ctx.request_id, progress_token(ctx.meta),
                            mode=engine.config.streaming.message, total=total, direct=http_stream.current())
        with calls.running(ctx.request_id):
            return call_result(await toolbox.call(params.name, arguments, sink))
        # Cancelled by the client: the transport drops this answer (a cancelled request is never answered).
        return error_result(f"{params.name} was cancelled")

    # Over 2026-era HTTP the SDK checks a call's Mcp-Param headers against the tool's input schema; without this
    # lookup it would run a whole tools/list for every call before the call starts.
    schemas = {listed.name: listed.input_schema for listed in definitions}
    server: Server[Any] = Server("streamhost", version=__version__, instructions=INSTRUCTIONS,
                                 get_tool_input_schema=schemas.get, on_list_tools=list_tools, on_call_tool=call_tool)
    server.middleware.append(_name_invalid_params)
    server.add_notification_handler("notifications/roots/list_changed", types.NotificationParams, roots.changed)
    if startup_error is None:
        install_tasks(server, tasks, introduce)
    return server


def client_name(ctx: Any) -> str | None:
    """The client's name from its ``initialize`` (``clientInfo``), or from the request's ``_meta`` (2026-07-28)."""
    params = getattr(ctx.session, "client_params", None)
    info = getattr(params, "client_info", None)
    meta = ctx.meta if isinstance(ctx.meta, dict) else getattr(ctx.meta, "model_extra", None)
    if info is None and isinstance(meta, dict):
        info = meta.get(types.CLIENT_INFO_META_KEY)
    name = info.get("name") if isinstance(info, dict) else getattr(info, "name", None)
    return name if isinstance(name, str) else None


async def _name_invalid_params(ctx: Any, call_next: Any) -> Any:
    """Say which params were wrong: the SDK's own answer is a bare "Invalid request parameters"."""
    try:
        return await call_next(ctx)
    except ValidationError as exc:
        raise MCPError(code=types.INVALID_PARAMS, message=f"Invalid params for {ctx.method}: {describe(exc)}") from None


class Warmup:
    """Imports the plugins' SDKs in the background once, after the first answer is on the wire.

    Plugins other than the default model's provider wait until no call is running.
    """

    def __init__(self, engine: Engine, calls: Calls) -> None:
        self.engine = engine
        self.calls = calls
        self.started = False
        self.loop = asyncio.get_running_loop()

    def start(self) -> None:
        """Start the warm-up unless it started already or is turned off."""
        if self.started or not self.engine.config.warmup:
            return
        self.started = True
        self.engine.warm_in_background(idle=self.calls.idle, loop=self.loop)


async def serve_stdio(engine: Engine, fd_in: int, fd_out: int, startup_error: str | None = None) -> None:
    """Serve MCP on the given file descriptors until the client closes either, or SIGINT/SIGTERM arrives.

    A stop cancels the running calls (their upstream requests close), answers what it can, and flushes.
    """
    calls = Calls()
    warmup = Warmup(engine, calls)
    server = build_server(engine, startup_error, calls)
    # Warming starts once the first answer is written: that answer never waits on an import.
    wire = StdioWire(fd_in, fd_out, calls, on_first_answer=warmup.start)
    # Calls cancelled because the server stops are left to resume on the next start, not cancelled upstream.
    engine.stopping = lambda: wire.stopping
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for signum in signals:
        loop.add_signal_handler(signum, wire.stop, f"received {signum.name}")
    fallback = loop.call_later(WARMUP_FALLBACK_S, warmup.start)
    try:
        async with wire.streams() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        fallback.cancel()
        for signum in signals:
            loop.remove_signal_handler(signum)
        with anyio.CancelScope(shield=True):
            await engine.aclose()
