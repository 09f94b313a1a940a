"""The relay on its own: coalescing, heartbeats, retries, deadline, cancellation, buffering."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from streamhost import (
    AuthenticationError,
    ProviderError,
    RateLimitError,
    Status,
    TextDelta,
    UpstreamServerError,
    Usage,
)
from streamhost.errors import CallFailed, ProgressError
from streamhost.host.lag import MAX_WINDOW_S, NOTIFICATIONS_PER_S, LoopLag, loop_lag
from streamhost.host.relay import Relay, RelaySettings, stoppable_upstreams
from streamhost.host.sinks import CollectingSink

pytestmark = pytest.mark.anyio


async def tokens(pieces, delay=0.0, first_delay=0.0, closed=None, fail=None):
    """An event stream like a provider's: optional pauses, an optional failure after the pieces."""
    try:
        await asyncio.sleep(first_delay)
        for piece in pieces:
            yield TextDelta(piece)
            if delay:
                await asyncio.sleep(delay)
        if fail is not None:
            raise fail
        yield Usage(input_tokens=3, output_tokens=len(pieces))
    finally:
        if closed is not None:
            closed.append(time.monotonic())


def settings(**overrides):
    return RelaySettings(**{"label": "test/model", **overrides})


async def test_deltas_rebuild_the_text_and_the_first_token_is_not_held_back():
    pieces = [f"w{i} " for i in range(200)]
    sink = CollectingSink()
    result = await Relay(settings()).run(lambda: tokens(pieces), sink)
    texts = [u for u in sink.updates if u.kind == "text"]
    assert result.text == "".join(pieces) == sink.text
    assert texts[0].delta == "w0 "
    assert [u.offset for u in texts] == [sum(len(t.delta) for t in texts[:i]) for i in range(len(texts))]
    assert len(texts) <= 5, "a burst of 200 deltas must be coalesced"
    assert result.usage == Usage(input_tokens=3, output_tokens=200)
    assert result.ttft_ms is not None and result.chunks == 200


async def test_the_first_text_goes_out_in_the_turn_of_the_loop_that_read_it():
    # Whatever the loop queues while the first text is read runs after that turn: the first text must not wait for it.
    loop = asyncio.get_running_loop()
    order: list[str] = []

    async def stream():
        await asyncio.sleep(0.05)  # the relay is waiting for the first text by now
        loop.call_soon(order.append, "the next turn")
        yield TextDelta("first ")
        await asyncio.sleep(0.05)
        loop.call_soon(order.append, "the next turn")
        yield TextDelta("second")

    class Ordering(CollectingSink):
        async def send(self, update):
            order.append(update.delta or update.kind)
            await super().send(update)

    sink = Ordering()
    result = await Relay(settings(coalesce_ms=0)).run(stream, sink)
    assert result.text == sink.text == "first second"
    assert order == ["first ", "the next turn", "the next turn", "second"], \
        "the first text waited for the relay's wake-up (later texts do: one task owns the window)"


async def test_a_sink_that_fails_on_the_first_text_stops_the_call_and_its_upstream():
    closed: list[float] = []

    class Failing(CollectingSink):
        async def send(self, update):
            raise ConnectionResetError("client gone")

    with pytest.raises(CallFailed) as failed:
        await Relay(settings()).run(lambda: tokens(["a", "b"], first_delay=0.05, delay=1, closed=closed), Failing())
    assert isinstance(failed.value.__cause__, ProgressError)
    assert "sending progress to the caller failed" in str(failed.value) and "client gone" in str(failed.value)
    assert closed, "the upstream must be closed"


async def test_the_tail_keeps_a_newline_between_deltas_as_a_space():
    sink = CollectingSink()
    await Relay(settings(coalesce_ms=0)).run(lambda: tokens(["# Title", "\n\n", "Body"], delay=0.02), sink)
    tails = [u.tail for u in sink.updates if u.kind == "text"]
    assert len(tails) == 3 and tails[-1] == "# Title Body"


