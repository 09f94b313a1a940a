"""A real ``streamhost serve`` child process with a real MCP client session on its stdio.

``async with serve(home.env) as served:`` spawns the ``streamhost`` program of this environment with
exactly that environment (see :func:`~streamhost.testing.make_home`), opens the session, and hands
back a :class:`Served`: ``await served.call("generate", {...})`` returns a
:class:`~streamhost.testing.ToolCall` with the progress notifications of that call; every
notification of the session is kept too, with its arrival time.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from streamhost.testing.environment import streamhost_executable
from streamhost.testing.toolcalls import ProgressLog, ToolCall, call_tool, carries_text, deltas, statuses

if TYPE_CHECKING:
    import mcp_types
    from mcp import ClientSession

__all__ = ["Served", "ask_progress", "serve"]


@dataclass
class Served:
    """A running ``streamhost serve`` and the MCP client session connected to its stdio."""

    session: ClientSession
    _log: ProgressLog = field(default_factory=ProgressLog, repr=False)
    _stderr: IO[str] | None = field(default=None, repr=False)
    _stderr_text: str | None = field(default=None, repr=False)

    async def call(self, tool: str, arguments: Mapping[str, Any] | None = None, *, progress: bool = True) -> ToolCall:
        """Call ``tool`` and wait for its result. ``progress=False`` sends no progress token."""
        return await call_tool(self.session, self._log, tool, arguments, progress)

    async def tools(self) -> list[mcp_types.Tool]:
        """What ``tools/list`` shows."""
        return list((await self.session.list_tools()).tools)

    @property
    def progress(self) -> list[mcp_types.ProgressNotificationParams]:
        """Every progress notification of the session so far, of every call, in arrival order."""
        return self._log.received

    @property
    def arrivals(self) -> list[float]:
        """When each of :attr:`progress` arrived (``time.monotonic()``)."""
        return self._log.arrivals

    def text_progress(self) -> list[mcp_types.ProgressNotificationParams]:
        """The notifications of the session that carry text (a ``streamhost/delta`` in ``_meta``)."""
        return [p for p in self.progress if carries_text(p)]

    def texts(self) -> list[str]:
        """The text deltas of the session's notifications, in arrival order."""
        return deltas(self.progress)

    def statuses(self) -> list[str]:
        """The messages of the session's notifications that carry no text."""
        return statuses(self.progress)

    def first_text_at(self) -> float:
        """When the first notification carrying text arrived (``time.monotonic()``)."""
        return next(at for at, p in zip(self.arrivals, self.progress, strict=True) if carries_text(p))

    def stderr_text(self) -> str:
        """What the server wrote to stderr (its log) so far; all of it once the server has stopped."""
        if self._stderr_text is not None:
            return self._stderr_text
        assert self._stderr is not None
        self._stderr.flush()
        with open(self._stderr.name, encoding="utf-8", errors="replace") as log:
            return log.read()


@asynccontextmanager
async def serve(env: Mapping[str, str], *args: str, era: str = "handshake",
                command: str | None = None) -> AsyncIterator[Served]:
    """Spawn ``streamhost serve`` with the environment ``env`` (and nothing else) and connect a real MCP
    client session to its stdio; the server is stopped when the block ends.

    :param env: the child's whole environment, e.g. ``make_home(...).env``.
    :param args: more arguments for ``streamhost serve``.
    :param era: ``"handshake"`` opens with ``initialize``; ``"modern"`` speaks the 2026-07-28 protocol
        (``server/discover``, no ``initialize``).
    :param command: the ``streamhost`` program to run (default: :func:`streamhost_executable`).
    """
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    if era not in ("handshake", "modern"):
        raise ValueError(f"era must be 'handshake' or 'modern', got {era!r}")
    params = StdioServerParameters(command=command or streamhost_executable(), args=["serve", *args], env=dict(env))
    log = ProgressLog()
    with tempfile.NamedTemporaryFile("w+", suffix=".stderr", encoding="utf-8") as errlog:
        served = Served(session=None, _log=log, _stderr=errlog)  # type: ignore[arg-type]
        try:
            async with stdio_client(params, errlog=errlog) as (read, write), \
                    ClientSession(read, write, message_handler=log) as session:
                await (session.discover() if era == "modern" else session.initialize())
                served.session = session
                yield served
        finally:
            # Kept after the file is gone: a test reads the server's log once the block has ended.
            served._stderr_text = served.stderr_text()


async def ask_progress(progress: float, total: float | None, message: str | None) -> None:
    """A progress callback that does nothing: pass it as ``progress_callback=`` to
    ``session.call_tool`` so that the request carries a progress token (:class:`Served` keeps the
    notifications)."""
