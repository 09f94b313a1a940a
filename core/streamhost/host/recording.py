"""Runs and threads around a call: each generate and summarize call is a run journaled while it streams, and a
call that names a thread is sent the thread's earlier turns and adds its own.

With the store off (or failing to open) calls run as before, unrecorded; only threads need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import anyio

from ..errors import CallFailed, InvalidArgumentError, StreamhostError
from ..events import Sink
from ..providers import Message
from ..services import Generation
from ..store.records import FileRecord, RunEnd, RunStart, Turn, new_id
from .callers import owner, owns_thread
from .checkpoints import tracking
from .memory import Memory

log = logging.getLogger("streamhost.runs")
MAX_THREAD_ID_CHARS = 64
FINISH_TIMEOUT_S = 10
"""How long a cancelled call may take to write its run's end before it gives up on it."""
NEW_THREAD = "new"
STOPPED = "The host stopped before the run finished; it is resumed from its checkpoint when the server starts again."
HOST_STOPPED = "The host stopped before the run finished; the text up to its last journal entry is kept."


class Opening:
    """A call whose run must be in the store before its caller answers (an MCP task): ``run_id`` resolves to the
    run's id once the run is recorded. Such a call is followed to its end, never handed off."""

    def __init__(self) -> None:
        self.run_id: asyncio.Future[str] = asyncio.get_running_loop().create_future()


OPENING: ContextVar[Opening | None] = ContextVar("streamhost_opening", default=None)
"""Set around a call started as a task; the first run the call records is the task's."""


@dataclass
class Thread:
    """The thread a call continues: its id, its earlier turns, and whether the store has it yet."""

    id: str
    history: tuple[Message, ...] = ()
    created: bool = True


@dataclass
class RunScope:
    """One run while it streams: its id (None when unrecorded) and the sink that journals its text."""

    id: str | None
    sink: Sink
    end: RunEnd | None = None
    """Set by the caller once the call completed: its usage, cost and timings."""
    files: Sequence[FileRecord] = field(default_factory=list)
    estimate: Callable[[int], RunEnd] | None = None
    """Set by the caller: for a run that did not complete, its tokens and cost estimated from the characters it
    streamed (the upstream charged for them, and reports no usage when the stream is cut short)."""


