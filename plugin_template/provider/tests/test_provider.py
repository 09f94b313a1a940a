"""The __NAME__ provider against a real OpenAI-compatible server on loopback (streamhost's test server).

``streamhost_llm``, ``streamhost_api_key`` and ``streamhost_host`` come from streamhost's pytest plugin;
the rest from its testing kit (``streamhost.testing``).
"""

from __future__ import annotations

import pytest
from streamhost import (
    AuthenticationError,
    GenerationRequest,
    MissingKeyError,
    RateLimitError,
    StreamError,
    TextDelta,
    Usage,
)
from streamhost.testing import (
    Script,
    cancel_call,
    cancel_stream,
    collect_events,
    collect_outcome,
    expect_disconnect,
    make_home,
    relay,
    serve,
)

import __PACKAGE__
from __PACKAGE__ import __CLASS__Provider

pytestmark = pytest.mark.anyio
TOKENS = ["Hel", "lo", " from", " __NAME__"]


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch, streamhost_api_key: str) -> str:
    monkeypatch.setenv("__ENV___API_KEY", streamhost_api_key)
    monkeypatch.delenv("__ENV___BASE_URL", raising=False)
    return streamhost_api_key


@pytest.fixture
def provider(streamhost_llm) -> __CLASS__Provider:
    provider = __CLASS__Provider()
    provider.configure({"base_url": streamhost_llm.url, "models": ["small"]})
    return provider


async def test_stream_yields_each_piece_then_usage(provider, streamhost_llm):
    streamhost_llm.script("small", Script(tokens=TOKENS, usage=(3, 4)))

    events = await collect_events(provider.stream(GenerationRequest(model="small", prompt="hi", system="be brief")))

    assert [e.text for e in events if isinstance(e, TextDelta)] == TOKENS
    assert events[-1] == Usage(input_tokens=3, output_tokens=4, total_tokens=7)
    sent = streamhost_llm.requests[-1]
    assert sent.authorized and sent.stream
    assert sent.body["messages"][0] == {"role": "system", "content": "be brief"}


async def test_relay_rebuilds_the_text_from_the_streamed_updates(provider, streamhost_llm):
    streamhost_llm.script("small", Script(tokens=TOKENS, delay_s=0.01))

    result, sink = await relay(provider, GenerationRequest(model="small", prompt="hi"))

    assert sink.text == result.text == "".join(TOKENS)
    assert len([u for u in sink.updates if u.kind == "text"]) >= 2  # it streamed, not one block at the end


async def test_generate_through_the_host_streams_progress(streamhost_host, streamhost_llm):
    streamhost_llm.script("small", Script(tokens=TOKENS, delay_s=0.01))
    config = {"providers": {"__NAME__": {"base_url": streamhost_llm.url, "models": ["small"]}}}

    async with streamhost_host(__PACKAGE__, config=config) as host:
        call = await host.call("generate", {"prompt": "hi", "model": "__NAME__/small"})

    assert not call.is_error, call.text
    assert call.text == call.streamed_text == "".join(TOKENS)
    assert call.meta["streamhost/model"] == "__NAME__/small"


async def test_a_missing_key_names_the_variable(provider, monkeypatch):
    monkeypatch.delenv("__ENV___API_KEY")

    with pytest.raises(MissingKeyError, match="__ENV___API_KEY"):
        await collect_events(provider.stream(GenerationRequest(model="small", prompt="hi")))


async def test_a_refused_key_is_an_authentication_error(provider, monkeypatch):
    monkeypatch.setenv("__ENV___API_KEY", "sk-wrong")

    with pytest.raises(AuthenticationError, match="HTTP 401"):
        await collect_events(provider.stream(GenerationRequest(model="small", prompt="hi")))


async def test_a_429_says_how_long_to_wait_and_the_host_waits_that_long(provider, streamhost_llm, streamhost_host):
    # The Retry-After header becomes RateLimitError.retry_after (error_for_status reads it with
    # retry_after_seconds); the host waits that long before it tries again, as long as no text has streamed.
    streamhost_llm.script("busy", Script(status=429, retry_after=0.3))
    refused = await collect_outcome(provider.stream(GenerationRequest(model="busy", prompt="hi")))
    assert isinstance(refused.error, RateLimitError) and refused.error.retry_after == 0.3

    streamhost_llm.script("small", Script(status=429, retry_after=0.3), Script(tokens=TOKENS))
    config = {"providers": {"__NAME__": {"base_url": streamhost_llm.url}}}
    async with streamhost_host(__PACKAGE__, config=config) as host:
        call = await host.call("generate", {"prompt": "hi", "model": "__NAME__/small"})
    assert call.text == "".join(TOKENS)
    first, second = [r for r in streamhost_llm.requests if r.model == "small"]
    assert second.started - first.started >= 0.29


async def test_a_mid_stream_error_keeps_the_text_before_it(provider, streamhost_llm, streamhost_host):
    streamhost_llm.script("small", Script(tokens=TOKENS, error_after=2, error_message="the model fell over"))

    broken = await collect_outcome(provider.stream(GenerationRequest(model="small", prompt="hi")))

    assert isinstance(broken.error, StreamError) and "the model fell over" in str(broken.error)
    assert broken.text == "Hello"
    config = {"providers": {"__NAME__": {"base_url": streamhost_llm.url}}}
    async with streamhost_host(__PACKAGE__, config=config) as host:
        call = await host.call("generate", {"prompt": "hi", "model": "__NAME__/small"})
    assert call.is_error and "the model fell over" in call.text
    assert call.streamed_text == "Hello", "what streamed before the error reached the client"


@pytest.mark.parametrize("how", ["cancel", "close"])
async def test_stopping_the_stream_closes_the_upstream_request(provider, streamhost_llm, how):
    # "cancel": CancelledError where the stream waits for the server; "close": GeneratorExit at its yield.
    # The plugin must let both through, and the HTTP request must end with them (the server stalls forever).
    streamhost_llm.script("small", Script(tokens=TOKENS, stall_after=1))

    stopped = await cancel_stream(provider.stream(GenerationRequest(model="small", prompt="hi")), how=how)

    assert stopped.text == "Hel"
    await expect_disconnect(streamhost_llm, "small", since=stopped.at)


async def test_generate_over_stdio_streams_and_a_cancel_reaches_the_upstream(tmp_path, streamhost_llm, key):
    # The installed plugin in a real `streamhost serve`, with a real MCP client on its stdio, as a user runs it.
    streamhost_llm.script("small", Script(tokens=TOKENS, delay_s=0.05))
    streamhost_llm.script("slow", Script(tokens=TOKENS, stall_after=2))
    home = make_home(tmp_path, plugins=["__DIST__"], env={"__ENV___API_KEY": key},
                     config=f'[providers.__NAME__]\nbase_url = "{streamhost_llm.url}"\n')

    async with serve(home.env) as served:
        call = await served.call("generate", {"prompt": "hi", "model": "__NAME__/small"})
        cancelled = await cancel_call(served, "generate", {"prompt": "hi", "model": "__NAME__/slow"})
        await expect_disconnect(streamhost_llm, "slow", since=cancelled.at)

    assert not call.is_error, call.text
    assert call.text == call.streamed_text == "".join(TOKENS)
    assert cancelled.text.startswith("Hel")
