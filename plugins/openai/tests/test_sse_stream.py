"""The plugin's own stream reading (SSE and JSON parsed here, not by the SDK's per-chunk models) against the real
loopback LLM test server: every token once and in order at speed, each way a stream ends, errors and closing."""

from __future__ import annotations

import asyncio
import time

import pytest

import streamhost
from streamhost import CallFailed, GenerationRequest, Status, TextDelta, Usage
from streamhost.testing import Script, relay

pytestmark = pytest.mark.anyio

APIS = [pytest.param("gpt-4.1-mini", id="chat"), pytest.param("o3", id="responses")]


@pytest.mark.parametrize("model", APIS)
async def test_a_fast_long_stream_arrives_whole_one_delta_per_token(server, provider, collect, model):
    tokens = [f"t{i} " for i in range(3000)] + ["naïve ", "✓ ", "😀"]
    server.script(model, Script(tokens=tokens, rate=20_000, usage=(9, len(tokens))))

    out = await collect(provider, GenerationRequest(model=model, prompt="go"))

    assert out.error is None, out.error
    assert out.deltas == tokens
    assert out.usages == [Usage(input_tokens=9, output_tokens=len(tokens), total_tokens=9 + len(tokens))]
    assert out.events[-1] == out.usages[0]


@pytest.mark.parametrize("end_with", [("finish", "done"), ("finish",)], ids=["done", "no-done"])
async def test_chat_content_filter_finish_succeeds_with_a_status(server, provider, collect, end_with):
    server.script("filtered", Script(tokens=["so ", "far"], end_after=2, end_with=end_with,
                                     finish_reason="content_filter"))

    out = await collect(provider, GenerationRequest(model="filtered", prompt="go"))

    assert out.error is None and out.text == "so far"
    assert [e for e in out.events if isinstance(e, Status)] == [
        Status('openai/filtered: the upstream\'s content filter stopped the answer (finish_reason "content_filter")')]


@pytest.mark.parametrize(("model", "kind", "said"), [
    pytest.param("gpt-4.1-mini", "error", "the upstream reported an error mid-stream: {message}", id="chat-error"),
    pytest.param("o3", "error", "the upstream reported an error mid-stream: {message}", id="responses-error"),
    pytest.param("o3", "response.failed", "the response failed: {message}", id="responses-failed"),
    pytest.param("o3", "response.incomplete", "the response stopped incomplete (max_output_tokens); output so far "
                 "is kept", id="responses-incomplete"),
])
async def test_an_upstream_failure_mid_stream_keeps_the_text_and_never_the_key(server, provider, api_key,
                                                                             model, kind, said):
    server.script(model, Script(tokens=["one ", "two ", "three"], error_after=2, error_kind=kind,
                                error_message=f"overloaded, key {api_key}"))

    with pytest.raises(CallFailed) as info:  # relayed as the host relays it: the error shown is masked there
        await relay(provider, GenerationRequest(model=model, prompt="go"))

    assert info.value.result.text == "one two "
    error = info.value.error
    assert isinstance(error, streamhost.StreamError) and not error.retryable, repr(error)
    assert error.message == f"openai/{model}: " + said.format(message="overloaded, key ****")


@pytest.mark.parametrize("model", APIS)
async def test_a_rate_limit_before_the_stream_is_retryable_with_its_wait(server, provider, collect, model):
    server.script(model, Script(status=429, retry_after=7, error_message="slow down"))

    out = await collect(provider, GenerationRequest(model=model, prompt="go"))

    assert out.events == []
    assert isinstance(out.error, streamhost.RateLimitError), repr(out.error)
    assert out.error.retryable and out.error.retry_after == 7
    assert "slow down" in out.error.message


@pytest.mark.parametrize("model", APIS)
async def test_cancelling_a_stream_in_full_flow_closes_the_upstream_at_once(server, provider, model):
    server.script(model, Script(tokens=[f"w{i} " for i in range(100_000)], rate=2000))
    seen: list[TextDelta] = []

    async def consume() -> None:
        async for event in provider.stream(GenerationRequest(model=model, prompt="go")):
            seen.append(event)

    task = asyncio.create_task(consume())
    for _ in range(3000):
        if len(seen) >= 50:
            break
        await asyncio.sleep(0.01)
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await server.await_for(lambda rs: rs and rs[0].disconnected, 30), server.requests
    record = server.requests[0]
    assert record.disconnected_at - cancelled_at < 5 and record.tokens_sent < 100_000  # 50 s of tokens were due
    assert [e.text for e in seen] == [f"w{i} " for i in range(len(seen))]