class Recorder:
    """What the services record of their calls."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    async def thread(self, value: Any) -> Thread | None:
        """The thread named by a call's ``thread`` argument (None: no thread); a bad or unknown id is an error."""
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_THREAD_ID_CHARS:
            raise InvalidArgumentError('thread must be "new" or a thread id from an earlier result '
                                       f"(its streamhost/thread), got {_shown(value)}")
        store = await self.memory.require("threads")
        if not store.keep_text:
            raise StreamhostError("threads need the conversation kept, and [store] keep_text is false: set it "
                                  "to true to use threads")
        if value == NEW_THREAD:
            return Thread(new_id("thread"), created=False)
        # One read: the host creates a thread with its first turns, so a thread without turns is no thread.
        turns = await store.history(value)
        # Another token's thread is answered as if it did not exist: its id reveals nothing.
        if not turns or not await owns_thread(store, value):
            raise InvalidArgumentError(f'unknown thread {value!r}: give "new" to start one, or an id from an '
                                       "earlier result's streamhost/thread (`streamhost threads list` shows them)")
        return Thread(value, tuple(Message(role, content) for role, content in turns))

    async def add_turns(self, thread: Thread, prompt: str, generation: Generation, run_id: str | None) -> None:
        """Append the question and its answer to ``thread`` (created now if it is new)."""
        store = await self.memory.require("threads")
        if not thread.created:
            await store.create_thread(thread.id, owner_token=owner())
            thread.created = True
        now = time.time()
        await store.append_turns(thread.id, [
            Turn(role="user", content=prompt, run_id=run_id, at=now),
            Turn(role="assistant", content=generation.text, model=generation.model, run_id=run_id, at=now),
        ])

    async def spent_since(self, since: float) -> float:
        """USD spent by the runs started since ``since`` (0 without a store)."""
        store = await self.memory.store()
        return 0.0 if store is None else await store.cost_since(since)

    async def spent_by(self, token: str, since: float) -> float:
        """USD spent by the token's runs started since ``since``; a token's budget needs the store."""
        store = await self.memory.require("per-token budgets")
        return await store.cost_since(since, owner_token=token)

    @asynccontextmanager
    async def run(self, tool: str, model: str | None, sink: Sink, *, prompt: str | None,
                  thread: Thread | None = None, files: Sequence[FileRecord] = ()) -> AsyncIterator[RunScope]:
        """Record one call as a run: journal the text that passes through ``scope.sink``, then its end.

        The end is ``scope.end`` when the body completes (completed), else failed (with the error) or
        cancelled; a CallFailed leaving the body carries the run id in its metadata.
        """
        store = await self.memory.store()
        if store is None:
            yield RunScope(None, sink)
            return
        from ..store.journal import Journal

        run_id = new_id("run")
        start = RunStart(id=run_id, tool=tool, model=model, thread_id=thread.id if thread else None,
                         prompt=prompt if store.keep_text else None, files=list(files), owner_token=owner())
        opening = OPENING.get()
        if opening is not None and not opening.run_id.done():
            # A task is answered with this run's id: the run must be readable before that answer goes out.
            await store.create_run(start)
            journal = Journal(store, run_id)
            opening.run_id.set_result(run_id)
        else:
            # The journal records the run's start in the background: the upstream request does not wait for it.
            journal = Journal(store, run_id, start=start)
        scope = RunScope(run_id, journal.wrap(sink), files=files)
        # A generate run's checkpoints go to its journal (one model call: a later start can resume it).
        tracked = tracking(journal.checkpoint) if tool == "generate" else contextlib.nullcontext()
        try:
            with tracked as resumable:
                yield scope
        except BaseException as exc:
            if isinstance(exc, CallFailed):
                exc.metadata.setdefault("run", run_id)
            end = _failed_end(exc, model)
            if scope.estimate is not None and journal.chars > 0:
                figures = scope.estimate(journal.chars)
                end = dataclasses.replace(end, input_tokens=figures.input_tokens, output_tokens=figures.output_tokens,
                                          usage_estimated=True, cost_usd=figures.cost_usd)
            if resumable is not None and resumable.stopped:  # the host stopped it, no user: a later start resumes it
                end = dataclasses.replace(end, status="interrupted", error=STOPPED if resumable.state else HOST_STOPPED)
            await _finish(journal, end)
            raise
        await _finish(journal, scope.end or RunEnd(status="completed", ttft_ms=None, duration_ms=None,
                                                   input_tokens=None, output_tokens=None, usage_estimated=False,
                                                   cost_usd=None, error=None))


async def _finish(journal: Any, end: RunEnd) -> None:
    # Shielded and bounded: a cancelled call still records that it was cancelled, and a stuck store never
    # holds the caller longer than FINISH_TIMEOUT_S.
    with anyio.CancelScope(shield=True), anyio.move_on_after(FINISH_TIMEOUT_S):
        try:
            await journal.finish(end)
        except Exception as exc:
            log.error("recording the end of a run failed: %s: %s", type(exc).__name__, exc)


def _failed_end(exc: BaseException, model: str | None) -> RunEnd:
    if isinstance(exc, (asyncio.CancelledError, anyio.get_cancelled_exc_class(), KeyboardInterrupt)):
        status, error = "cancelled", None
    elif isinstance(exc, CallFailed):
        status, error = "failed", exc.error.message
    elif isinstance(exc, StreamhostError):
        status, error = "failed", exc.message
    else:
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    result = getattr(exc, "result", None)
    return RunEnd(status=status, ttft_ms=getattr(result, "ttft_ms", None),
                  duration_ms=getattr(result, "duration_ms", None), input_tokens=None, output_tokens=None,
                  usage_estimated=False, cost_usd=None, error=error, model=model)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
