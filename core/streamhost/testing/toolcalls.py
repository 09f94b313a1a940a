"""Tool calls made by a test's MCP client session: the result of one call with the progress
notifications it sent (:class:`ToolCall`), and the client-side recording that files each
notification under its call. Shared by the in-process host and the served child process."""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from streamhost.mcp.progress import DELTA_KEY

if TYPE_CHECKING:
    import mcp_types
    from mcp import ClientSession

__all__ = ["ToolCall"]

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
        return deltas(self.progress)

    @property
    def streamed_text(self) -> str:
        """The concatenated deltas: equal to the final text whenever streaming is on."""
        return "".join(self.deltas)

    @property
    def statuses(self) -> list[str]:
        """The messages of the notifications that carry no text (heartbeats, ``[2/5] fetching …``)."""
        return statuses(self.progress)


def carries_text(notification: Any) -> bool:
    """Whether a progress notification carries streamed text (a delta in its ``_meta``)."""
    return bool(notification.meta) and DELTA_KEY in notification.meta


def deltas(progress: list[Any]) -> list[str]:
    """The text deltas of ``progress`` notifications, in order."""
    return [p.meta[DELTA_KEY] for p in progress if carries_text(p)]


def statuses(progress: list[Any]) -> list[str]:
    """The messages of the ``progress`` notifications that carry no text."""
    return [p.message or "" for p in progress if not carries_text(p)]


@dataclass
class ProgressLog:
    """The client session's message handler: keeps every progress notification, when it arrived
    (``time.monotonic()``), and files it under the call whose token it names."""

    received: list[Any] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    calls: dict[str, list[Any]] = field(default_factory=dict)

    async def __call__(self, message: Any) -> None:
        # Awaiting nothing here keeps the notifications in arrival order.
        params = getattr(message, "params", None)
        if type(message).__name__ == "ProgressNotification" and params is not None:
            self.arrivals.append(time.monotonic())
            self.received.append(params)
            bucket = self.calls.get(str(params.progress_token))
            if bucket is not None:
                bucket.append(params)


async def call_tool(session: ClientSession, log: ProgressLog, tool: str, arguments: Mapping[str, Any] | None,
                    progress: bool | list[Any] = True) -> ToolCall:
    """Call ``tool`` on ``session``; with ``progress`` (True, or the list to fill as they arrive) the
    request carries a progress token and the call's notifications are kept."""
    if progress is False:
        return ToolCall(await session.call_tool(tool, dict(arguments or {})))
    token = f"streamhost-testing-{next(_tokens)}"
    received = log.calls.setdefault(token, progress if isinstance(progress, list) else [])
    try:
        result = await session.call_tool(tool, dict(arguments or {}), meta={"progress_token": token})
    finally:
        log.calls.pop(token, None)
    return ToolCall(result, received)
