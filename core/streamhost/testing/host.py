"""The host in-process with the plugins you give it, behind a real MCP client session.

``async with run_host(my_plugin) as host:`` builds the same engine and MCP server that
``streamhost serve`` runs, connects a real :class:`mcp.ClientSession` to it over in-memory streams
(JSON-RPC framing included, no subprocess), and hands back a :class:`Host`. ``await
host.call("generate", {...})`` returns a :class:`ToolCall` holding the result and the progress
notifications of that call, in arrival order.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import mcp_types
    from mcp import ClientSession

    from streamhost.host.engine import Engine

__all__ = ["Host", "ToolCall", "run_host"]

DELTA_KEY = "streamhost/delta"
_tokens = itertools.count(1)


@dataclass
class ToolCall:
    """One finished tool call: its result and the progress notifications it sent."""

    result: mcp_types.CallToolResult
    progress: list[mcp_types.ProgressNotificationParams] = field(default_factory=list)

    @property
    def is_error(self) -> bool:
        """Whether the result is an ``isError`` result."""
        return bool(self.result.is_error)

    @property
    def text(self) -> str:
        """The result's text content, joined."""
        return "".join(getattr(block, "text", "") for block in self.result.content)

    @property
    def structured(self) -> dict[str, Any]:
        """The result's ``structuredContent``: only ``output_schema`` answers have one (empty otherwise)."""
        return dict(self.result.structured_content or {})

    @property
    def meta(self) -> dict[str, Any]:
        """The result's ``_meta``: ``streamhost/model``, ``streamhost/usage``, … (empty when there is none)."""
        return dict(self.result.meta or {})

    @property
    def deltas(self) -> list[str]:
        """The text pieces the call streamed, from ``_meta["streamhost/delta"]``, in order."""
        return [p.meta[DELTA_KEY] for p in self.progress if p.meta and DELTA_KEY in p.meta]

    @property
    def streamed_text(self) -> str:
        """The concatenated deltas: equal to the final text whenever streaming is on."""
        return "".join(self.deltas)

    @property
    def statuses(self) -> list[str]:
        """The messages of the notifications that carry no text (heartbeats, ``[2/5] fetching …``)."""
        return [p.message or "" for p in self.progress if not (p.meta and DELTA_KEY in p.meta)]


@dataclass
class Host:
    """A running in-process host: the engine, and a connected MCP client session to it."""

    session: ClientSession
    engine: Engine
    _progress: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    async def call(self, tool: str, arguments: Mapping[str, Any] | None = None, *, progress: bool = True) -> ToolCall:
        """Call ``tool`` and wait for its result. ``progress=False`` sends no progress token."""
        if not progress:
            return ToolCall(await self.session.call_tool(tool, dict(arguments or {})))
        token = f"streamhost-testing-{next(_tokens)}"
        received = self._progress.setdefault(token, [])
        try:
            result = await self.session.call_tool(tool, dict(arguments or {}), meta={"progress_token": token})
        finally:
            self._progress.pop(token, None)
        return ToolCall(result, received)

    async def tools(self) -> list[mcp_types.Tool]:
        """What ``tools/list`` shows."""
        return list((await self.session.list_tools()).tools)


async def _record_progress(buckets: dict[str, list[Any]], message: Any) -> None:
    """The client's message handler: file each progress notification under its call's token."""
    # Awaiting nothing here keeps the notifications in arrival order.
    params = getattr(message, "params", None)
    if type(message).__name__ == "ProgressNotification" and params is not None:
        bucket = buckets.get(str(params.progress_token))
        if bucket is not None:
            bucket.append(params)


def _config(config: Mapping[str, Any] | str | Path | None) -> Any:
    from streamhost.host.config import _Reader, load_config, tomllib

    if isinstance(config, Path):
        return load_config(config)
    text = config if isinstance(config, str) else ""
    data = tomllib.loads(text) if isinstance(config, str) else dict(config or {})
    # Tests should not append to the user's real metrics file unless they ask for it.
    data.setdefault("metrics", {"enabled": False})
    return _Reader(Path("<run_host config>"), text).build(data)


@asynccontextmanager
async def run_host(
    *plugins: object,
    config: Mapping[str, Any] | str | Path | None = None,
    installed: bool = False,
) -> AsyncIterator[Host]:
    """Run the host with ``plugins`` registered and yield a :class:`Host` with a connected session.

    :param plugins: plugin objects or modules with ``@hookimpl`` functions, registered in order
        (a module is recorded under its ``__name__``).
    :param config: the config as a dict shaped like the TOML file, TOML text, or a file path.
        Metrics are off unless the config turns them on.
    :param installed: also load the installed entry-point plugins (default: only ``plugins``).
    :raises streamhost.PluginError: one of ``plugins`` failed to register, or was
        skipped (``STREAMHOST_LOAD_PLUGINS`` / ``STREAMHOST_DISABLE_PLUGINS`` apply to it too).
    """
    from mcp import Client

    from streamhost.errors import PluginError
    from streamhost.host.engine import Engine
    from streamhost.host.loading import load_plugins
    from streamhost.mcp.server import build_server

    settings = _config(config)
    extra = [(_plugin_name(plugin, i), plugin) for i, plugin in enumerate(plugins)]
    registry = load_plugins(settings, extra=extra, entry_points=None if installed else [])
    given = {name for name, _ in extra}
    for record in registry.plugins:
        if record.name in given and (record.error or record.skipped):
            # A test of a plugin that did not load would only fail later, with "unknown model": say why now.
            raise PluginError(f"run_host: plugin {record.name} did not load: {record.error or record.skipped}")
    engine = Engine(settings, registry)
    buckets: dict[str, list[Any]] = {}
    try:
        async with Client(build_server(engine), mode="legacy",
                          message_handler=functools.partial(_record_progress, buckets)) as client:
            yield Host(session=client.session, engine=engine, _progress=buckets)
    finally:
        await engine.aclose()


def _plugin_name(plugin: object, index: int) -> str:
    name = getattr(plugin, "__name__", None)
    return name if isinstance(name, str) else f"{type(plugin).__name__}-{index + 1}"
