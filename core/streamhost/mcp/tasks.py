"""MCP tasks: a tool call answered at once with a task handle, then polled (or cancelled) until it ends.

A task is a run: its id is the run's id, and the run is in the store before the task is returned, so a
``tasks/get`` after a restart (or from another replica) still finds it. A task started here is followed live
(its status line is the text's tail); any other is read back from the store. Only the tools that record runs
(``generate``, ``summarize_urls``) take tasks. The wire shapes of both protocol eras are in ``tasks_wire``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import mcp_types as types

from ..events import Update
from ..host.callers import may_see, owner
from ..host.memory import Memory
from ..host.recording import OPENING, Opening
from ..host.sinks import fold_tail
from ..host.toolbox import Toolbox
from ..store.records import new_id
from ..tools import ToolResult
from .tools import call_result

log = logging.getLogger("streamhost.tasks")

TASK_TOOLS = frozenset({"generate", "summarize_urls"})
"""The tools whose calls record a run, and so can be tasks."""
DEFAULT_TTL_MS = 3_600_000
MAX_TTL_MS = 86_400_000
"""How long a finished task's result is kept in memory; the store keeps the run (``[store] keep_days``)."""
POLL_INTERVAL_MS = 1_000
KEPT = 1_000
"""At most this many tasks are held here; older finished ones are read back from the store."""
MAX_TASK_ID_CHARS = 64

Status = Literal["working", "completed", "failed", "cancelled"]


@dataclass(frozen=True)
class TaskState:
    """A task as a client sees it. ``failed`` means the call's result is an error (``isError``)."""

    id: str
    status: Status
    message: str
    created_at: float
    updated_at: float
    ttl_ms: int | None
    result: types.CallToolResult | None = None
    """The call's result once the task has ended (a cancelled task's is the text it wrote)."""
    owner: str | None = None
    """The token that started it (None: a local caller); another token is answered as if it did not exist."""

    @property
    def done(self) -> bool:
        """Whether the task has ended."""
        return self.status != "working"


class _Tracker:
    """The sink a task's call streams into: keeps what ``statusMessage`` shows, the tail of the text or the
    last status line (no progress notifications go out for a task)."""

    def __init__(self) -> None:
        self.line = "working"
        self.updated_at = time.time()
        self._text = ""

    async def send(self, update: Update) -> None:
        if update.kind == "text":
            self._text = (self._text + update.delta)[-400:]
            self.line = update.tail or fold_tail(self._text)
        elif update.status and not update.aside:
            self.line = update.status
        self.updated_at = time.time()


class _Discard:
    async def send(self, update: Update) -> None:
        return None


class LiveTask:
    """A task started in this process: its call, and its result once it ends."""

    def __init__(self, task_id: str, call: asyncio.Task[ToolResult] | None, tracker: _Tracker, ttl_ms: int,
                 owner: str | None = None) -> None:
        self.id = task_id
        self.owner = owner
        self.call = call
        self.tracker = tracker
        self.ttl_ms = ttl_ms
        self.created_at = time.time()
        self.ended_at: float | None = None
        self.result: types.CallToolResult | None = None
        self.cancelled = False

    def end(self, result: types.CallToolResult | None, *, cancelled: bool = False) -> None:
        """Record how the call ended (``result`` None: cancelled, or the runtime failed)."""
        self.result, self.cancelled, self.ended_at = result, cancelled, time.time()

    def state(self) -> TaskState:
        """The task as a client sees it now."""
        status: Status = "working"
        message = self.tracker.line
        if self.ended_at is not None:
            if self.cancelled:
                status, message = "cancelled", "cancelled"
            elif self.result is None or self.result.is_error:
                status, message = "failed", _first_line(self.result)
            else:
                status, message = "completed", "completed"
        return TaskState(self.id, status, message, self.created_at, self.ended_at or self.tracker.updated_at,
                         self.ttl_ms, self.result, self.owner)


