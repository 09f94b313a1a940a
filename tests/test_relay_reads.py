"""How often the relay reads its upstream: once per coalescing window while it holds text, not once per chunk."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio
import pytest

from streamhost import TextDelta, Usage
from streamhost.host.lag import loop_lag
from streamhost.host.relay import Relay, RelaySettings
from streamhost.host.sinks import CollectingSink

pytestmark = pytest.mark.anyio

PIECES = [f"w{i} " for i in range(150)]


class Upstream:
    """Deltas arriving every ``gap`` seconds, like chunks on a socket; counts the reads that had to wait for one."""

    def __init__(self, pieces: list[str], gap: float, first_gap: float = 0.0) -> None:
        self.arrived: asyncio.Queue[str | None] = asyncio.Queue()
        self.pieces, self.gap, self.first_gap = pieces, gap, first_gap
        self.reads = self.waits = 0

    async def send(self) -> None:
        await asyncio.sleep(self.first_gap)
        for piece in self.pieces:
            self.arrived.put_nowait(piece)
            await asyncio.sleep(self.gap)
        self.arrived.put_nowait(None)

    async def stream(self) -> Any:
        while True:
            self.reads += 1
            self.waits += self.arrived.empty()
            piece = await self.arrived.get()
            if piece is None:
                return
            yield TextDelta(piece)


async def relayed(upstream: Upstream, **settings: Any) -> tuple[str, CollectingSink]:
    sink = CollectingSink()
    sender = asyncio.create_task(upstream.send())
    result = await Relay(RelaySettings(label="test/model", **settings)).run(upstream.stream, sink)
    await sender
    return result.text, sink


async def test_under_load_the_chunks_that_came_inside_a_window_are_read_in_one_go():
    # A loop running 50 ms late (decaying by half a second), a chunk every 2 ms and a 100 ms window: reading as
    # each chunk comes would wait ~150 times; reading at the window's end waits about once per window. A slow
    # machine only queues more per read.
    loop_lag().observe(0.05, time.monotonic())
    upstream = Upstream(PIECES, gap=0.002)
    text, sink = await relayed(upstream, coalesce_ms=100)
    assert text == sink.text == "".join(PIECES)
    assert upstream.waits < len(PIECES) / 3, f"the upstream was read {upstream.waits} times as each chunk came"


async def test_on_a_quiet_loop_the_end_of_a_short_answer_is_not_held():
    # Three chunks, then the end, all inside the first 100 ms window: the answer returns before the window ends.
    # (Held, it would return at the window's end; the 100 s window leaves no doubt which happened.)
    loop_lag().level = 0.0
    upstream = Upstream(["a ", "b ", "c "], gap=0.001)
    with anyio.fail_after(30):
        text, _ = await relayed(upstream, coalesce_ms=100_000, heartbeat_s=600)
    assert text == "a b c "


async def test_the_first_text_is_read_and_sent_at_once():
    # Nothing is out yet, so no window holds the first chunk: it goes out before the second one is even sent.
    upstream = Upstream(["first ", "second "], gap=30.0)
    sink = CollectingSink()
    sender = asyncio.create_task(upstream.send())
    call = asyncio.create_task(Relay(RelaySettings(label="test/model", coalesce_ms=100)).run(upstream.stream, sink))
    try:
        with anyio.fail_after(30):
            while sink.text != "first ":
                await asyncio.sleep(0.01)
    finally:
        call.cancel()
        sender.cancel()
        await asyncio.gather(call, sender, return_exceptions=True)


async def test_without_a_window_every_chunk_is_read_as_it_comes():
    # A window of 0 asks for every delta as it comes: nothing is held, so nothing waits to be read.
    upstream = Upstream(PIECES[:40], gap=0.002)
    text, sink = await relayed(upstream, coalesce_ms=0)
    assert text == sink.text == "".join(PIECES[:40])
    assert len([u for u in sink.updates if u.kind == "text"]) > 1


async def test_a_stream_without_streaming_ends_when_its_upstream_ends():
    # Not streaming holds all the text until the end: reads must not wait for a window that never closes.
    upstream = Upstream(PIECES[:40], gap=0.002)
    started = asyncio.get_running_loop().time()
    text, _ = await relayed(upstream, streaming=False, heartbeat_s=60)
    assert text == "".join(PIECES[:40])
    assert asyncio.get_running_loop().time() - started < 30, "the end waited for the heartbeat's timer"



async def test_under_load_the_end_after_the_usage_is_not_held_for_a_window():
    # The usage (and the stream's end right behind it) came after a wait, inside a long window: only text is worth
    # collecting for the window's end, so the answer returns at once instead of after the 100 s window.
    loop_lag().observe(0.05, time.monotonic())

    async def stream() -> Any:
        yield TextDelta("the answer")
        await asyncio.sleep(0.02)
        yield Usage(input_tokens=3, output_tokens=2)

    sink = CollectingSink()
    with anyio.fail_after(30):
        result = await Relay(RelaySettings(label="test/model", coalesce_ms=100_000, heartbeat_s=600)).run(stream, sink)
    assert result.text == sink.text == "the answer"
