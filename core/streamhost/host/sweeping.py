"""Recovery sweeps while serving: runs of a replica that died are marked ``interrupted`` by the survivors.

The store marks dead processes' runs when it opens; a replica that runs for days must keep doing it, or a
replica killed mid-run leaves its runs ``running`` until somebody restarts. A :class:`Sweeper` repeats the
store's recovery in the background, a few times per stale period (one conditional UPDATE on the runs table,
never on a call's path), and tells its listeners which runs it marked, so a resumer (background OpenAI runs
with a checkpoint) can take them over. Of several replicas sweeping at once, each run is reported by exactly
one: the UPDATE re-checks its condition as it marks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..store import recovery

if TYPE_CHECKING:
    from ..store.database import Store

log = logging.getLogger("streamhost.store")

Listener = Callable[["Store", list[str]], "Awaitable[None] | None"]
"""Called with the store and the ids of the runs a sweep (or the store's opening) marked interrupted."""


def sweep_interval_s() -> float:
    """How often to sweep: a quarter of the stale time (a dead replica's runs wait at most 1.25 stale times)."""
    return recovery.stale_s() / 4


class Sweeper:
    """Sweeps one store in the background until stopped; ``listen`` registers who hears of interrupted runs."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._store: Store | None = None
        self._pending: set[asyncio.Task[None]] = set()  # listener calls under way: kept from the collector

    def listen(self, listener: Listener) -> None:
        """Call ``listener(store, run_ids)`` after every sweep that marked runs (sync or async; errors are logged).

        Registered after the store opened, it is called at once with the runs the opening marked.
        """
        self._listeners.append(listener)
        if self._store is not None and self._store.recovered:
            self._schedule(self._tell([listener], self._store, list(self._store.recovered)))

    def start(self, store: Store) -> None:
        """Begin sweeping ``store``; first tell the listeners what its opening marked."""
        if self._task is not None:
            return
        self._store = store
        if store.recovered and self._listeners:
            self._schedule(self._tell(list(self._listeners), store, list(store.recovered)))
        self._task = asyncio.get_running_loop().create_task(self._run(store), name="streamhost-sweeper")

    async def sweep(self, store: Store) -> list[str]:
        """One sweep now: the runs it marked interrupted (listeners told)."""
        marked = await store.recover()
        if marked:
            log.warning("marked %d run(s) of a stopped streamhost process interrupted: %s", len(marked),
                        ", ".join(marked))
            await self._tell(list(self._listeners), store, marked)
        return marked

    async def _run(self, store: Store) -> None:
        while True:
            await asyncio.sleep(sweep_interval_s())
            try:
                await self.sweep(store)
            except Exception as exc:  # a database that is down for a while: try again next time
                log.info("recovery sweep failed (%s: %s); retrying", type(exc).__name__, exc)

    async def _tell(self, listeners: list[Listener], store: Store, run_ids: list[str]) -> None:
        for listener in listeners:
            try:
                outcome = listener(store, run_ids)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("a listener for interrupted runs failed")

    def _schedule(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def stop(self) -> None:
        """Stop sweeping (the store is closing)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