async def test_chunk_delay_spaces_notifications():
    stamps: list[float] = []

    class Stamping(CollectingSink):
        async def send(self, update):
            stamps.append(time.monotonic())
            await super().send(update)

    sink = Stamping()
    await Relay(settings(coalesce_ms=0, chunk_delay_ms=60)).run(lambda: tokens(["x"] * 40, delay=0.005), sink)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert sink.text == "x" * 40
    # The last flush (end of stream) is not held back: the result follows it at once anyway.
    assert len(stamps) >= 3 and min(gaps[:-1]) >= 0.05


def test_the_window_widens_with_loop_lag_up_to_half_a_second_and_narrows_again():
    lag = LoopLag()
    assert lag.window(0.05, now=0.0) == 0.05, "a loop that keeps up keeps the configured window"
    lag.observe(0.002, now=0.0)
    assert lag.window(0.05, now=0.0) == 0.05, "jitter widens nothing"
    lag.observe(0.04, now=1.0)
    assert lag.window(0.05, now=1.0) == pytest.approx(0.05 + 4 * 0.04)
    lag.observe(1.0, now=2.0)
    assert lag.window(0.05, now=2.0) == MAX_WINDOW_S
    assert lag.window(2.0, now=2.0) == 2.0, "a configured window wider than the cap is kept"
    assert lag.window(0.0, now=2.0) == 0.0, "coalesce_ms = 0 (every delta as it comes) is kept"
    assert lag.window(0.05, now=12.0) == 0.05, "once the loop keeps up the window narrows again"


def test_the_window_widens_as_streams_share_the_loop():
    lag = LoopLag()
    lag.streams = 10
    assert lag.window(0.05, now=0.0) == 0.05, "a few streams keep the configured window"
    lag.streams = 60
    assert lag.window(0.05, now=0.0) == pytest.approx(60 / NOTIFICATIONS_PER_S), "their share of the budget"
    assert not lag.busy(0.0), "a crowded loop that keeps up reads its upstreams as they come"
    lag.streams = 1000
    assert lag.window(0.05, now=0.0) == MAX_WINDOW_S, "text still goes out twice a second"
    assert lag.window(2.0, now=0.0) == 2.0 and lag.window(0.0, now=0.0) == 0.0, "what the user configured wins"
    lag.observe(1.0, now=0.0)
    assert lag.window(0.05, now=0.0) == MAX_WINDOW_S, "lag and crowding together stay under the cap"


async def test_many_streams_at_once_share_the_notifications_and_keep_their_text():
    """100 streams of 1.5 s: at their 20 ms windows they would send ~75 notifications each; sharing the loop's
    budget, each sends a few, and the relays count themselves out when they end however they end.

    The streams keep one clock, so they run and end together however late each one starts: with a clock each,
    a stream that started late (the process descheduled while the streams started) ran on alone after the others
    ended, and at its own 20 ms window again, as it should, it sent more than the shared budget allows."""
    start = time.monotonic()

    async def stream(n: int):  # token i due at 10 ms × i, as an upstream's socket buffers them: none is lost
        for i in range(150):
            if (wait := start + i * 0.01 - time.monotonic()) > 0:
                await asyncio.sleep(wait)
            yield TextDelta(f"[{n}:{i}]")

    sinks = [CollectingSink() for _ in range(100)]
    results = await asyncio.gather(*(Relay(settings(coalesce_ms=20)).run(lambda n=n: stream(n), sinks[n])
                                     for n in range(100)))
    for n, (sink, result) in enumerate(zip(sinks, results, strict=True)):
        texts = [u for u in sink.updates if u.kind == "text"]
        assert sink.text == result.text == "".join(f"[{n}:{i}]" for i in range(150))
        assert len(texts) <= 10, f"{len(texts)} text notifications for one of 100 streams"
    assert loop_lag().streams == 0

    async def failing():
        yield TextDelta("x")
        raise RuntimeError("upstream went away")

    with pytest.raises(CallFailed):
        await Relay(settings()).run(failing, CollectingSink())
    assert loop_lag().streams == 0


