"""The relay: consumes a provider's event stream and feeds a sink, knowing nothing of MCP.

It coalesces fast deltas, sends heartbeats while the model is silent, retries only before any text
arrived, enforces the call's deadline, and closes the upstream stream however the call ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ProviderError, StreamhostError, UpstreamTimeoutError
from .events import Event, Status, TextDelta, Usage
from .sinks import Sink, Tail, Update

log = logging.getLogger("streamhost.relay")
_END = object()


@dataclass(frozen=True)
class RelaySettings:
    """How one call is relayed; built by the engine from the config."""

    label: str = "model"
    streaming: bool = True
    coalesce_ms: float = 50
    chunk_delay_ms: float = 0
    heartbeat_s: float = 10
    deadline_s: float = 600
    max_retries: int = 2
    retry_max_wait_s: float = 30


@dataclass
class RelayResult:
    """The whole text and what is known about how it came."""

    text: str
    usage: Usage | None = None
    ttft_ms: float | None = None
    duration_ms: float = 0.0
    chunks: int = 0
    attempts: int = 1


class GenerationFailed(Exception):
    """A call failed; carries the user-facing error and the text already streamed."""

    def __init__(self, error: StreamhostError, result: RelayResult) -> None:
        super().__init__(error.message)
        self.error = error
        self.result = result


@dataclass
class _Failure:
    error: BaseException


@dataclass
class _State:
    started: float
    parts: list[str] = field(default_factory=list)
    length: int = 0
    pending: list[str] = field(default_factory=list)
    tail: Tail = field(default_factory=Tail)
    usage: Usage | None = None
    first_token: float | None = None
    chunks: int = 0
    last_text_sent: float = float("-inf")
    last_sent: float = 0.0
    attempts: int = 0

    def result(self) -> RelayResult:
        now = time.monotonic()
        ttft = None if self.first_token is None else (self.first_token - self.started) * 1000
        return RelayResult(
            text="".join(self.parts), usage=self.usage, ttft_ms=ttft,
            duration_ms=(now - self.started) * 1000, chunks=self.chunks, attempts=self.attempts,
        )


class Relay:
    """Runs one call: ``await Relay(settings).run(open_stream, sink)``."""

    def __init__(self, settings: RelaySettings, on_first_token: Callable[[float], None] | None = None) -> None:
        self.settings = settings
        self.on_first_token = on_first_token
        self.gap = max(settings.coalesce_ms, settings.chunk_delay_ms) / 1000

    async def run(self, open_stream: Callable[[], AsyncIterator[Event]], sink: Sink) -> RelayResult:
        """Relay the stream that ``open_stream()`` starts; raise GenerationFailed with partial text."""
        state = _State(started=time.monotonic())
        state.last_sent = state.started
        deadline = state.started + self.settings.deadline_s
        while True:
            state.attempts += 1
            try:
                await self._attempt(open_stream(), sink, state, deadline)
                return state.result()
            except StreamhostError as exc:
                wait = self._retry_wait(exc, state, deadline)
                if wait is None:
                    raise GenerationFailed(exc, state.result()) from exc
                # Provider messages usually name the model already ("openai/o3: rate limited ..."): no echo.
                label = self.settings.label
                said = exc.message if exc.message.startswith(label) else f"{label}: {exc.message}"
                log.info("%s; retrying in %.1f s", said, wait)
                await self._status(sink, state, f"{said} — retrying in {wait:.1f} s "
                                   f"(attempt {state.attempts + 1} of {self.settings.max_retries + 1})")
                await asyncio.sleep(wait)

    def _retry_wait(self, exc: StreamhostError, state: _State, deadline: float) -> float | None:
        if not exc.retryable or state.first_token is not None or state.attempts > self.settings.max_retries:
            return None
        hinted = getattr(exc, "retry_after", None)
        wait = hinted if hinted is not None else min(0.5 * 2 ** (state.attempts - 1), 8.0)
        if wait > self.settings.retry_max_wait_s or time.monotonic() + wait >= deadline:
            return None
        return max(wait, 0.0)

    async def _attempt(self, stream: AsyncIterator[Event], sink: Sink, state: _State, deadline: float) -> None:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        producer = asyncio.create_task(_pump(stream, queue))
        try:
            while True:
                item = await self._next(queue, state, deadline)
                while item is not None:
                    if item is _END:
                        await self._flush(sink, state)
                        return
                    if isinstance(item, _Failure):
                        await self._flush(sink, state)
                        raise _as_streamhost_error(item.error, self.settings.label)
                    await self._handle(item, sink, state)
                    item = queue.get_nowait() if not queue.empty() else None
                now = time.monotonic()
                if state.pending and now >= state.last_text_sent + self.gap:
                    await self._flush(sink, state)
                if now >= state.last_sent + self.settings.heartbeat_s:
                    await self._status(sink, state, self._heartbeat(now, state))
                if now >= deadline:
                    await self._flush(sink, state)
                    raise UpstreamTimeoutError(
                        f"{self.settings.label} did not finish within {self.settings.deadline_s:g} s "
                        "(limits.deadline_s in the config)"
                    )
        finally:
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    async def _next(self, queue: asyncio.Queue[Any], state: _State, deadline: float) -> Any:
        if not queue.empty():
            return queue.get_nowait()
        wake = min(state.last_sent + self.settings.heartbeat_s, deadline)
        if state.pending:
            wake = min(wake, state.last_text_sent + self.gap)
        timeout = wake - time.monotonic()
        if timeout <= 0:
            return None
        try:
            return await asyncio.wait_for(queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _handle(self, event: Any, sink: Sink, state: _State) -> None:
        if isinstance(event, TextDelta):
            if not event.text:
                return
            state.chunks += 1
            state.pending.append(event.text)
            if state.first_token is None:
                state.first_token = time.monotonic()
                await self._flush(sink, state)
                if self.on_first_token is not None:  # after the text is out: it may write a file
                    self.on_first_token((state.first_token - state.started) * 1000)
        elif isinstance(event, Usage):
            state.usage = event
        elif isinstance(event, Status):
            await self._flush(sink, state)
            await self._status(sink, state, event.message)
        else:
            log.warning("%s: ignoring unknown event %r", self.settings.label, type(event).__name__)

    async def _flush(self, sink: Sink, state: _State) -> None:
        if not state.pending:
            return
        delta = "".join(state.pending)
        state.pending.clear()
        offset = state.length
        state.parts.append(delta)
        state.length += len(delta)
        state.tail.add(delta)
        if not self.settings.streaming:
            return
        state.last_text_sent = state.last_sent = time.monotonic()
        await sink.send(Update(kind="text", delta=delta, offset=offset, tail=state.tail.text))

    async def _status(self, sink: Sink, state: _State, message: str) -> None:
        state.last_sent = time.monotonic()
        await sink.send(Update(kind="status", status=message, tail=state.tail.text))

    def _heartbeat(self, now: float, state: _State) -> str:
        elapsed = now - state.started
        if state.first_token is None:
            return f"waiting for {self.settings.label} ({elapsed:.0f} s)"
        return f"{self.settings.label}: {state.chunks} tokens so far ({elapsed:.0f} s)"


async def _pump(stream: AsyncIterator[Event], queue: asyncio.Queue[Any]) -> None:
    """Move events into the queue; always close the stream, so its HTTP request ends with it."""
    try:
        async for event in stream:
            queue.put_nowait(event)
        queue.put_nowait(_END)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        queue.put_nowait(_Failure(exc))
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception as exc:  # closing must not hide the call's own outcome
                log.debug("closing the stream failed: %r", exc)


def _as_streamhost_error(error: BaseException, label: str) -> StreamhostError:
    if isinstance(error, StreamhostError):
        return error
    log.error("%s: provider raised an unexpected %s", label, type(error).__name__, exc_info=error)
    return ProviderError(f"{label} failed: {type(error).__name__}: {error} (a bug in its provider plugin?)")
