"""The openai provider, in-process, against the real OpenAI-compatible test server on loopback.

Nothing of ours and nothing of the openai SDK is mocked: every call goes over HTTP to
``streamhost.testing.LLMTestServer``, whose request records are the evidence of what was sent.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
from typing import Any

import pytest

import streamhost
from streamhost import GenerationRequest, TextDelta, Usage
from streamhost.testing import LLMTestServer, Script, cancel_stream, expect_disconnect
from streamhost_openai import OpenAIProvider

pytestmark = pytest.mark.anyio

TOKENS = ["Hel", "lo", ", ", "wörld", " —", " ✓\n", "done."]
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}


def only(records: list[Any], api: str) -> Any:
    """The single request record for ``api`` (fails when there is none or several)."""
    matching = [r for r in records if r.api == api]
    assert len(matching) == 1, [(r.api, r.path) for r in records]
    return matching[0]


def logged(exc: BaseException) -> str:
    """What ``logging.exception`` / a traceback print would show for ``exc``, chained errors included."""
    return "".join(traceback.format_exception(exc))


def error_chain_text(exc: BaseException) -> str:
    """Every message and repr along the exception's cause/context chain."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts += [str(current), repr(current), *map(str, current.args)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


# ---------------------------------------------------------------------------- Chat Completions


async def test_chat_stream_rebuilds_text_and_reports_usage(server, provider, collect):
    server.script("gpt-4.1-mini", Script(tokens=TOKENS, usage=(11, 7)))

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="say hello"))

    assert out.error is None
    assert out.deltas == TOKENS  # one TextDelta per upstream token, none merged, none empty
    assert out.text == "".join(TOKENS)
    assert out.usages == [Usage(input_tokens=11, output_tokens=7, total_tokens=18)]
    assert isinstance(out.events[-1], Usage)  # the usage chunk comes after all of the text
    assert all(isinstance(e, (TextDelta, Usage)) for e in out.events)

    rec = only(server.requests, "chat")
    assert rec.path == "/v1/chat/completions"
    assert rec.authorized
    assert rec.stream is True
    assert rec.model == "gpt-4.1-mini"
    assert rec.body["stream_options"] == {"include_usage": True}
    assert rec.body["messages"] == [{"role": "user", "content": "say hello"}]  # no empty system message
    for absent in ("temperature", "max_tokens", "response_format"):
        assert absent not in rec.body
    assert rec.tokens_sent == len(TOKENS) and not rec.disconnected


async def test_chat_passes_system_temperature_and_max_tokens(server, provider, collect):
    server.script("gpt-4o", Script(tokens=["ok"], usage=(3, 1)))
    request = GenerationRequest(model="gpt-4o", prompt="the prompt", system="be terse", temperature=0.25, max_tokens=42)

    out = await collect(provider, request)

    assert out.error is None and out.text == "ok"
    body = only(server.requests, "chat").body
    assert body["messages"] == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "the prompt"}]
    assert body["temperature"] == 0.25
    assert body["max_tokens"] == 42


async def test_chat_default_usage_counts_come_from_the_wire(server, provider, collect):
    # No scripted usage: the server counts prompt words (2) and tokens sent (3) itself.
    server.script("some-local-model", Script(tokens=["a", "b", "c"]))

    out = await collect(provider, GenerationRequest(model="some-local-model", prompt="two words"))

    assert out.text == "abc"
    assert out.usages == [Usage(input_tokens=2, output_tokens=3, total_tokens=5)]


# ---------------------------------------------------------------------------- Responses API


