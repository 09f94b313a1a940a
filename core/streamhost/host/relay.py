"""The relay: consumes a provider's event stream and feeds a sink, knowing nothing of MCP.

It coalesces fast deltas, sends heartbeats while the model is silent, retries only before any text
arrived (never once the call is cancelled), enforces the call's deadline, and closes the upstream
stream however the call ends. It is where provider output enters the host: text is repaired (no lone
surrogates), statuses and error messages are scrubbed of secrets, a malformed event is an error, and
every failure keeps the text streamed before it. Events of other types the caller asks to keep (a
fetcher's Document) pass through to the result; the relay knows no more of them than that.

Coalescing costs one wake-up per window, not one per delta: once text is out, the deltas that follow
queue up without waking the relay until the window ends (an error, a status or the end of the stream
still wake it at once). The first text is never held. The window (``coalesce_ms``, or
``chunk_delay_ms`` if larger) widens as streams multiply and while the event loop runs late, up to 0.5 s
(``lag.py``): under many streams each sends fewer, larger notifications instead of the loop falling behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..errors import CallFailed, ProgressError, ProviderError, StreamhostError, UpstreamTimeoutError
from ..events import Checkpoint, Sink, Status, TextDelta, Update, Usage
from .inbox import END, STOPPED, Failure, Inbox, pump
from .lag import loop_lag
from .scrub import repair, scrub
from .sinks import Tail

log = logging.getLogger("streamhost.relay")
_UPSTREAMS: ContextVar[set[asyncio.Task[None]] | None] = ContextVar("streamhost_upstreams", default=None)


@contextlib.contextmanager
def stoppable_upstreams() -> Iterator[Callable[[], None]]:
    """Collect the upstream readers that relays start in this context; yields a function that stops them.

    For a caller that cancels a call from outside its task (the MCP transport, when it reads the
    client's cancel): stopping them as it cancels closes the upstream requests a turn of the loop
    sooner than the relay's own task would, which counts when the loop is busy.
    """
    tasks: set[asyncio.Task[None]] = set()
    token = _UPSTREAMS.set(tasks)
    try:
        yield lambda: [task.cancel() for task in list(tasks)]
    finally:
        _UPSTREAMS.reset(token)



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
    """How many text deltas the provider yielded (deltas, not tokens: an upstream may pack several)."""
    attempts: int = 1
    kept: list[Any] = field(default_factory=list)
    """The events of the types ``run`` was asked to keep, in order (of the last attempt)."""


@dataclass
class _State:
    started: float
    parts: list[str] = field(default_factory=list)
    length: int = 0
    pending: list[str] = field(default_factory=list)
    held: str = ""
    """A high surrogate that ended a delta: its low half may start the next one."""
    tail: Tail = field(default_factory=Tail)
    usage: Usage | None = None
    first_token: float | None = None
    last_delta: float = 0.0
    chunks: int = 0
    text_due: float = float("-inf")
    """When the open coalescing window ends: text held until then goes out together."""
    last_sent: float = 0.0
    attempts: int = 0
    kept: list[Any] = field(default_factory=list)
    checkpoint: str | None = None
    """The newest checkpoint not yet passed on; it covers the text before ``pending[checkpoint_at]``."""
    checkpoint_at: int = 0

    def result(self) -> RelayResult:
        now = time.monotonic()
        ttft = None if self.first_token is None else (self.first_token - self.started) * 1000
        return RelayResult(
            text="".join(self.parts + self.pending), usage=self.usage, ttft_ms=ttft,
            duration_ms=(now - self.started) * 1000, chunks=self.chunks, attempts=self.attempts, kept=self.kept,
        )


class Relay:
    """Runs one call: ``await Relay(settings).run(open_stream, sink)``.

    ``blame`` turns an unexpected exception from the stream into the error the user reads (by default
    a ProviderError calling it a bug in the provider plugin). ``on_checkpoint(state, chars)`` takes the
    stream's :class:`Checkpoint` events, no sink does: each is passed on with the text it covers (``chars``
    characters), when that text goes out, so it is never ahead of the text a sink was sent. Without it they
    are dropped.
    """

    def __init__(self, settings: RelaySettings, on_first_token: Callable[[float], None] | None = None,
                 blame: Callable[[Exception], StreamhostError] | None = None,
                 on_checkpoint: Callable[[str, int], None] | None = None) -> None:
        self.settings = settings
        self.on_first_token = on_first_token
        self.blame = blame
        self.on_checkpoint = on_checkpoint
        self.gap = max(settings.coalesce_ms, settings.chunk_delay_ms) / 1000

    async def run(self, open_stream: Callable[[], AsyncIterator[Any]], sink: Sink,
                  keep: tuple[type, ...] = ()) -> RelayResult:
        """Relay the stream that ``open_stream()`` starts; raise CallFailed with the partial text.

        :param keep: event types that are not text, usage or status but belong to the result
            (``RelayResult.kept``) instead of being refused as a plugin's bug.
        """
        state = _State(started=time.monotonic())
        state.last_sent = state.started
        self.lag = loop_lag()
        deadline = state.started + self.settings.deadline_s
        counted = self.settings.streaming  # a stream that sends text shares the loop's notification budget
        if counted:
            self.lag.streams += 1
        try:
            return await self._run(open_stream, sink, keep, state, deadline)
        finally:
            if counted:
                self.lag.streams -= 1

    async def _run(self, open_stream: Callable[[], AsyncIterator[Any]], sink: Sink, keep: tuple[type, ...],
                   state: _State, deadline: float) -> RelayResult:
        while True:
            _stop_if_cancelled()
            state.attempts += 1
            state.kept = []
            try:
                await self._attempt(open_stream, sink, state, deadline, keep)
                return state.result()
            except StreamhostError as exc:
                error = _cleaned(exc)
                wait = self._retry_wait(error, state, deadline)
                if wait is None:
                    raise CallFailed(error, state.result()) from exc
            # Provider messages usually name the model already ("openai/o3: rate limited ..."): no echo.
            label = self.settings.label
            said = error.message if error.message.startswith(label) else f"{label}: {error.message}"
            log.info("%s; retrying in %.1f s", said, wait)
            try:
                await self._status(sink, state, f"{said} — retrying in {wait:.1f} s "
                                   f"(attempt {state.attempts + 1} of {self.settings.max_retries + 1})")
            except ProgressError as lost:
                raise CallFailed(_cleaned(lost), state.result()) from lost
            await asyncio.sleep(wait)

    def _retry_wait(self, exc: StreamhostError, state: _State, deadline: float) -> float | None:
        if not exc.retryable or state.first_token is not None or state.attempts > self.settings.max_retries:
            return None
        hinted = getattr(exc, "retry_after", None)
        wait = hinted if hinted is not None else min(0.5 * 2 ** (state.attempts - 1), 8.0)
        if wait > self.settings.retry_max_wait_s or time.monotonic() + wait >= deadline:
            return None
        return max(wait, 0.0)

    async def _attempt(self, open_stream: Callable[[], AsyncIterator[Any]], sink: Sink, state: _State,
                       deadline: float, keep: tuple[type, ...]) -> None:
        inbox = Inbox()
        if self.settings.streaming and state.first_token is None and not (keep and issubclass(TextDelta, keep)):
            # While we wait for it, the reader hands the first text straight to _handle: a turn of the loop sooner.
            inbox.first = lambda event: self._handle(event, sink, state)
        producer = asyncio.create_task(pump(open_stream, inbox))
        upstreams = _UPSTREAMS.get()
        if upstreams is not None:
            upstreams.add(producer)
        try:
            await self._consume(inbox, sink, state, deadline, keep)
        except ProgressError:
            raise
        except StreamhostError:
            # Whatever failed, the text that came before it is shown (if the sink still works) and kept.
            _release_held(state)
            with contextlib.suppress(ProgressError):
                await self._flush(sink, state)
            raise
        finally:
            # The upstream first: on a cancel nothing else matters, and its connection costs money.
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            if upstreams is not None:
                upstreams.discard(producer)

    async def _consume(self, inbox: Inbox, sink: Sink, state: _State, deadline: float,
                       keep: tuple[type, ...]) -> None:
        """Take events until the stream ends; every failure is raised as a StreamhostError."""
        while True:
            item = await self._next(inbox, state, deadline)
            while item is not None:
                if item is END:
                    _release_held(state)
                    await self._flush(sink, state)
                    return
                if isinstance(item, Failure):
                    raise self._as_streamhost_error(item.error)
                if item is STOPPED:  # by whoever cancels this call, which cancels us too
                    raise asyncio.CancelledError
                if keep and isinstance(item, keep):
                    state.kept.append(item)
                else:
                    await self._handle(item, sink, state)
                item = inbox.items.popleft() if inbox.items else None
            now = time.monotonic()
            if state.pending and now >= state.text_due:
                await self._flush(sink, state)
            elif state.checkpoint is not None and not state.pending:  # it covers only text already out
                self._pass_checkpoint(state)
            if now >= state.last_sent + self.settings.heartbeat_s:
                await self._heartbeat(sink, state, now)
            if now >= deadline:
                raise UpstreamTimeoutError(
                    f"{self.settings.label} did not finish within {self.settings.deadline_s:g} s "
                    "(limits.deadline_s in the config)"
                )

    async def _next(self, inbox: Inbox, state: _State, deadline: float) -> Any:
        if inbox.items:
            return inbox.items.popleft()
        now = time.monotonic()
        wake = min(state.last_sent + self.settings.heartbeat_s, deadline)
        # Inside an open window (or with nothing to show before the end) a delta would only be held:
        # the producer queues it without waking us, and we take them all when the window ends.
        holding = state.first_token is not None and (now < state.text_due or not self.settings.streaming)
        if holding and self.settings.streaming:
            wake = min(wake, state.text_due)
        timeout = wake - now
        if timeout <= 0:
            return None
        # Under load the upstream is read once per window (``inbox.pump``); a quiet loop reads it as it comes, so the
        # end of a short answer is never held for a window.
        due = state.text_due if self.lag.busy(now) else float("-inf")
        if await inbox.wait(timeout, eager=not holding, due=due):
            # The timer fired: how late it ran says how far behind the loop is.
            woke = time.monotonic()
            self.lag.observe(woke - wake, woke)
        return inbox.items.popleft() if inbox.items else None

    async def _handle(self, event: Any, sink: Sink, state: _State) -> None:
        if isinstance(event, TextDelta):
            text = event.text
            if type(text) is not str:
                raise self._bad_event(f"a TextDelta whose text is {type(text).__name__}, not str")
            if not text:
                return
            state.chunks += 1
            state.last_delta = time.monotonic()
            if state.held or not text.isascii():
                text = _encodable(text, state)
            if text:
                state.pending.append(text)
            if state.first_token is None:
                state.first_token = state.last_delta
                await self._flush(sink, state)
                if self.on_first_token is not None:  # after the text is out: it may write a file
                    self.on_first_token((state.first_token - state.started) * 1000)
        elif isinstance(event, Usage):
            state.usage = event
        elif isinstance(event, Status):
            if type(event.message) is not str:
                raise self._bad_event(f"a Status whose message is {type(event.message).__name__}, not str")
            await self._flush(sink, state)
            await self._status(sink, state, scrub(event.message))
        elif isinstance(event, Checkpoint):
            if type(event.state) is not str:
                raise self._bad_event(f"a Checkpoint whose state is {type(event.state).__name__}, not str")
            # Passed on at the next flush, with the text before it: one call per window, not per event.
            state.checkpoint, state.checkpoint_at = event.state, len(state.pending)
        else:
            raise self._bad_event(f"a {type(event).__name__} event, which is not a TextDelta, Usage, Status "
                                  "or Checkpoint")

    def _bad_event(self, what: str) -> ProviderError:
        return ProviderError(f"{self.settings.label}: its plugin sent {what} (a bug in the plugin; "
                             "report it to the plugin's authors)")

    def _as_streamhost_error(self, error: BaseException) -> StreamhostError:
        if isinstance(error, StreamhostError):
            return error
        label = self.settings.label
        log.error("%s: the stream raised an unexpected %s", label, type(error).__name__, exc_info=error)
        if self.blame is not None and isinstance(error, Exception):
            return self.blame(error)
        return ProviderError(f"{label} failed: {type(error).__name__}: {error} (a bug in its provider plugin?)")

    async def _flush(self, sink: Sink, state: _State) -> None:
        if state.checkpoint is not None:
            self._pass_checkpoint(state)
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
        state.last_sent = now = time.monotonic()
        state.text_due = now + self.lag.window(self.gap, now)
        await self._send(sink, Update(kind="text", delta=delta, offset=offset, tail=state.tail.text))

    def _pass_checkpoint(self, state: _State) -> None:
        checkpoint, state.checkpoint = state.checkpoint, None
        if self.on_checkpoint is not None and checkpoint is not None:
            covered = state.length + sum(len(part) for part in state.pending[:state.checkpoint_at])
            self.on_checkpoint(checkpoint, covered)

    async def _status(self, sink: Sink, state: _State, message: str) -> None:
        state.last_sent = time.monotonic()
        await self._send(sink, Update(kind="status", status=message, tail=state.tail.text))

    async def _heartbeat(self, sink: Sink, state: _State, now: float) -> None:
        elapsed = now - state.started
        if state.first_token is None:
            await self._status(sink, state, f"waiting for {self.settings.label} ({elapsed:.0f} s)")
        elif self.settings.streaming:
            # Beside the text, not instead of it: the caller's row keeps showing the latest text.
            state.last_sent = now
            await self._send(sink, Update(kind="status", status=f"stalled {now - state.last_delta:.0f} s",
                                          tail=state.tail.text, aside=True))
        else:
            chunks = f"{state.chunks} chunk{'' if state.chunks == 1 else 's'}"
            await self._status(sink, state, f"{self.settings.label}: {chunks} of text so far ({elapsed:.0f} s)")

    async def _send(self, sink: Sink, update: Update) -> None:
        try:
            await sink.send(update)
        except Exception as exc:
            raise ProgressError(
                f"{self.settings.label}: sending progress to the caller failed ({type(exc).__name__}: {exc}); "
                "the call was stopped"
            ) from exc


def _encodable(text: str, state: _State) -> str:
    """``text`` after a held high surrogate, repaired; a high surrogate at its end is held for the next delta."""
    if state.held:
        text, state.held = state.held + text, ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        if "\ud800" <= text[-1] <= "\udbff":
            text, state.held = text[:-1], text[-1]
        return repair(text)
    return text


def _release_held(state: _State) -> None:
    """The stream ended: a held high surrogate has no other half coming."""
    if state.held:
        state.pending.append("\ufffd")
        state.held = ""


def _stop_if_cancelled() -> None:
    """Raise CancelledError when this task was cancelled, even if something swallowed the cancellation."""
    cancelling = getattr(asyncio.current_task(), "cancelling", None)  # Python 3.11+
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError


def _cleaned(error: StreamhostError) -> StreamhostError:
    """``error`` with its message scrubbed: upstreams echo keys and send lone surrogates in error text."""
    error.message = scrub(error.message)
    error.args = (error.message, *error.args[1:])
    return error
