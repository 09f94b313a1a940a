"""The host in-process with the plugins you give it, behind a real MCP client session.

``async with run_host(my_plugin) as host:`` builds the same engine and MCP server that
``streamhost serve`` runs, connects a real :class:`mcp.ClientSession` to it over in-memory streams
(JSON-RPC framing included, no subprocess), and hands back a :class:`Host`. ``await
host.call("generate", {...})`` returns a :class:`ToolCall` holding the result and the progress
notifications of that call, in arrival order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamhost.testing.toolcalls import ProgressLog, ToolCall, call_tool

if TYPE_CHECKING:
    import mcp_types
    from mcp import ClientSession

    from streamhost.host.engine import Engine

__all__ = ["Host", "ToolCall", "run_host"]


@dataclass
class Host:
    """A running in-process host: the engine, and a connected MCP client session to it."""

    session: ClientSession
    engine: Engine
    _log: ProgressLog = field(default_factory=ProgressLog, repr=False)

    async def call(self, tool: str, arguments: Mapping[str, Any] | None = None, *, progress: bool = True) -> ToolCall:
        """Call ``tool`` and wait for its result. ``progress=False`` sends no progress token."""
        return await call_tool(self.session, self._log, tool, arguments, progress)

    async def tools(self) -> list[mcp_types.Tool]:
        """What ``tools/list`` shows."""
        return list((await self.session.list_tools()).tools)


def _config(config: Mapping[str, Any] | str | Path | None) -> Any:
    from streamhost.host.config import ConfigReader, load_config, tomllib

    if isinstance(config, Path):
        return load_config(config)
    text = config if isinstance(config, str) else ""
    data = tomllib.loads(text) if isinstance(config, str) else dict(config or {})
    # Tests should not append to the user's real metrics file or store unless they ask for it.
    data.setdefault("metrics", {"enabled": False})
    data.setdefault("store", {"enabled": False})
    return ConfigReader(Path("<run_host config>"), text).build(data)


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
        Metrics and the store are off unless the config turns them on.
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
    log = ProgressLog()
    try:
        async with Client(build_server(engine), mode="legacy", message_handler=log) as client:
            yield Host(session=client.session, engine=engine, _log=log)
    finally:
        await engine.aclose()


def _plugin_name(plugin: object, index: int) -> str:
    name = getattr(plugin, "__name__", None)
    return name if isinstance(name, str) else f"{type(plugin).__name__}-{index + 1}"