@pytest.mark.parametrize(
    ("model", "options", "config"),
    [
        pytest.param("o3", {}, {}, id="catalog-routes-o3"),
        pytest.param("gpt-5-mini", {}, {}, id="catalog-routes-gpt-5-mini"),
        pytest.param("o9-experimental", {}, {}, id="name-pattern-routes-unknown-reasoning-model"),
        pytest.param("gpt-4.1-mini", {"api": "responses"}, {}, id="request-option"),
        pytest.param("gpt-4.1-mini", {}, {"api": "responses"}, id="provider-config"),
        pytest.param("gpt-4.1-mini", {"api": "responses"}, {"api": "chat"}, id="request-option-beats-config"),
    ],
)
async def test_responses_api_streams_text_and_usage(server, make_provider, collect, model, options, config):
    server.script(model, Script(tokens=TOKENS, usage=(13, 7)))
    provider = make_provider(**config)
    request = GenerationRequest(model=model, prompt="explain", system="you are a test", max_tokens=64, options=options)

    out = await collect(provider, request)

    assert out.error is None
    assert out.deltas == TOKENS
    assert out.usages == [Usage(input_tokens=13, output_tokens=7, total_tokens=20)]
    assert isinstance(out.events[-1], Usage)

    rec = only(server.requests, "responses")
    assert rec.path == "/v1/responses"
    assert rec.stream is True and rec.model == model
    assert rec.body["instructions"] == "you are a test"
    assert rec.body["input"] == "explain"
    assert rec.body["max_output_tokens"] == 64
    assert "messages" not in rec.body and "max_tokens" not in rec.body and "stream_options" not in rec.body


@pytest.mark.parametrize(
    ("model", "options", "config"),
    [
        pytest.param("o3", {"api": "chat"}, {}, id="request-option-forces-chat"),
        pytest.param("o3", {}, {"api": "chat"}, id="config-forces-chat"),
        pytest.param("gpt-4o-mini", {}, {"api": "auto"}, id="auto-catalog-chat"),
        pytest.param("llama-3.1-8b", {}, {}, id="unknown-model-defaults-to-chat"),
    ],
)
async def test_chat_routing(server, make_provider, collect, model, options, config):
    server.script(model, Script(tokens=["x", "y"]))

    out = await collect(make_provider(**config), GenerationRequest(model=model, prompt="p", options=options))

    assert out.error is None and out.text == "xy"
    assert [r.api for r in server.requests] == ["chat"]


async def test_responses_without_system_sends_no_instructions(server, provider, collect):
    server.script("o3", Script(tokens=["fine"]))

    out = await collect(provider, GenerationRequest(model="o3", prompt="hi", temperature=0.5))

    assert out.text == "fine"
    body = only(server.requests, "responses").body
    assert "instructions" not in body
    assert body["temperature"] == 0.5
    assert "max_output_tokens" not in body


# ---------------------------------------------------------------------------- mid-stream failures


@pytest.mark.parametrize(
    ("model", "kind", "expected"),
    [
        pytest.param("gpt-4.1-mini", "error", "boom-7q", id="chat-error-data-line"),
        pytest.param("o3", "error", "boom-7q", id="responses-error-event"),
        pytest.param("o3", "response.failed", "boom-7q", id="responses-failed"),
        pytest.param("o3", "response.incomplete", "max_output_tokens", id="responses-incomplete"),
    ],
)
async def test_mid_stream_failure_raises_stream_error_after_the_text(server, provider, collect, model, kind, expected):
    server.script(
        model, Script(tokens=["one ", "two ", "three"], error_after=2, error_kind=kind, error_message="boom-7q")
    )

    out = await collect(provider, GenerationRequest(model=model, prompt="count"))

    assert out.deltas == ["one ", "two "]  # yielded before the failure, not swallowed
    assert out.usages == []
    assert isinstance(out.error, streamhost.StreamError), repr(out.error)
    assert f"openai/{model}" in out.error.message
    assert expected in out.error.message
    assert not out.error.retryable
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------- HTTP errors


async def test_wrong_key_is_an_authentication_error_that_never_shows_the_key(server, monkeypatch, provider, collect):
    wrong = "sk-wrong-abcdef123456"
    monkeypatch.setenv("OPENAI_API_KEY", wrong)

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert out.events == []
    assert isinstance(out.error, streamhost.AuthenticationError), repr(out.error)
    assert out.error.status == 401
    assert "OPENAI_API_KEY" in out.error.message
    text = error_chain_text(out.error)
    assert wrong not in text and "abcdef123456" not in text
    rec = only(server.requests, "chat")
    assert not rec.authorized  # the wrong key really was sent and refused