async def test_a_lagging_loop_gets_fewer_larger_notifications_and_all_the_text():
    """A task holds the loop 40 ms at a time: the relay sees its timers run late and widens its window."""
    sent: list[str] = []
    done = asyncio.Event()

    async def hog():
        while not done.is_set():
            time.sleep(0.04)  # blocking on purpose: every turn of the loop takes this long
            await asyncio.sleep(0)

    async def for_two_seconds():
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            sent.append(f"w{len(sent)} ")
            yield TextDelta(sent[-1])
            await asyncio.sleep(0)

    hogging = asyncio.create_task(hog())
    sink = CollectingSink()
    started = time.monotonic()
    try:
        result = await Relay(settings(coalesce_ms=20)).run(for_two_seconds, sink)
    finally:
        done.set()
        await hogging
    elapsed = time.monotonic() - started
    texts = [u for u in sink.updates if u.kind == "text"]
    assert result.text == sink.text == "".join(sent)
    assert [u.offset for u in texts] == [sum(len(t.delta) for t in texts[:i]) for i in range(len(texts))]
    # Unwidened, the 20 ms window would flush every other turn (80 ms); widened, far less often.
    assert len(texts) <= elapsed / 0.16, f"{len(texts)} text notifications in {elapsed:.2f} s"


class BeatCounter(CollectingSink):
    """A sink that sets ``beaten`` once three status notes have reached it: a silent stream waits for that
    instead of sleeping a time in which the beats should come, which a descheduled process can miss."""

    def __init__(self) -> None:
        super().__init__()
        self.beaten = asyncio.Event()

    async def send(self, update) -> None:
        await super().send(update)
        if len(self.statuses) >= 3:
            self.beaten.set()


async def test_heartbeats_while_waiting_for_the_first_token():
    sink = BeatCounter()

    async def silent_until_three_beats():
        await asyncio.wait_for(sink.beaten.wait(), 30)
        yield TextDelta("hi")

    await Relay(settings(heartbeat_s=0.05)).run(silent_until_three_beats, sink)
    first_text = next(i for i, u in enumerate(sink.updates) if u.kind == "text")
    waiting = [u.status for u in sink.updates[:first_text]]
    assert len(waiting) >= 3
    assert all(s.startswith("waiting for test/model (") for s in waiting)


async def test_buffered_mode_sends_no_text_but_keeps_heartbeats():
    sink = CollectingSink()
    result = await Relay(settings(streaming=False, heartbeat_s=0.05)).run(
        lambda: tokens(["a", "b", "c", "d"], delay=0.05), sink
    )
    assert result.text == "abcd"
    assert not [u for u in sink.updates if u.kind == "text"]
    assert any(s.startswith("test/model: ") and "chunks of text so far" in s for s in sink.statuses)


async def test_retries_before_the_first_token_and_honours_retry_after():
    attempts: list[float] = []

    def open_stream():
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            return tokens([], fail=RateLimitError("rate limited (HTTP 429)", retry_after=0.2))
        return tokens(["ok"])

    sink = CollectingSink()
    result = await Relay(settings()).run(open_stream, sink)
    assert result.text == "ok" and result.attempts == 2
    assert attempts[1] - attempts[0] >= 0.19
    assert "test/model: rate limited (HTTP 429) — retrying in 0.2 s (attempt 2 of 3)" in sink.statuses


async def test_a_retry_status_does_not_repeat_a_label_the_message_already_has():
    failures = [UpstreamServerError("test/model: upstream error (HTTP 500)")]

    def open_stream():
        return tokens([], fail=failures.pop()) if failures else tokens(["ok"])

    sink = CollectingSink()
    await Relay(settings(retry_max_wait_s=1)).run(open_stream, sink)
    assert next(s for s in sink.statuses if "retrying" in s).startswith("test/model: upstream error (HTTP 500) — ")


async def test_never_retries_once_text_was_streamed_and_keeps_the_partial_text():
    calls = []

    def open_stream():
        calls.append(1)
        return tokens(["partial ", "answer"], fail=UpstreamServerError("upstream 500", status=500))

    sink = CollectingSink()
    with pytest.raises(CallFailed) as failed:
        await Relay(settings()).run(open_stream, sink)
    assert len(calls) == 1
    assert failed.value.result.text == "partial answer" == sink.text
    assert failed.value.error.status == 500


