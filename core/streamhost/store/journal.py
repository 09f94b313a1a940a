"""The journal: a run's text teed into the store while it streams, in batches, off the stream's path.

``wrap`` puts a sink in front of the caller's: each update goes on at once, and text deltas are also kept
in memory; a background task writes what was kept every ``interval_s`` (and heartbeats the run every
``heartbeat_s``), so the stream never waits for the database. A process killed mid-run loses at most the
text of the last interval; ``finish`` writes the rest in the same transaction that marks the run ended, so a
completed run always has its whole answer.

A run whose provider can resume it also has checkpoints (``checkpoint``): the newest is stored with the run once
the text it covers is stored, never before, so the store never holds a checkpoint ahead of its text. After a
restart the run is resumed from it (``host/resuming.py``). This module imports no database library: it only calls the
store's methods.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streamhost.events import Sink, Update
    from streamhost.store.database import Store
    from streamhost.store.records import RunEnd, RunStart

log = logging.getLogger(__name__)
_finishing: set[asyncio.Task[None]] = set()  # finishes outliving a cancelled caller: kept from the collector


class Journal:
    """Tees one run's text into the store while it streams; ``finish`` ends the run.

    With ``start``, the journal records the run itself, in the background: the call need not wait for the
    database before it sends its request (``create_run`` takes a few ms; a first token can come sooner).
    ``stored`` is how much of the run's text the store holds already (a resumed run's, which goes on from there).
    """

    def __init__(self, store: Store, run_id: str, *, interval_s: float = 0.5, heartbeat_s: float | None = None,
                 start: RunStart | None = None, stored: int = 0) -> None:
        from streamhost.store import recovery  # standard library only

        self._store = store
        self.run_id = run_id
        self._run_start = start
        self._interval_s = interval_s
        # Default: well inside the time after which other replicas take the run for dead.
        self._heartbeat_s = recovery.heartbeat_s() if heartbeat_s is None else heartbeat_s
        self._pieces: list[tuple[int, list[str]]] = []  # unwritten text: (offset, parts), contiguous parts joined
        self._end = -1  # where the last kept piece ends (-1: none kept yet)
        self._chars = stored  # the answer's length so far, counted even when no text is kept
        self._keep_text = store.keep_text
        self._stop = _Stop()
        self._task: asyncio.Task[None] | None = None
        self._warned = False
        self._checkpoint: tuple[str, int] | None = None  # the newest, not stored yet: (state, chars covered)
        self._stored_to = stored  # how far the text in the store reaches without a gap

    @property
    def chars(self) -> int:
        """How long the run's answer is so far (counted even when its text is not kept)."""
        return self._chars

    def wrap(self, sink: Sink) -> Sink:
        """A sink that forwards every update to ``sink`` unchanged and keeps the text deltas for the store."""
        self._start()
        return _JournalingSink(self, sink)

    def keep(self, update: Update) -> None:
        """Keep a text update's delta for the next write (anything else is ignored)."""
        if update.kind != "text" or not update.delta:
            return
        self._chars = max(self._chars, update.offset + len(update.delta))
        if not self._keep_text:
            return
        if self._pieces and update.offset == self._end:
            self._pieces[-1][1].append(update.delta)
        else:
            self._pieces.append((update.offset, [update.delta]))
        self._end = update.offset + len(update.delta)
        if self._task is None:
            self._start()

    def checkpoint(self, state: str, chars: int) -> None:
        """Keep a checkpoint that covers the first ``chars`` characters of the run's text, for the next write."""
        self._checkpoint = (state, chars)

    def _start(self) -> None:
        if self._task is None:
            try:
                self._task = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:
                return  # no loop yet (wrapped outside one): starts with the first update

    async def _run(self) -> None:
        if self._run_start is not None:
            # Recorded once the call is under way (or has ended): its upstream request and first text never
            # queue behind this write, whose statement building runs on the event loop (~1.5 ms).
            await self._stop.wait(self._interval_s)
            # A busy database (its pool timed out) gets another go: an unrecorded run cannot be waited on elsewhere.
            for attempt in (1, 2, 3):
                try:
                    await self._store.create_run(self._run_start)
                    break
                except Exception as exc:
                    if attempt == 3 or "duplicate" in str(exc).lower() or "unique" in str(exc).lower():
                        log.error("run %s: cannot record it in the store (%s)", self.run_id, exc)
                        break
                    await asyncio.sleep(self._interval_s)
        beat_at = time.monotonic() + self._heartbeat_s
        while not self._stop.is_set:
            # Every journal of the process writes on the same ticks of the clock: the writes of all running runs
            # then meet in the store's group commit, one transaction a tick instead of one per run.
            await self._stop.wait(self._interval_s - time.monotonic() % self._interval_s)
            if self._pieces:
                await self._flush()
            if self._checkpoint is not None:
                await self._store_checkpoint()
            if time.monotonic() >= beat_at:
                try:
                    await self._store.heartbeat([self.run_id])
                    beat_at = time.monotonic() + self._heartbeat_s
                except Exception as exc:
                    self._warn(exc)

    async def _flush(self) -> None:
        """Write the kept text; on failure keep it for the next try."""
        pieces, self._pieces = self._pieces, []
        for i, (offset, parts) in enumerate(pieces):
            try:
                await self._store.append_text(self.run_id, offset, "".join(parts))
            except Exception as exc:
                self._warn(exc)
                # Back in front of what came meanwhile; a retried chunk that grew replaces the old one.
                self._pieces[:0] = pieces[i:]
                return
            if offset <= self._stored_to:
                self._stored_to = max(self._stored_to, offset + sum(len(part) for part in parts))

    async def _store_checkpoint(self) -> None:
        """Store the newest checkpoint if the stored text covers it (without kept text, its count is the answer's)."""
        assert self._checkpoint is not None
        state, chars = self._checkpoint
        if chars > (self._stored_to if self._keep_text else self._chars):
            return
        try:
            await self._store.save_checkpoint(self.run_id, state, chars)
        except Exception as exc:
            self._warn(exc)
            return
        if self._checkpoint == (state, chars):
            self._checkpoint = None

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            log.warning("run %s: cannot journal its text (%s); retrying while it streams", self.run_id, exc)

    async def finish(self, end: RunEnd) -> None:
        """Write the text left, then record how the run ended; completes even when the caller is cancelled.

        A store failure is logged, not raised: the answer itself has reached the caller.
        """
        task = asyncio.get_running_loop().create_task(self._finish(end))
        _finishing.add(task)
        task.add_done_callback(_finishing.discard)
        await asyncio.shield(task)

    async def _finish(self, end: RunEnd) -> None:
        self._stop.set()
        self._start()  # a journal never wrapped still records its run (``start``) before ending it
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)  # ends after the write it is doing
        if end.chars is None:
            end = dataclasses.replace(end, chars=self._chars)
        for attempt in (1, 2):
            # The text left and the end in one transaction: one write instead of two, on the caller's way out.
            # The newest checkpoint goes with them: all the text it covers is written now.
            text = [(offset, "".join(parts)) for offset, parts in self._pieces]
            try:
                await self._store.finish_run(self.run_id, end, text=text, checkpoint=self._checkpoint)
                return
            except Exception as exc:
                if attempt == 2:
                    log.error("run %s: cannot record its end in the store (%s)", self.run_id, exc)
                else:
                    await asyncio.sleep(0.1)


class _Stop:
    """Set once, when the run ends. Waiting for it with a time-out costs a timer, not a task: ``asyncio.wait_for``
    starts a task per wait, and every running run's journal waits twice a second."""

    def __init__(self) -> None:
        self.is_set = False
        self._waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        self.is_set = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Return when set, or after ``timeout`` seconds."""
        if self.is_set:
            return
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _JournalingSink:
    """Forwards updates to the caller's sink and hands text deltas to the journal."""

    def __init__(self, journal: Journal, sink: Sink) -> None:
        self._journal = journal
        self._sink = sink

    async def send(self, update: Update) -> None:
        self._journal.keep(update)
        await self._sink.send(update)
