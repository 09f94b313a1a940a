"""Following a run past its request: the hand-off of a call that runs too long, and ``wait`` for the rest.

A run handed off in this process is followed live (its :class:`LiveRun`); a run that has ended is read back
from the store, whole.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import weakref
from typing import Any

import anyio

from ..errors import CallFailed, InvalidArgumentError, StreamhostError
from ..events import Sink, Update
from ..services import Generation
from . import remote_cancels
from .callers import may_see, owner
from .following import follow_stored
from .handoff import LiveRun
from .memory import Memory

MAX_RUN_ID_CHARS = 64
log = logging.getLogger("streamhost.handoff")
RECORD_WAIT_S = 10.0
"""How long a hand-off waits for its run to be recorded (a busy database) before it returns anyway."""
_later: set[asyncio.Task[None]] = set()  # hand-offs recorded once their run is: kept from the collector
# Whose token handed each live run off (None: a local caller), for every Waiting of this process: only that token
# may follow it. A live run not in here (resumed after a restart) is owned as the store records it.
_owners: weakref.WeakKeyDictionary[LiveRun, str | None] = weakref.WeakKeyDictionary()


@dataclasses.dataclass
class _Partial:
    """What a failed run left: its text (the ``result`` of the CallFailed that reports it)."""

    text: str


class Waiting:
    """Hands calls off and follows them; one per engine's services."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.live = memory.live  # the engine's: a run resumed after a restart is followed like one handed off

    async def follow(self, live: LiveRun, placeholder: Generation, handoff_s: float, *, owned: bool) -> Generation:
        """Wait up to ``handoff_s`` for ``live`` to end: its Generation (or its CallFailed), else the text so far
        with ``status="running"`` while it goes on in the background.

        :param owned: the caller started the call (the first request): if the caller is cancelled before the
            hand-off, so is the call. A ``wait`` caller only stops following.
        """
        task = live.task
        assert task is not None
        try:
            done, _ = await asyncio.wait({task}, timeout=handoff_s)
            while not done and live.id is None:
                # Not recorded (the store failed to open): there is nothing to wait on later, so no hand-off.
                done, _ = await asyncio.wait({task}, timeout=handoff_s)
        except BaseException:
            if owned:
                task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait({task})
            else:
                await live.hand_off()
            raise
        if done:
            return task.result()
        text = await live.hand_off()
        if owned:
            _owners[live] = owner()
        self.live.add(live)
        await self._record_hand_off(live)
        return dataclasses.replace(placeholder, text=text, run=live.id, status="running")

    async def wait(self, run_id: Any, sink: Sink, *, cancel: Any = False, handoff_s: float = 0) -> Generation:
        """The rest of run ``run_id``, streamed into ``sink`` from where its last caller left off; with ``cancel``,
        the run is stopped instead and its text so far returned (``status="cancelled"``)."""
        if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > MAX_RUN_ID_CHARS:
            raise InvalidArgumentError("run must be the run id a handed-off result gave (its streamhost/run)")
        if not isinstance(cancel, bool):
            raise InvalidArgumentError(f"cancel must be true or false, got {cancel!r}")
        live = self.live.get(run_id)
        if live is None and self.memory.resume is not None:
            await self.memory.resume()  # once: a run left by a stopped host may be about to go on here
            live = self.live.get(run_id)
        if live is not None and not await self._may_follow(live, run_id):
            raise _unknown(run_id)  # another token's run: as if it did not exist
        if live is not None and live.task is not None:
            if cancel:
                live.task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait({live.task})
                return await self._stored(run_id, sink)
            # The hand-off clock starts now: nothing before it waits on the store.
            deadline = time.monotonic() + (handoff_s if handoff_s > 0 else float("inf"))
            await sink.send(Update(kind="status", status=f"following run {run_id}"))
            store = await self.memory.store()
            if store is not None:  # a wait in another process may have been given more than this one knows
                live.catch_up(await store.given(run_id) or 0)
            await live.follow(sink)
            return await self.follow(live, live.placeholder, max(deadline - time.monotonic(), 0.0), owned=False)
        if cancel:
            record = await self._record(run_id)
            if record.status == "running":
                return await self._cancel_elsewhere(run_id, sink)
        return await self._stored(run_id, sink, handoff_s=handoff_s)

    async def _cancel_elsewhere(self, run_id: str, sink: Sink) -> Generation:
        """Cancel a run another process runs (through a request in the store): what a local cancel returns, once
        that process has acted on it; else the run's state, ``running``, saying the request stands."""
        store = await self.memory.require("wait")
        ended = await remote_cancels.cancel_elsewhere(store, run_id, sink)
        generation = await self._stored(run_id, sink)
        if ended or generation.status != "running":
            return generation
        return dataclasses.replace(generation, text=(
            f"[streamhost: the cancel of run {run_id} is recorded, but the streamhost process running it has not "
            f"acted on it within {remote_cancels.FOLLOW_S:.0f} s (it is busy, or it stopped: a stopped process's "
            "runs are marked interrupted by the others within a few minutes). It takes effect when that process "
            "reads it.]"))

    async def _may_follow(self, live: LiveRun, run_id: str) -> bool:
        """Whether the caller may follow the live run: a local caller any, a token its own."""
        if owner() is None:
            return True
        if live in _owners:
            return may_see(_owners[live])
        store = await self.memory.store()
        record = None if store is None else await store.run(run_id)
        return record is not None and may_see(record.owner_token)

    async def _record_hand_off(self, live: LiveRun) -> None:
        """Record in the store how much the callers have been given, for a ``wait`` in another process.

        The run id goes out with the hand-off: it must be readable everywhere by then. The journal records a run
        after its first half second, later when the database is busy; so wait for the record (bounded).
        """
        store = await self.memory.store()
        if store is None or live.id is None:
            return
        deadline, pause = time.monotonic() + RECORD_WAIT_S, 0.02
        while True:
            try:
                if await store.hand_off(live.id, live.handed):
                    return
            except Exception as exc:  # the caller has its text; only a wait elsewhere would lack the offset
                log.warning("run %s: cannot record its hand-off (%s)", live.id, exc)
                return
            if live.done:
                return  # ended: its record has all its text
            if time.monotonic() > deadline:
                # The store is far behind: answer now (the id works here) and record the offset once it can be.
                log.warning("run %s: handed off before the store recorded it (%.0f s); a wait in another process "
                            "finds it once it is", live.id, RECORD_WAIT_S)
                later = asyncio.ensure_future(self._record_hand_off_later(store, live))
                _later.add(later)
                later.add_done_callback(_later.discard)
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)

    @staticmethod
    async def _record_hand_off_later(store: Any, live: LiveRun) -> None:
        while not live.done:
            await asyncio.sleep(0.25)
            try:
                if await store.hand_off(live.id, live.handed):
                    return
            except Exception as exc:
                log.warning("run %s: cannot record its hand-off (%s)", live.id, exc)
                return

    async def _record(self, run_id: str) -> Any:
        store = await self.memory.require("wait")
        record = await store.run(run_id)
        if record is None or not may_see(record.owner_token):
            raise _unknown(run_id)
        return record

    async def _stored(self, run_id: str, sink: Sink, *, handoff_s: float | None = None) -> Generation:
        """A run that is not live here, as the store has it; one running in another process is followed through
        the store (until ``handoff_s``) when ``handoff_s`` is given."""
        record = await self._record(run_id)
        store = await self.memory.require("wait")
        if record.status == "running" and handoff_s is not None:
            followed = await follow_stored(store, run_id, sink, handoff_s=handoff_s)
            if followed is not None:
                return followed  # handed off again
            record = await self._record(run_id)
        text = await store.run_text(run_id)
        usage = None
        if record.input_tokens is not None or record.output_tokens is not None:
            usage = {"input_tokens": record.input_tokens, "output_tokens": record.output_tokens}
        generation = Generation(text=text, usage=usage, ttft_ms=record.ttft_ms, duration_ms=record.duration_ms or 0.0,
                                model=record.model or "", run=run_id, thread=record.thread_id)
        if record.status == "completed":
            return generation
        if record.status == "cancelled":
            return dataclasses.replace(generation, status="cancelled")
        if record.status == "running":
            await sink.send(Update(kind="status", status=f"run {run_id} is running in another streamhost process"))
            return dataclasses.replace(generation, status="running")
        why = {"interrupted": "was interrupted (the server stopped before it finished)"}.get(
            record.status, f"failed: {record.error or 'no reason recorded'}")
        failed = CallFailed(StreamhostError(f"run {run_id} {why}"), _Partial(text))
        failed.metadata["run"] = run_id
        raise failed


def _unknown(run_id: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"unknown run {run_id!r}: give the streamhost/run id of a handed-off result "
                                "(`streamhost runs list` shows the recorded runs)")