async def test_errors_that_are_not_retryable_fail_at_once():
    calls = []

    def open_stream():
        calls.append(1)
        return tokens([], fail=AuthenticationError("key refused", status=401))

    with pytest.raises(CallFailed) as failed:
        await Relay(settings()).run(open_stream, CollectingSink())
    assert len(calls) == 1 and isinstance(failed.value.error, AuthenticationError)


async def test_retries_are_bounded():
    calls = []

    def open_stream():
        calls.append(1)
        return tokens([], fail=UpstreamServerError("upstream 503", status=503, retry_after=0.01))

    with pytest.raises(CallFailed):
        await Relay(settings(max_retries=2)).run(open_stream, CollectingSink())
    assert len(calls) == 3


async def test_deadline_ends_a_stalled_stream_and_keeps_the_text():
    closed: list[float] = []
    sink = CollectingSink()
    with pytest.raises(CallFailed) as failed:
        await Relay(settings(deadline_s=0.3)).run(
            lambda: tokens(["early ", "text"], delay=10, closed=closed), sink
        )
    assert "did not finish within 0.3 s" in failed.value.error.message
    assert failed.value.result.text == "early "
    assert closed, "the upstream stream must be closed when the deadline passes"


async def test_cancelling_closes_the_upstream_stream_at_once():
    closed: list[float] = []
    sink = CollectingSink()
    task = asyncio.create_task(Relay(settings()).run(lambda: tokens(["a"] * 100, delay=0.1, closed=closed), sink))
    while not sink.updates:
        await asyncio.sleep(0.005)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert closed and closed[0] - cancelled_at < 5  # ≈1 ms when idle; the stream has 10 s left to run


async def test_upstreams_stopped_by_the_canceller_close_the_stream_and_end_the_call():
    """The MCP transport stops a call's upstreams as it cancels it; even a relay that missed the cancel stops."""
    closed: list[float] = []
    sink = CollectingSink()
    with stoppable_upstreams() as stop:
        task = asyncio.create_task(Relay(settings()).run(
            lambda: tokens([f"w{i} " for i in range(200)], delay=0.05, closed=closed), sink))
        while not sink.updates:
            await asyncio.sleep(0.005)
        stop()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)
    assert closed, "the upstream stream is closed"
    assert len(sink.text) < len("".join(f"w{i} " for i in range(200)))


async def test_a_plugin_bug_becomes_a_clear_error_not_a_crash():
    with pytest.raises(CallFailed) as failed:
        await Relay(settings()).run(lambda: tokens(["x"], fail=KeyError("oops")), CollectingSink())
    assert "KeyError" in failed.value.error.message and "test/model" in failed.value.error.message
    assert failed.value.result.text == "x"


async def test_a_stall_after_text_is_a_note_beside_the_text():
    sink = BeatCounter()
    silence: list[float] = []

    async def stalls():
        yield TextDelta("hello ")
        yield TextDelta("world")
        began = time.monotonic()
        await asyncio.wait_for(sink.beaten.wait(), 30)  # silent for three heartbeats
        silence.append(time.monotonic() - began)
        yield TextDelta("!")

    result = await Relay(settings(heartbeat_s=0.1)).run(stalls, sink)
    notes = [u for u in sink.updates if u.kind == "status"]
    assert result.text == "hello world!" == sink.text
    assert len(notes) >= 3
    assert all(u.aside and u.tail == "hello world" and u.status.startswith("stalled ") for u in notes)
    seconds = [int(u.status.removeprefix("stalled ").removesuffix(" s")) for u in notes]
    assert seconds == sorted(seconds) and seconds[-1] <= silence[0] + 1, "the stall counted from the last text"


async def test_buffered_heartbeats_count_chunks_in_good_english():
    sink = CollectingSink()
    await Relay(settings(streaming=False, heartbeat_s=0.05)).run(lambda: tokens(["only"], delay=0.3), sink)
    after = [s for s in sink.statuses if not s.startswith("waiting")]
    assert after and all(s.startswith("test/model: 1 chunk of text so far (") for s in after)