@pytest.mark.parametrize(
    "echo",
    [
        pytest.param("Incorrect API key provided: {key}.", id="full-key"),
        pytest.param("Incorrect API key provided: {key_masked}. Find your key at ...", id="masked-key"),
    ],
)
async def test_key_echoed_by_the_upstream_is_scrubbed(server, provider, collect, api_key, echo):
    # OpenAI echoes (a masked form of) the key in its 401 message; it must not reach the user.
    message = echo.format(key=api_key, key_masked=api_key[:8] + "*" * 6 + api_key[-4:])
    server.script("gpt-4.1-mini", Script(status=401, error_message=message))

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert isinstance(out.error, streamhost.AuthenticationError), repr(out.error)
    for shown in (str(out.error), repr(out.error), out.error.message, *map(str, out.error.args), logged(out.error)):
        assert api_key not in shown and api_key[-4:] not in shown
    assert "Incorrect API key provided" in out.error.message


async def test_a_key_without_the_sk_prefix_is_scrubbed_too(make_provider, monkeypatch, collect):
    local_key = "local-key-abcdef123456"
    monkeypatch.setenv("OPENAI_API_KEY", local_key)
    with LLMTestServer(require_key=local_key) as other:
        other.script("llama", Script(status=403, error_message=f"key {local_key} may not use llama"))
        out = await collect(make_provider(base_url=other.url), GenerationRequest(model="llama", prompt="hi"))

    assert isinstance(out.error, streamhost.AuthenticationError), repr(out.error)
    assert "may not use llama" in out.error.message
    for shown in (str(out.error), repr(out.error), logged(out.error)):
        assert local_key not in shown and "abcdef123456" not in shown


async def test_permission_denied_is_an_authentication_error(server, provider, collect):
    server.script("gpt-4.1", Script(status=403, error_message="project has no access"))

    out = await collect(provider, GenerationRequest(model="gpt-4.1", prompt="hi"))

    assert isinstance(out.error, streamhost.AuthenticationError), repr(out.error)
    assert out.error.status == 403
    assert "OPENAI_API_KEY" in out.error.message and "project has no access" in out.error.message


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "o3"])
async def test_rate_limit_carries_retry_after(server, provider, collect, model):
    server.script(model, Script(status=429, retry_after=1.5, error_message="slow down"))

    out = await collect(provider, GenerationRequest(model=model, prompt="hi"))

    assert out.events == []
    assert isinstance(out.error, streamhost.RateLimitError), repr(out.error)
    assert out.error.retry_after == 1.5
    assert out.error.retryable
    assert out.error.status == 429
    assert "slow down" in out.error.message
    assert len(server.requests) == 1  # the SDK does not retry on its own: the host decides


async def test_rate_limit_without_retry_after(server, provider, collect):
    server.script("gpt-4.1-mini", Script(status=429))

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert isinstance(out.error, streamhost.RateLimitError) and out.error.retry_after is None


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "o3"])
async def test_server_error_is_retryable_upstream_server_error(server, provider, collect, model):
    server.script(model, Script(status=500, error_message="kaput"))

    out = await collect(provider, GenerationRequest(model=model, prompt="hi"))

    assert isinstance(out.error, streamhost.UpstreamServerError), repr(out.error)
    assert out.error.retryable
    assert out.error.status == 500
    assert "kaput" in out.error.message
    assert len(server.requests) == 1


async def test_not_found_points_at_models_refresh(server, provider, collect):
    server.script("gpt-nope", Script(status=404, error_message="The model 'gpt-nope' does not exist"))

    out = await collect(provider, GenerationRequest(model="gpt-nope", prompt="hi"))

    assert type(out.error) is streamhost.ProviderError, repr(out.error)
    assert out.error.status == 404
    assert not out.error.retryable
    assert "streamhost models --refresh" in out.error.message
    assert "openai/gpt-nope" in out.error.message


async def test_bad_request_is_a_plain_provider_error(server, provider, collect):
    server.script("gpt-4.1-mini", Script(status=400, error_message="bad temperature"))

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert type(out.error) is streamhost.ProviderError, repr(out.error)
    assert out.error.status == 400 and not out.error.retryable
    assert "bad temperature" in out.error.message


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "o3"])
async def test_connection_refused_names_the_url(make_provider, closed_port_url, collect, model):
    provider = make_provider(base_url=closed_port_url)

    started = time.monotonic()
    out = await collect(provider, GenerationRequest(model=model, prompt="hi"))

    assert time.monotonic() - started < 10  # refused at once (ms); loose for a loaded machine
    assert isinstance(out.error, streamhost.UpstreamConnectionError), repr(out.error)
    assert closed_port_url in out.error.message
    assert out.error.retryable


