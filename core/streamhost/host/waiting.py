"""Following a run past its request: the hand-off of a call that runs too long, and ``wait`` for the rest.

A run handed off in this process is followed live (its :class:`LiveRun`); a run that has ended is read back
from the store, whole.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import anyio

from ..errors import CallFailed, InvalidArgumentError, StreamhostError
from ..events import Sink, Update
from ..services import Generation
from .handoff import LiveRun, LiveRuns
from .memory import Memory

MAX_RUN_ID_CHARS = 64


@dataclasses.dataclass
class _Partial:
    """What a failed run left: its text (the ``result`` of the CallFailed that reports it)."""

    text: str


class Waiting:
    """Hands calls off and follows them; one per engine's services."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self.live = LiveRuns()

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
        self.live.add(live)
        return dataclasses.replace(placeholder, text=text, run=live.id, status="running")

    async def wait(self, run_id: Any, sink: Sink, *, cancel: Any = False, handoff_s: float = 0) -> Generation:
        """The rest of run ``run_id``, streamed into ``sink`` from where its last caller left off; with ``cancel``,
        the run is stopped instead and its text so far returned (``status="cancelled"``)."""
        if not isinstance(run_id, str) or not run_id.strip() or len(run_id) > MAX_RUN_ID_CHARS:
            raise InvalidArgumentError("run must be the run id a handed-off result gave (its streamhost/run)")
        if not isinstance(cancel, bool):
            raise InvalidArgumentError(f"cancel must be true or false, got {cancel!r}")
        live = self.live.get(run_id)
        if live is not None and live.task is not None:
            if cancel:
                live.task.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.wait({live.task})
                return await self._stored(run_id, sink)
            # The hand-off clock starts now: nothing before it waits on the store.
            deadline = time.monotonic() + (handoff_s if handoff_s > 0 else float("inf"))
            await sink.send(Update(kind="status", status=f"following run {run_id}"))
            await live.follow(sink)
            return await self.follow(live, live.placeholder, max(deadline - time.monotonic(), 0.0), owned=False)
        if cancel:
            record = await self._record(run_id)
            if record.status == "running":
                raise StreamhostError(f"run {run_id} is running in another streamhost process: cancel it there")
        return await self._stored(run_id, sink)

    async def _record(self, run_id: str) -> Any:
        store = await self.memory.require("wait")
        record = await store.run(run_id)
        if record is None:
            raise InvalidArgumentError(f"unknown run {run_id!r}: give the streamhost/run id of a handed-off result "
                                       "(`streamhost runs list` shows the recorded runs)")
        return record

    async def _stored(self, run_id: str, sink: Sink) -> Generation:
        """A run that is not live here, as the store has it."""
        record = await self._record(run_id)
        store = await self.memory.require("wait")
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
