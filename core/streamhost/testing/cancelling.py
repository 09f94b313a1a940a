"""Cancel a running tool call or a provider's stream, and check that the upstream saw the client leave.

``cancel_call`` sends ``notifications/cancelled`` for a call of an in-process :class:`Host` or a
:class:`Served` child; ``cancel_stream`` cancels the task consuming a stream (the plugin sees
``CancelledError``) or closes the stream (``GeneratorExit``) and fails the test when the plugin
swallows either. ``expect_disconnect`` then waits until :class:`LLMTestServer` recorded the
disconnect. A cancelled request that keeps its upstream connection open keeps costing tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from streamhost.testing.toolcalls import carries_text, deltas

if TYPE_CHECKING:
    from streamhost.testing.host import Host
    from streamhost.testing.llm_server import LLMTestServer
    from streamhost.testing.scripts import RequestRecord
    from streamhost.testing.served import Served

__all__ = ["Cancelled", "cancel_call", "cancel_stream", "expect_disconnect"]


@dataclass
class Cancelled:
    """A call or stream cancelled by the test: when, and what it had produced before."""

    at: float
    """``time.monotonic()`` just before the cancellation was sent."""
    seen: list[Any] = field(default_factory=list)
    """The stream's events, or the call's progress notifications, received before the cancellation."""

    @property
    def text(self) -> str:
        """The text that had streamed before the cancellation."""
        if self.seen and hasattr(self.seen[0], "progress_token"):
            return "".join(deltas(self.seen))
        return "".join(e.text for e in self.seen if isinstance(getattr(e, "text", None), str))


def _first_text(progress: list[Any]) -> bool:
    return any(carries_text(p) for p in progress)


async def cancel_call(
    target: Host | Served,
    tool: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    when: Callable[[list[Any]], bool] | None = None,
    timeout: float = 30.0,
) -> Cancelled:
    """Call ``tool`` with a progress token and cancel it once ``when(progress)`` holds.

    The client sends ``notifications/cancelled``, as an MCP client does when its user gives up.

    :param target: the in-process :class:`Host` or the :class:`Served` child to call.
    :param when: called with the call's progress notifications so far, the cancel is sent once it
        returns true; None: once the first text has arrived.
    :param timeout: seconds to wait for ``when``.
    :raises AssertionError: the call finished before it could be cancelled, or ``when`` did not hold
        within ``timeout``.
    """
    import anyio

    from streamhost.testing.toolcalls import call_tool

    when = when or _first_text
    progress: list[Any] = []
    finished: list[Any] = []
    at = 0.0

    async def run() -> None:
        finished.append(await call_tool(target.session, target._log, tool, arguments, progress))

    deadline = time.monotonic() + timeout
    failure = ""
    async with anyio.create_task_group() as group:
        group.start_soon(run)
        while not when(progress):
            if finished:
                failure = f"{tool} finished before it could be cancelled: {finished[0].text!r}"
            elif time.monotonic() > deadline:
                failure = (f"{tool}: the condition to cancel did not hold within {timeout} s; "
                           f"progress so far: {[p.message for p in progress]}")
            if failure:
                break
            await anyio.sleep(0.01)
        at = time.monotonic()
        group.cancel_scope.cancel()
    # Raised out here: inside the task group it would come wrapped in an exception group.
    if failure:
        raise AssertionError(failure)
    return Cancelled(at=at, seen=list(progress))


async def cancel_stream(
    stream: AsyncIterator[Any],
    *,
    after: int = 1,
    how: Literal["cancel", "close"] = "cancel",
    timeout: float = 30.0,
) -> Cancelled:
    """Read ``after`` events of a provider's stream, then stop it the way the host does.

    ``how="cancel"``: the task consuming the stream is cancelled while it waits for the next event,
    so ``CancelledError`` arrives at the await the plugin is parked on. ``how="close"``: the stream
    is closed between two events (``aclose()``), so ``GeneratorExit`` arrives at its ``yield``.

    :raises AssertionError: the stream ended before ``after`` events; or the plugin swallowed the
        cancellation (the consuming task did not end with ``CancelledError``) or the ``GeneratorExit``
        (it yielded again, or raised something else).
    """
    events: list[Any] = []
    if how == "close":
        # In this task, not one of its own: the plugin's `async with` blocks must exit in the task that
        # entered them (anyio's cancel scopes check it), and aclose() below runs here.
        limit = asyncio.timeout(timeout) if hasattr(asyncio, "timeout") else contextlib.nullcontext()  # 3.11+
        try:
            async with limit:
                for _ in range(after):
                    events.append(await stream.__anext__())
        except StopAsyncIteration:
            raise AssertionError(f"the stream ended after {len(events)} events, before it could be closed") from None
        except asyncio.TimeoutError:
            raise AssertionError(f"the stream gave {len(events)} of {after} events within {timeout} s") from None
        at = time.monotonic()
        try:
            await stream.aclose()  # type: ignore[attr-defined]
        except RuntimeError as exc:  # "async generator ignored GeneratorExit"
            raise AssertionError(f"the stream went on after it was closed: {exc}") from exc
        return Cancelled(at=at, seen=events)

    reached = asyncio.Event()

    async def consume() -> None:
        async for event in stream:
            events.append(event)
            if len(events) >= after:
                reached.set()

    task = asyncio.ensure_future(consume())
    waiting = asyncio.ensure_future(reached.wait())
    try:
        await asyncio.wait({task, waiting}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
    if task.done():
        error = task.exception()
        raise AssertionError(f"the stream ended after {len(events)} events, before it could be cancelled"
                             + (f": {error!r}" if error else ""))
    if not reached.is_set():
        task.cancel()
        raise AssertionError(f"the stream gave {len(events)} of {after} events within {timeout} s")
    at = time.monotonic()
    task.cancel()
    await asyncio.wait({task}, timeout=timeout)
    if not task.done():
        raise AssertionError(f"the stream was still running {timeout} s after it was cancelled: "
                             "a plugin must let CancelledError propagate")
    if not task.cancelled():
        error = task.exception()
        raise AssertionError(f"cancelling the stream raised {error!r}: a plugin must let CancelledError propagate"
                             if error else "the stream swallowed CancelledError: it ended normally after it was "
                             "cancelled")
    return Cancelled(at=at, seen=events)


async def expect_disconnect(
    llm: LLMTestServer,
    model: str | None = None,
    *,
    since: float | None = None,
    within: float = 5.0,
    timeout: float = 30.0,
) -> RequestRecord:
    """Wait until ``llm`` saw the client of a request for ``model`` (any model: None) leave.

    :param since: when the test cancelled (``Cancelled.at``); with it, the disconnect must have come
        within ``within`` seconds after it (a stalled upstream would otherwise hold the
        connection until the server stops).
    :returns: the record of that request.
    :raises AssertionError: no such request disconnected within ``timeout`` seconds, or too late.
    """
    def left(records: list[RequestRecord]) -> list[RequestRecord]:
        return [r for r in records if r.disconnected and (model is None or r.model == model)]

    if not await llm.await_for(lambda records: bool(left(records)), timeout):
        seen = [(r.model, r.tokens_sent, r.disconnected) for r in llm.requests]
        raise AssertionError(f"the upstream never saw the client of {model or 'a request'} leave within "
                             f"{timeout} s (model, tokens sent, disconnected): {seen}")
    record = left(llm.requests)[0]
    if since is not None:
        assert record.disconnected_at is not None
        delay = record.disconnected_at - since
        assert delay < within, f"the upstream connection closed {delay:.1f} s after the cancel (allowed: {within} s)"
    return record