async def test_read_timeout_mid_stream_is_a_timeout_error(server, make_provider, collect):
    server.script("gpt-4.1-mini", Script(tokens=["a", "b", "c"], stall_after=2))
    provider = make_provider(timeout_s=2)  # it bounds the connect and the first tokens too: room for a slow machine

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert out.deltas == ["a", "b"]
    assert isinstance(out.error, streamhost.UpstreamTimeoutError), repr(out.error)
    assert await server.await_for(lambda rs: rs and rs[0].disconnected, 30)


# ---------------------------------------------------------------------------- keys


async def test_missing_key_raises_on_first_iteration_and_listing_still_works(server, monkeypatch, provider):
    monkeypatch.delenv("OPENAI_API_KEY")

    assert provider.key_variable() == "OPENAI_API_KEY"
    assert provider.key_configured() is False
    provider.models()  # listing needs no key
    agen = provider.stream(GenerationRequest(model="gpt-4.1-mini", prompt="hi"))  # creating it raises nothing
    with pytest.raises(streamhost.MissingKeyError) as info:
        await agen.__anext__()
    assert "OPENAI_API_KEY" in info.value.message
    await agen.aclose()
    assert server.requests == []  # nothing was sent without a key


async def test_key_is_read_at_call_time_not_at_registration(server, monkeypatch, make_provider, collect, api_key):
    monkeypatch.delenv("OPENAI_API_KEY")
    registered: list[Any] = []
    import streamhost_openai

    streamhost_openai.register_providers(registered.append)  # registering without a key is fine
    [provider] = registered
    make_provider.adopt(provider)
    assert isinstance(provider, OpenAIProvider)
    provider.configure({"base_url": server.url})
    assert not provider.key_configured()

    monkeypatch.setenv("OPENAI_API_KEY", api_key)  # set after registration
    assert provider.key_configured()
    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi there"))

    assert out.error is None and out.text == "echo: hi there"
    assert only(server.requests, "chat").authorized


async def test_api_key_env_names_the_variable_to_read(server, monkeypatch, make_provider, collect, api_key):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("MY_KEY", api_key)
    provider = make_provider(api_key_env="MY_KEY")

    assert provider.key_variable() == "MY_KEY" and provider.key_configured()
    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))
    assert out.error is None and out.text == "echo: hi"
    assert only(server.requests, "chat").authorized


async def test_api_key_env_does_not_fall_back_to_openai_api_key(server, make_provider, collect):
    provider = make_provider(api_key_env="MY_KEY")  # OPENAI_API_KEY is set, MY_KEY is not

    assert not provider.key_configured()
    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert isinstance(out.error, streamhost.MissingKeyError), repr(out.error)
    assert "MY_KEY" in out.error.message
    assert server.requests == []


async def test_auth_error_names_the_configured_variable(server, monkeypatch, make_provider, collect):
    monkeypatch.setenv("MY_KEY", "sk-wrong-abcdef123456")
    provider = make_provider(api_key_env="MY_KEY")

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert isinstance(out.error, streamhost.AuthenticationError), repr(out.error)
    assert "MY_KEY" in out.error.message
    assert "abcdef123456" not in error_chain_text(out.error)


async def test_openai_base_url_variable_is_honoured(server, monkeypatch, make_provider, collect):
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    provider = make_provider(base_url=None)

    assert provider.base_url == server.url
    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="via env"))
    assert out.text == "echo: via env"
    assert len(server.requests) == 1


# ---------------------------------------------------------------------------- closing


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "o3"])
async def test_aclose_closes_the_upstream_request(server, provider, model):
    server.script(model, Script(tokens=["a", "b", "c", "d"], stall_after=2))
    stream = provider.stream(GenerationRequest(model=model, prompt="hi"))

    closed = await cancel_stream(stream, after=2, how="close")  # GeneratorExit at the yield

    assert closed.seen == [TextDelta("a"), TextDelta("b")]
    record = await expect_disconnect(server, model, since=closed.at)  # the stall is endless
    assert record.tokens_sent == 2


