"""Cancelling a run that another process runs (replicas behind a load balancer, or a run handed off under
``streamhost serve`` and cancelled from another process).

A cancel lands on whichever process the load balancer picked. When the run is not going on there, that process
records the request in the store (:func:`cancel_elsewhere`) and follows the run's record until it ends. The process
running it has one :class:`RemoteCancels` poller: about once a second, one query for requests among its runs that
outlive their request (handed off, resumed, or MCP tasks), and each one asked for is cancelled exactly as a local
``wait(cancel=true)`` does (the call's task is cancelled: its upstream request is closed, and a background run is
cancelled upstream, because the host is not stopping). The run then ends ``cancelled`` with its text so far, which
is what the requesting process reads back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from ..events import Sink, Update
from .handoff import LiveRuns

if TYPE_CHECKING:
    from ..store.database import Store

log = logging.getLogger("streamhost.handoff")

POLL_S = 1.0
"""How often the process running runs asks the store whether any of them was asked to stop."""
FOLLOW_S = 30.0
"""How long a cancel from another process waits for the run to end before it answers that the request stands."""
_STEP_S = 0.25


class RemoteCancels:
    """Polls one store for cancel requests aimed at this process's runs and cancels those runs; one per process."""

    def __init__(self, live: LiveRuns) -> None:
        self._live = live
        self._calls: dict[str, asyncio.Task[Any]] = {}
        self._cancelled: set[str] = set()  # cancelled once: a second cancel could cut the call's shielded cleanup
        self._task: asyncio.Task[None] | None = None

    def watch(self, run_id: str, call: asyncio.Task[Any]) -> None:
        """Let a cancel from another process stop ``call``, the call recording run ``run_id`` (an MCP task: not
        among the live runs), until it ends."""
        self._calls[run_id] = call
        call.add_done_callback(lambda _: self._calls.pop(run_id, None))

    def start(self, store: Store) -> None:
        """Begin polling ``store`` (idle, with no query, while this process runs nothing past its request)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(store), name="streamhost-remote-cancels")

    async def stop(self) -> None:
        """Stop polling (the store is closing)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _running(self) -> dict[str, asyncio.Task[Any]]:
        running = {run_id: live.task for run_id in self._live.ids()
                   if (live := self._live.get(run_id)) is not None and live.task is not None}
        running.update(self._calls)
        return {run_id: task for run_id, task in running.items() if not task.done()}

    async def poll(self, store: Store) -> list[str]:
        """One poll now: the runs it cancelled."""
        running = self._running()
        self._cancelled &= running.keys()
        if not running:
            return []
        asked = [run_id for run_id in await store.cancel_requests(sorted(running)) if run_id not in self._cancelled]
        for run_id in asked:
            log.info("run %s: cancelled, as another streamhost process asked", run_id)
            self._cancelled.add(run_id)
            running[run_id].cancel()
        return asked

    async def _run(self, store: Store) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                await self.poll(store)
            except Exception as exc:  # a database that is down for a while: try again next time
                log.info("polling for cancel requests failed (%s: %s); retrying", type(exc).__name__, exc)


async def cancel_elsewhere(store: Store, run_id: str, sink: Sink, *, follow_s: float | None = None) -> bool:
    """Ask the process running ``run_id`` to cancel it, and wait (up to ``follow_s``, default :data:`FOLLOW_S`)
    until the run has ended; False when it has not by then (its process is busy or gone: the request stands until
    that process reads it)."""
    await sink.send(Update(kind="status", status=f"run {run_id} runs in another streamhost process: asking it to "
                                                 "cancel the run"))
    if not await store.request_cancel(run_id):
        return True  # it ended before the request was stored
    deadline = time.monotonic() + (FOLLOW_S if follow_s is None else follow_s)
    while time.monotonic() < deadline:
        await asyncio.sleep(_STEP_S)
        record = await store.run(run_id)
        if record is None or record.status != "running":
            return True
    return False
