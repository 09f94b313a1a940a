"""The MCP face of the tools: a listed tool as an MCP tool definition, a tool result as a ``CallToolResult``."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from ..host.toolbox import Listed
from ..tools import ToolResult

META_PREFIX = "streamhost/"
"""A result's metadata keys are published under this prefix in its ``_meta``."""


def definition(listed: Listed, *, tasks: bool = False) -> types.Tool:
    """What ``tools/list`` shows of a tool: no output schema (results are text; see ``call_result``).

    ``tasks``: a call may be a task (2025-11-25's ``execution.taskSupport``; 2026-07-28 lists no such field).
    """
    hints = listed.tool.annotations
    annotations = types.ToolAnnotations(title=hints.title, read_only_hint=hints.read_only,
                                        destructive_hint=hints.destructive, idempotent_hint=hints.idempotent,
                                        open_world_hint=hints.open_world)
    return types.Tool(name=listed.tool.name, description=listed.description, input_schema=listed.input_schema,
                      annotations=annotations,
                      execution=types.ToolExecution(task_support="optional") if tasks else None)


def meta_of(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """A result's ``_meta``: each field under its ``streamhost/`` key (None when there is none)."""
    return {f"{META_PREFIX}{name}": value for name, value in metadata.items()} or None


def call_result(result: ToolResult) -> types.CallToolResult:
    """The text is what the calling model reads; the metadata goes to ``_meta``.

    ``structuredContent`` only where it is the answer itself (an ``output_schema`` call): a client that
    finds it hands it to the model instead of the text.
    """
    return types.CallToolResult(content=[types.TextContent(type="text", text=result.text)],
                                structured_content=result.structured, _meta=meta_of(result.metadata),
                                is_error=result.is_error)


def error_result(message: str) -> types.CallToolResult:
    """An ``isError`` result with a message the user can act on."""
    return call_result(ToolResult(message, is_error=True))