@pytest.mark.parametrize("model", ["gpt-4.1-mini", "o3"])
async def test_task_cancellation_closes_the_upstream_request(server, provider, model):
    server.script(model, Script(tokens=["a", "b", "c"], stall_after=1))

    # CancelledError while the stream waits on the stalled upstream; the plugin must let it through.
    cancelled = await cancel_stream(provider.stream(GenerationRequest(model=model, prompt="hi")), after=1)

    assert cancelled.seen == [TextDelta("a")]
    await expect_disconnect(server, model, since=cancelled.at)  # the stall is endless


async def test_finished_stream_leaves_no_disconnect(server, provider, collect):
    # Control for the two tests above: a stream read to its end is not recorded as a disconnect.
    server.script("gpt-4.1-mini", Script(tokens=["a"]))

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="hi"))

    assert out.error is None
    assert await server.await_for(lambda rs: rs and rs[0].ended is not None, 30)
    assert not server.requests[0].disconnected


# ---------------------------------------------------------------------------- structured output


async def test_chat_structured_output_sends_json_schema(server, provider, collect):
    answer = json.dumps({"city": "Oslo", "population": 717710})
    server.script("gpt-4.1-mini", Script(tokens=[answer[:10], answer[10:]]))

    out = await collect(provider, GenerationRequest(model="gpt-4.1-mini", prompt="city?", output_schema=SCHEMA))

    assert json.loads(out.text) == {"city": "Oslo", "population": 717710}
    fmt = only(server.requests, "chat").body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"] == SCHEMA
    assert isinstance(fmt["json_schema"].get("name"), str) and fmt["json_schema"]["name"]


async def test_responses_structured_output_sends_text_format(server, provider, collect):
    server.script("o3", Script(tokens=['{"city": "Oslo", ', '"population": 1}']))

    out = await collect(provider, GenerationRequest(model="o3", prompt="city?", output_schema=SCHEMA))

    assert json.loads(out.text) == {"city": "Oslo", "population": 1}
    body = only(server.requests, "responses").body
    fmt = body["text"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["schema"] == SCHEMA
    assert isinstance(fmt.get("name"), str) and fmt["name"]
    assert "response_format" not in body


# ---------------------------------------------------------------------------- configure


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param({"base_ur": "http://x"}, "base_ur", id="unknown-key"),
        pytest.param({"base_url": "http://x", "apikey": "sk-x"}, "apikey", id="unknown-key-among-good"),
        pytest.param({"api": "completions"}, "api", id="bad-api"),
        pytest.param({"api": ""}, "api", id="empty-api"),
        pytest.param({"models": "gpt-4.1"}, "models", id="models-not-a-list"),
    ],
)
def test_configure_rejects_bad_settings(options, named):
    provider = OpenAIProvider()
    with pytest.raises(streamhost.ConfigError) as info:
        provider.configure(options)
    assert named in info.value.message
    assert provider.options == OpenAIProvider().options  # nothing half-applied: still the defaults


def test_configure_accepts_every_documented_key(server):
    provider = OpenAIProvider()
    provider.configure(
        {"base_url": server.url + "/", "api_key_env": "MY_KEY", "api": "chat", "models": ["m1"], "timeout_s": 30}
    )
    assert provider.base_url == server.url  # trailing slash dropped
    assert provider.key_variable() == "MY_KEY"


# ---------------------------------------------------------------------------- models


async def test_refresh_models_caches_the_endpoint_listing(server, make_provider, cache_home):
    server.set_models(["local-llama", "gpt-test-a", "whisper-x"])
    provider = make_provider(models=["configured-one"])
    assert [m.name for m in provider.models()] == ["configured-one"]  # not refreshed yet, nothing curated

    refreshed = await provider.refresh_models()

    rec = only(server.requests, "models")
    assert rec.method == "GET" and rec.path == "/v1/models" and rec.authorized
    cache_file = cache_home / "streamhost" / "openai-models.json"
    assert cache_file.is_file()
    assert server.url in cache_file.read_text(encoding="utf-8")
    names = [m.name for m in refreshed]
    assert set(names) == {"configured-one", "local-llama", "gpt-test-a", "whisper-x"}
    assert len(names) == len(set(names))

    # A new provider (a new host process) reads the cache: configured + cached, nothing curated.
    fresh = make_provider()
    listed = [m.name for m in fresh.models()]
    assert sorted(listed) == ["gpt-test-a", "local-llama", "whisper-x"]
    assert "gpt-4.1-mini" not in listed and "o3" not in listed
    assert len(server.requests) == 1  # models() itself made no call


