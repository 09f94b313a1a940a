"""The __NAME__ provider against a real OpenAI-compatible server on loopback (streamhost's test server).

``streamhost_llm``, ``streamhost_api_key`` and ``streamhost_host`` come from streamhost's pytest plugin.
"""

from __future__ import annotations

import pytest
from streamhost import AuthenticationError, GenerationRequest, MissingKeyError, TextDelta, Usage
from streamhost.testing import Script, collect_events, relay

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
