"""One output text built from fixed pieces (headings, errors) and several relayed calls.

A tool that runs many calls (``summarize_urls``) writes through a Composer: every text update gets
its offset in the whole output, so the deltas of the tool call still add up to its final text, and
every update gets a ``progress`` inside the current step (step ``i`` of ``total`` spans ``[i, i+1)``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from ..events import Sink, Update
from ..host.sinks import Tail

_HALF_WAY = 8
"""Notifications after which a step shows half done: progress inside a step is n / (n + 8)."""


class Composer:
    """Composes the output and its progress; sends to ``sink`` one update at a time, in order."""

    def __init__(self, sink: Sink, *, streaming: bool = True) -> None:
        self.sink = sink
        self.streaming = streaming
        self.parts: list[str] = []
        self.length = 0
        self._tail = Tail()
        self.step = 0
        self.label = ""
        self.first_text_at: float | None = None
        self._in_step = 0
        self._lock = asyncio.Lock()

    @property
    def text(self) -> str:
        """Everything written so far."""
        return "".join(self.parts)

    @property
    def tail(self) -> str:
        """The latest text on one line, for progress messages."""
        return self._tail.text

    def begin(self, step: int, label: str = "") -> None:
        """Start step ``step`` (0-based); status lines of this step are prefixed with ``label``."""
        self.step, self.label, self._in_step = step, label, 0

    async def write(self, text: str) -> None:
        """Append fixed text (a heading, an error) and send it as a text update."""
        if not text:
            return
        async with self._lock:
            offset = self.length
            self.parts.append(text)
            self.length += len(text)
            self._tail.add(text)
            if self.streaming:
                await self._send(Update(kind="text", delta=text, offset=offset, tail=self.tail))

    async def status(self, message: str, *, aside: bool = False) -> None:
        """Send a status line of the current step (``aside``: a remark shown beside the text, see Update)."""
        async with self._lock:
            await self._send(Update(kind="status", status=self._labelled(message), tail=self.tail, aside=aside))

    async def finish(self, total: int, message: str) -> None:
        """The last notification: progress reaches ``total``."""
        async with self._lock:
            await self.sink.send(Update(kind="status", status=message, tail=self.tail, progress=float(total)))

    def relayed(self) -> RelayedSink:
        """A sink for one relayed call whose text becomes part of this output."""
        return RelayedSink(self)

    def statuses_only(self, step: int | None = None) -> Sink:
        """A sink that passes status lines (of ``step``, if given, only while it is current) and drops text."""
        return _StatusSink(self, step)

    def _labelled(self, message: str) -> str:
        return f"{self.label} {message}" if self.label else message

    async def _send(self, update: Update) -> None:
        self._in_step += 1
        fraction = self._in_step / (self._in_step + _HALF_WAY)
        await self.sink.send(replace(update, progress=self.step + fraction))


class RelayedSink:
    """Takes a relay's updates into the composer: its text at the composer's offset."""

    def __init__(self, composer: Composer) -> None:
        self.composer = composer
        self.received = 0

    async def send(self, update: Update) -> None:
        """Append the relay's text, or pass its status line on."""
        if update.kind == "text":
            self.received += len(update.delta)
            if self.composer.first_text_at is None:
                self.composer.first_text_at = time.monotonic()
            await self.composer.write(update.delta)
        else:
            await self.composer.status(update.status, aside=update.aside)

    async def settle(self, text: str) -> None:
        """After the call: append what of its final ``text`` did not stream (a model with streaming off)."""
        if len(text) > self.received:
            if self.composer.first_text_at is None:
                self.composer.first_text_at = time.monotonic()
            rest = text[self.received:]
            self.received = len(text)
            await self.composer.write(rest)


class _StatusSink:
    def __init__(self, composer: Composer, step: int | None) -> None:
        self.composer = composer
        self.step = step

    async def send(self, update: Update) -> None:
        if update.kind == "status" and (self.step is None or self.step == self.composer.step):
            await self.composer.status(update.status)