async def test_refresh_models_with_a_wrong_key_is_an_authentication_error(server, monkeypatch, provider):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-abcdef123456")
    with pytest.raises(streamhost.AuthenticationError) as info:
        await provider.refresh_models()
    assert "abcdef123456" not in error_chain_text(info.value)


async def test_official_url_lists_the_curated_models(server, make_provider):
    server.set_models(["only-on-the-test-server"])
    await make_provider().refresh_models()  # cached for the test server's URL only

    provider = OpenAIProvider()
    provider.configure({"models": ["my-fine-tune"]})  # no base_url: the official endpoint
    infos = provider.models()

    names = [m.name for m in infos]
    assert "only-on-the-test-server" not in names  # the cache is per endpoint
    for name in ("gpt-4.1-mini", "gpt-4.1", "gpt-4o", "o3", "gpt-5", "my-fine-tune"):
        assert name in names
    assert len(names) == len(set(names))
    defaults = [m.name for m in infos if m.default]
    assert defaults == ["gpt-4.1-mini"]
    assert all(m.description for m in infos if m.name != "my-fine-tune")
    assert len(server.requests) == 1


def test_official_url_curated_models_filter_the_cached_listing(cache_home):
    # The official /v1/models lists embeddings, audio and so on: only chat-like names are shown.
    from streamhost_openai import catalog

    catalog.write_cache(
        "https://api.openai.com/v1",
        ["gpt-4o-2024-08-06", "whisper-1", "text-embedding-3-small", "gpt-4.1-mini", "o4-mini-deep-research"],
    )
    provider = OpenAIProvider()
    provider.configure({"base_url": "https://api.openai.com/v1/"})
    names = [m.name for m in provider.models()]

    assert names[0] == "gpt-4.1-mini"
    assert "gpt-4o-2024-08-06" in names and "o4-mini-deep-research" in names
    assert "whisper-1" not in names and "text-embedding-3-small" not in names
    assert names.count("gpt-4.1-mini") == 1


# ---------------------------------------------------------------------------- import cost


def test_import_and_listing_do_not_import_openai_or_touch_the_network(tmp_path):
    code = "\n".join(
        [
            "import socket, sys",
            "def refuse(*args, **kwargs):",
            "    raise AssertionError('network used: %r' % (args,))",
            "socket.socket.connect = refuse",
            "socket.socket.connect_ex = refuse",
            "socket.create_connection = refuse",
            "import streamhost_openai",
            "assert 'openai' not in sys.modules, 'importing the plugin imported openai'",
            "p = streamhost_openai.OpenAIProvider()",
            "p.configure({})",
            "names = [m.name for m in p.models()]",
            "assert 'gpt-4.1-mini' in names, names",
            "p.key_configured()",
            "assert 'openai' not in sys.modules, 'listing models imported openai'",
            "assert 'httpx2' not in sys.modules and 'aiohttp' not in sys.modules",
            "print('ok')",
        ]
    )
    env = {"PATH": "", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_warm_up_leaves_the_first_call_no_sdk_module_to_import(tmp_path):
    # The SDK loads its chat and responses resources on first touch of client.chat / client.responses
    # (100-270 ms on the event loop); the warm-up does that in its thread, without sending anything.
    code = "\n".join(
        [
            "import asyncio, socket, sys",
            "def refuse(*args, **kwargs):",
            "    raise AssertionError('network used: %r' % (args,))",
            "socket.socket.connect = refuse",
            "socket.create_connection = refuse",
            "import streamhost_openai",
            "p = streamhost_openai.OpenAIProvider()",
            "p.configure({})",
            "p.warm()",
            "before = set(sys.modules)",
            "client = asyncio.run(p._client('sk-test'))",
            "client.chat.completions.with_streaming_response, client.responses.with_streaming_response",
            "late = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('openai', 'httpx2', 'aiohttp'))",
            "assert not late, late",
            "print('ok')",
        ]
    )
    env = {"PATH": "", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