async def test_lone_surrogates_become_replacement_characters_and_split_pairs_are_joined():
    async def broken():
        yield TextDelta("a\ud800b ")
        yield TextDelta("smile \ud83d")  # the pair's halves come in two deltas
        yield TextDelta("\ude00 end\udbff")  # a high surrogate with nothing after it
        yield Status("status \udc00 line")

    sink = CollectingSink()
    result = await Relay(settings(coalesce_ms=0)).run(broken, sink)
    assert result.text == "a\ufffdb smile \U0001f600 end\ufffd" == sink.text
    assert "status \ufffd line" in sink.statuses
    for update in sink.updates:
        (update.delta + update.status + update.tail).encode("utf-8")


async def test_a_lone_surrogate_in_an_error_message_is_repaired():
    with pytest.raises(CallFailed) as failed:
        await Relay(settings()).run(lambda: tokens(["x"], fail=AuthenticationError("bad \ud800 key")),
                                    CollectingSink())
    assert failed.value.error.message == "bad \ufffd key"


@pytest.mark.parametrize("bad", [TextDelta(5), TextDelta(None), Status(b"bytes"), {"text": "a dict"}])
async def test_a_malformed_event_is_a_clear_error_and_keeps_the_text(bad):
    async def stream():
        yield TextDelta("first ")
        yield TextDelta("twelve chars")  # still waiting in the coalescing window when the bad event comes
        yield bad

    sink = CollectingSink()
    with pytest.raises(CallFailed) as failed:
        await Relay(settings(coalesce_ms=60_000)).run(stream, sink)
    message = failed.value.error.message
    assert isinstance(failed.value.error, ProviderError)
    assert message.startswith("test/model: its plugin sent ") and type(getattr(bad, "text", getattr(
        bad, "message", bad))).__name__ in message
    assert failed.value.result.text == "first twelve chars" == sink.text


async def test_a_provider_exception_keeps_the_text_still_being_coalesced():
    sink = CollectingSink()
    with pytest.raises(CallFailed) as failed:
        await Relay(settings(coalesce_ms=60_000)).run(lambda: tokens(["a", "b", "c"], fail=KeyError("k")), sink)
    assert failed.value.result.text == "abc" == sink.text


async def test_a_failing_sink_stops_the_call_and_keeps_every_delta():
    closed: list[float] = []

    class Breaks(CollectingSink):
        async def send(self, update):
            if len(self.updates) == 2:
                raise ConnectionResetError("the client went away")
            await super().send(update)

    sink = Breaks()
    with pytest.raises(CallFailed) as failed:
        await Relay(settings(coalesce_ms=0)).run(lambda: tokens(["a", "b", "c", "d"], delay=0.02, closed=closed), sink)
    assert isinstance(failed.value.error, ProgressError)
    assert "ConnectionResetError: the client went away" in failed.value.error.message
    assert failed.value.result.text == "abc", "the delta that could not be sent is still in the result"
    assert closed, "the upstream stream is closed"


async def test_a_cancel_that_races_with_a_failure_is_never_followed_by_a_retry():
    """The cancel and the 500 reach the relay in the same turn of the loop; nothing may swallow the cancel."""
    calls: list[int] = []
    relay_task: asyncio.Task | None = None

    async def fails_as_it_is_cancelled():
        calls.append(1)
        yield Usage(input_tokens=1)
        relay_task.cancel()
        raise UpstreamServerError("upstream 500", status=500, retry_after=0.05)

    relay_task = asyncio.create_task(Relay(settings()).run(fails_as_it_is_cancelled, CollectingSink()))
    with pytest.raises(asyncio.CancelledError):
        await relay_task
    await asyncio.sleep(0.3)  # well past the retry wait: a retry would have started by now
    assert calls == [1]


async def test_a_swallowed_cancel_still_stops_the_retries():
    calls: list[int] = []

    class Swallows(CollectingSink):
        """A sink with a bug: it catches the cancellation that arrives while it sends."""

        async def send(self, update):
            await super().send(update)
            try:
                await asyncio.sleep(0.5)
            except asyncio.CancelledError:
                pass

    def open_stream():
        calls.append(1)
        return tokens([], fail=UpstreamServerError("upstream 500", status=500, retry_after=0.05))

    sink = Swallows()
    task = asyncio.create_task(Relay(settings()).run(open_stream, sink))
    while not sink.updates:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == [1]