class Tasks:
    """The tasks of one server: starts them, reports their state, cancels them."""

    def __init__(self, toolbox: Toolbox, memory: Memory) -> None:
        self.toolbox = toolbox
        self.memory = memory
        self._live: OrderedDict[str, LiveTask] = OrderedDict()
        self._watchers: list[Callable[[TaskState], None]] = []

    @property
    def enabled(self) -> bool:
        """Whether tasks are offered: they need the store (a task is a run)."""
        return self.memory.enabled

    def supports(self, tool: str) -> bool:
        """Whether a call of ``tool`` can be a task."""
        return self.enabled and tool in TASK_TOOLS and tool in self.toolbox.listed

    def watch(self, watcher: Callable[[TaskState], None]) -> None:
        """Call ``watcher`` with a task's state whenever a task starts or ends."""
        self._watchers.append(watcher)

    async def start(self, tool: str, arguments: dict[str, Any], ttl_ms: int | None = None,
                    quick_s: float = 0.0) -> LiveTask | types.CallToolResult:
        """Start a call as a task; it is returned once its run is in the store.

        The call's own result instead when it ended before recording a run (bad arguments, the store failed)
        or, with ``quick_s``, within that many seconds of its start.
        """
        opening = Opening()
        tracker = _Tracker()
        token = OPENING.set(opening)
        try:
            call = asyncio.ensure_future(self.toolbox.call(tool, arguments, tracker))
        finally:
            OPENING.reset(token)
        try:
            await asyncio.wait({call, opening.run_id}, return_when=asyncio.FIRST_COMPLETED)
            if quick_s > 0 and opening.run_id.done():
                await asyncio.wait({call}, timeout=quick_s)
        except BaseException:
            call.cancel()  # the request itself was cancelled before it had a task to give
            raise
        if call.done() and (quick_s > 0 or not opening.run_id.done()):
            return call_result(call.result())
        live = LiveTask(opening.run_id.result(), call, tracker, _ttl(ttl_ms), owner())
        log.info("task %s: a %s call, followed until it ends", live.id, tool)
        self._keep(live)
        call.add_done_callback(lambda done: self._ended(live, done))
        self.memory.cancels.watch(live.id, call)  # a tasks/cancel that reaches another replica stops it too
        return live

    def finished(self, result: types.CallToolResult, ttl_ms: int | None = None) -> LiveTask:
        """A task that ended before it started (its call was refused): for a client that asked for a task."""
        live = LiveTask("x_" + new_id("run")[2:], None, _Tracker(), _ttl(ttl_ms), owner())
        live.end(result)
        self._keep(live)
        return live

    async def state(self, task_id: Any) -> TaskState | None:
        """The task with this id (None: unknown), live here or as the store has its run."""
        if not isinstance(task_id, str) or not task_id or len(task_id) > MAX_TASK_ID_CHARS:
            return None
        live = self._visible(task_id)
        if live is not None:
            return live.state()
        store = await self.memory.store()
        record = None if store is None else await store.run(task_id)
        if record is None or not may_see(record.owner_token):
            return None
        created, updated = record.started_at, record.ended_at or record.started_at
        if record.status == "running":
            return TaskState(task_id, "working", "running", created, updated, None, owner=record.owner_token)
        result = call_result(await self.toolbox.call("wait", {"run": task_id}, _Discard()))
        status: Status = {"completed": "completed", "cancelled": "cancelled"}.get(record.status, "failed")
        message = status if status != "failed" else _first_line(result)
        return TaskState(task_id, status, message, created, updated, None, result, record.owner_token)

    async def outcome(self, task_id: str) -> TaskState | None:
        """The task once it has ended (waits for a live one); None: unknown."""
        live = self._visible(task_id)
        if live is not None and live.call is not None:
            await asyncio.wait({live.call})
            await asyncio.sleep(0)  # its done callback has run: the state is final
        state = await self.state(task_id)
        if state is not None and state.done and state.result is None:
            # Cancelled here: the text it wrote, as the store has it.
            result = call_result(await self.toolbox.call("wait", {"run": task_id}, _Discard()))
            state = TaskState(state.id, state.status, state.message, state.created_at, state.updated_at,
                              state.ttl_ms, result, state.owner)
        return state

    async def cancel(self, task_id: str) -> TaskState | None:
        """Cancel a running task and wait until its run is recorded cancelled; an ended or unknown task is left as
        it is (its state is returned; None: unknown).

        A task running in another process (a replica behind a load balancer) is cancelled through the store, as
        ``wait(cancel=true)`` does: its state is still ``working`` if that process did not act within
        ``remote_cancels.FOLLOW_S``.
        """
        live = self._visible(task_id)
        if live is not None and live.call is not None and not live.call.done():
            live.call.cancel()
            await asyncio.wait({live.call})
            await asyncio.sleep(0)
        elif live is None:
            state = await self.state(task_id)
            if state is None or state.done:
                return state
            await self.toolbox.call("wait", {"run": task_id, "cancel": True}, _Discard())
        return await self.state(task_id)

    def listed(self) -> list[TaskState]:
        """The tasks started here and still kept, newest first."""
        return [live.state() for live in reversed(self._live.values()) if may_see(live.owner)]

    def _visible(self, task_id: str) -> LiveTask | None:
        # Another token's task is not there for this caller (the same answer as an unknown id).
        live = self._live.get(task_id)
        return live if live is not None and may_see(live.owner) else None

    def _keep(self, live: LiveTask) -> None:
        now = time.time()
        self._live[live.id] = live
        for old in list(self._live.values()):
            expired = old.ended_at is not None and now > old.created_at + old.ttl_ms / 1000
            if expired or (len(self._live) > KEPT and old.ended_at is not None):
                del self._live[old.id]
        self._tell(live.state())

    def _ended(self, live: LiveTask, call: asyncio.Task[ToolResult]) -> None:
        if call.cancelled():
            live.end(None, cancelled=True)
        elif call.exception() is not None:
            log.error("task %s: its call failed unexpectedly: %r", live.id, call.exception())
            live.end(None)
        else:
            live.end(call_result(call.result()))
        self._tell(live.state())

    def _tell(self, state: TaskState) -> None:
        for watcher in self._watchers:
            try:
                watcher(state)
            except Exception:
                log.exception("a task watcher failed")


def _ttl(asked: int | None) -> int:
    # What the client asked for, within bounds; the run itself stays in the store as long as the store keeps runs.
    return min(asked if asked is not None and asked > 0 else DEFAULT_TTL_MS, MAX_TTL_MS)


def _first_line(result: types.CallToolResult | None) -> str:
    if result is None:
        return "failed"
    text = next((block.text for block in result.content if isinstance(block, types.TextContent)), "")
    return fold_tail(text.split("\n", 1)[0][:200]) or "failed"
