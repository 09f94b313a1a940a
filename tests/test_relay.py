"""The relay on its own: coalescing, heartbeats, retries, deadline, cancellation, buffering."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from streamhost import AuthenticationError, RateLimitError, TextDelta, UpstreamServerError, Usage
from streamhost.relay import GenerationFailed, Relay, RelaySettings
from streamhost.sinks import CollectingSink

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


async def test_heartbeats_while_waiting_for_the_first_token():
    sink = CollectingSink()
    await Relay(settings(heartbeat_s=0.05)).run(lambda: tokens(["hi"], first_delay=0.3), sink)
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
    assert any("tokens so far" in s for s in sink.statuses)


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
    with pytest.raises(GenerationFailed) as failed:
        await Relay(settings()).run(open_stream, sink)
    assert len(calls) == 1
    assert failed.value.result.text == "partial answer" == sink.text
    assert failed.value.error.status == 500


async def test_errors_that_are_not_retryable_fail_at_once():
    calls = []

    def open_stream():
        calls.append(1)
        return tokens([], fail=AuthenticationError("key refused", status=401))

    with pytest.raises(GenerationFailed) as failed:
        await Relay(settings()).run(open_stream, CollectingSink())
    assert len(calls) == 1 and isinstance(failed.value.error, AuthenticationError)


async def test_retries_are_bounded():
    calls = []

    def open_stream():
        calls.append(1)
        return tokens([], fail=UpstreamServerError("upstream 503", status=503, retry_after=0.01))

    with pytest.raises(GenerationFailed):
        await Relay(settings(max_retries=2)).run(open_stream, CollectingSink())
    assert len(calls) == 3


async def test_deadline_ends_a_stalled_stream_and_keeps_the_text():
    closed: list[float] = []
    sink = CollectingSink()
    with pytest.raises(GenerationFailed) as failed:
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
    assert closed and closed[0] - cancelled_at < 0.5  # ≈1 ms when idle; loose for a loaded CI machine


async def test_a_plugin_bug_becomes_a_clear_error_not_a_crash():
    with pytest.raises(GenerationFailed) as failed:
        await Relay(settings()).run(lambda: tokens(["x"], fail=KeyError("oops")), CollectingSink())
    assert "KeyError" in failed.value.error.message and "test/model" in failed.value.error.message
    assert failed.value.result.text == "x"
