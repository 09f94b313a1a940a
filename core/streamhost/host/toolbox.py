"""The tools a host serves: those that can work with what loaded, as listed, and how one is called.

Face-neutral: the MCP server turns a listing into ``tools/list`` and a :class:`ToolResult` into a
``CallToolResult``; the argument checks and the error results are the same for every face.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import CallFailed, StreamhostError
from ..events import Sink
from ..services import Services
from ..tools import Tool, ToolResult
from .arguments import check_arguments

log = logging.getLogger("streamhost.tools")


@dataclass(frozen=True)
class Listed:
    """A tool as this host lists it: its description and input schema for what loaded."""

    tool: Tool
    description: str
    input_schema: dict[str, Any]


class Toolbox:
    """The available tools of a host, by name, in registration order (the built-in ones first)."""

    def __init__(self, tools: Iterable[Tool], services: Services) -> None:
        self.services = services
        self.listed: dict[str, Listed] = {}
        for tool in tools:
            try:
                if tool.available(services):
                    self.listed[tool.name] = Listed(tool, tool.description_for(services),
                                                    tool.input_schema_for(services))
            except Exception:  # a plugin's bug costs its tool, not the host
                log.exception("tool %s could not be listed and is left out", tool.name)

    def total(self, name: str, arguments: dict[str, Any]) -> float | None:
        """How much work a call of ``name`` is, when its tool knows it up front."""
        try:
            return self.listed[name].tool.total(arguments)
        except Exception:
            log.exception("tool %s: total() failed; progress goes without one", name)
            return None

    async def call(self, name: str, arguments: dict[str, Any], sink: Sink) -> ToolResult:
        """Check the arguments and run the tool; every failure becomes an error result that says what to do.

        A cancellation propagates: a cancelled call has no result.
        """
        listed = self.listed.get(name)
        if listed is None:
            return ToolResult(f"unknown tool {name!r}; tools: {', '.join(self.listed)}", is_error=True)
        try:
            check_arguments(name, listed.input_schema, arguments, listed.tool.too_long)
            result = await listed.tool.run(arguments, self.services, sink)
        except CallFailed as failed:
            return ToolResult.failure(failed)
        except StreamhostError as exc:
            return ToolResult(exc.message, {"error_type": type(exc).__name__}, is_error=True)
        except Exception as exc:  # a bug must not stop the host, nor hide what happened
            log.exception("tool %s failed unexpectedly", name)
            return ToolResult(f"{name} failed unexpectedly: {type(exc).__name__}: {exc}", is_error=True)
        if not isinstance(result, ToolResult):
            return ToolResult(f"{name} returned {type(result).__name__}, not a ToolResult (a bug in its plugin)",
                              is_error=True)
        return result
