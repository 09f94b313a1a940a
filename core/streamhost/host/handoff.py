"""Calls that outlive their request: a call still running at the hand-off time returns what it has and goes on
in the background (journaling into the store as before); ``wait`` follows it from where its caller left off.

A :class:`LiveRun` is the sink such a call streams into. It keeps the text, forwards every update to whoever
follows the run now (the first request, later a ``wait``), and remembers how much text the last follower was
given, so the next one is sent exactly the rest: no text lost, none repeated.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..events import Sink, Update
from .sinks import fold_tail

log = logging.getLogger("streamhost.handoff")

DEFAULT_HANDOFF_S = 50.0
"""Under the 60 s at which Claude Desktop and the TypeScript SDK's clients give up on a call."""
CLIENT_HANDOFF_S = {"claude-code": 110.0}
"""Clients known to wait longer: Claude Code moves a call to the background (and drops its progress) at 2 min."""


def handoff_time(configured: float | None, client: str | None) -> float:
    """The hand-off time for a call from ``client``: ``[limits] handoff_s`` when set (0: never), else the client's
    known limit, else :data:`DEFAULT_HANDOFF_S`."""
    if configured is not None:
        return float(configured)
    return CLIENT_HANDOFF_S.get((client or "").lower(), DEFAULT_HANDOFF_S)


class LiveRun:
    """A running call's text and its current follower; a :class:`Sink` (the call streams into it)."""

    def __init__(self, follower: Sink | None, text: str = "") -> None:
        """:param text: the run's text before this call's (a run resumed after a restart: what the store held)."""
        self.id: str | None = None
        self.task: asyncio.Task[Any] | None = None
        self.placeholder: Any = None
        """The result a hand-off fills in (the call's model and thread, no text yet)."""
        self._parts: list[str] = [text] if text else []
        self._length = len(text)
        self._follower = follower
        self._given = 0
        self._handed = 0
        self._lock = asyncio.Lock()

    @property
    def text(self) -> str:
        """The text so far."""
        text = "".join(self._parts)
        self._parts = [text]
        return text

    @property
    def done(self) -> bool:
        """Whether the call has ended (completed, failed or cancelled)."""
        return self.task is not None and self.task.done()

    async def send(self, update: Update) -> None:
        """Keep a text update's delta and forward the update to the follower, if there is one."""
        async with self._lock:
            if update.kind == "text":
                self._parts.append(update.delta)
                self._length = update.offset + len(update.delta)
            follower = self._follower
            if follower is None:
                return
            try:
                await follower.send(update)
            except Exception as exc:  # a follower that went away must not stop the call
                log.info("run %s: its follower stopped taking updates (%s); the run goes on", self.id, exc)
                self._follower = None
                return
            if update.kind == "text":
                self._given = self._length

    async def hand_off(self) -> str:
        """Stop forwarding; the text given to followers since the previous hand-off, which this one's result holds
        (the first hand-off's: all of it so far)."""
        async with self._lock:
            self._follower = None
            piece, self._handed = self.text[self._handed:self._given], self._given
            return piece

    @property
    def handed(self) -> int:
        """How many characters of the text callers have been given up to the last hand-off."""
        return self._handed

    def catch_up(self, given: int) -> None:
        """Count the first ``given`` characters as given (a caller in another process was handed them)."""
        self._given, self._handed = max(self._given, given), max(self._handed, given)

    async def follow(self, follower: Sink) -> None:
        """Make ``follower`` the one updates go to, after sending it the text since the last hand-off."""
        async with self._lock:
            text = self.text
            if len(text) > self._given:
                await follower.send(Update(kind="text", delta=text[self._given:], offset=self._given,
                                           tail=fold_tail(text)))
            self._given = len(text)
            self._follower = follower


class LiveRuns:
    """The runs of this process that are still going after a hand-off, by run id."""

    def __init__(self) -> None:
        self._runs: dict[str, LiveRun] = {}

    def add(self, live: LiveRun) -> None:
        """Track ``live`` until its call ends."""
        assert live.id is not None and live.task is not None
        self._runs[live.id] = live
        live.task.add_done_callback(lambda _: self._runs.pop(live.id or "", None))

    def get(self, run_id: str) -> LiveRun | None:
        """The live run with this id, if it is still going here."""
        return self._runs.get(run_id)

    def ids(self) -> list[str]:
        """The ids of the runs still going here."""
        return list(self._runs)

    async def cancel_all(self) -> None:
        """Cancel every live run (the host is stopping): each is recorded as cancelled."""
        runs = list(self._runs.values())
        for live in runs:
            if live.task is not None:
                live.task.cancel()
        await asyncio.gather(*(live.task for live in runs if live.task is not None), return_exceptions=True)
