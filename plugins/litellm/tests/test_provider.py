"""The litellm provider in-process, through the real litellm code path over HTTP to the loopback test server.

Models are ``openai/<scripted name>`` with ``api_base`` = the server, so every request is litellm's own
OpenAI-compatible client talking HTTP; the server's request records are the evidence of what was sent.
"""

from __future__ import annotations

import importlib.util
import json
import time
import traceback

import pytest

from streamhost import (
    AuthenticationError,
    ConfigError,
    GenerationRequest,
    MissingKeyError,
    ProviderError,
    RateLimitError,
    StreamError,
    TextDelta,
    UnknownModelError,
    UpstreamConnectionError,
    UpstreamServerError,
    UpstreamTimeoutError,
    Usage,
)
from streamhost.testing import Script, cancel_stream, expect_disconnect
from streamhost_litellm import LiteLLMProvider, sdk

pytestmark = pytest.mark.anyio

TOKENS = ["Hel", "lo", ", ", "wörld", " —", " ✓\n", "done."]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def request(model: str, **fields) -> GenerationRequest:
    return GenerationRequest(model=model, prompt=fields.pop("prompt", "say hello"), **fields)


def sent(server, model: str) -> list:
    """The server's records of requests naming ``model`` (litellm strips the ``openai/`` part)."""
    return [r for r in server.requests if r.model == model]


# ---------------------------------------------------------------------------- streaming


async def test_stream_rebuilds_text_and_reports_usage(server, provider, collect):
    server.script("chat-model", Script(tokens=TOKENS, usage=(11, 7)))

    out = await collect(provider, request("openai/chat-model"))

    assert out.error is None
    assert [e.text for e in out.events if isinstance(e, TextDelta)] == TOKENS
    assert out.usages == [Usage(input_tokens=11, output_tokens=7, total_tokens=18)]
    assert isinstance(out.events[-1], Usage), "usage comes after all of the text"
    [record] = sent(server, "chat-model")
    assert record.authorized and record.stream and record.path == "/v1/chat/completions"
    assert record.body["stream_options"] == {"include_usage": True}
    assert record.body["messages"] == [{"role": "user", "content": "say hello"}]
    assert record.tokens_sent == len(TOKENS) and not record.disconnected


async def test_system_temperature_max_tokens_and_per_model_params_are_sent(server, make_provider, collect):
    provider = make_provider(params={"openai/tuned": {"seed": 7, "top_p": 0.5}})
    server.script("tuned", Script(tokens=["ok"]))

    out = await collect(provider, GenerationRequest(
        model="openai/tuned", prompt="the prompt", system="be terse", temperature=0.25, max_tokens=42,
        options={"top_p": 0.9, "presence_penalty": 0.5},  # [models."litellm/openai/tuned"] wins over params
    ))

    assert out.error is None and out.text == "ok"
    body = sent(server, "tuned")[0].body
    assert body["messages"] == [{"role": "system", "content": "be terse"}, {"role": "user", "content": "the prompt"}]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["top_p"], body["presence_penalty"]) == (
        0.25, 42, 7, 0.9, 0.5)


async def test_a_per_model_api_base_and_key_variable_override_the_provider_table(server, make_provider, collect,
                                                                                 monkeypatch, api_key):
    monkeypatch.setenv("OTHER_KEY", api_key)
    provider = make_provider(api_base="http://127.0.0.1:9/v1", api_key_env="UNSET_VARIABLE")
    server.script("elsewhere", Script(tokens=["found"]))

    out = await collect(provider, request("openai/elsewhere", options={"api_base": server.url,
                                                                       "api_key_env": "OTHER_KEY"}))

    assert out.error is None and out.text == "found"
    assert sent(server, "elsewhere")[0].authorized


async def test_both_usage_chunk_shapes_give_the_same_usage():
    """1.83–1.106 put usage on a chunk with one empty delta, 1.109 on a chunk with no choices."""
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices
    from litellm.types.utils import Usage as LiteLLMUsage

    from streamhost_litellm.provider import chunk_events

    usage = LiteLLMUsage(prompt_tokens=4, completion_tokens=2, total_tokens=6)
    old = ModelResponseStream(choices=[StreamingChoices(index=0, delta=Delta())], usage=usage)
    new = ModelResponseStream(choices=[], usage=usage)
    text = ModelResponseStream(choices=[StreamingChoices(index=0, delta=Delta(content="hi"))])

    expected = [Usage(input_tokens=4, output_tokens=2, total_tokens=6)]
    assert chunk_events(old, "litellm/m") == expected and chunk_events(new, "litellm/m") == expected
    assert chunk_events(text, "litellm/m") == [TextDelta("hi")]


# ---------------------------------------------------------------------------- errors


async def test_a_mid_stream_error_is_a_stream_error_after_the_partial_text(server, provider, collect):
    server.script("breaks", Script(tokens=["partial ", "answer ", "lost"], error_after=2,
                                   error_message="the upstream fell over"))

    out = await collect(provider, request("openai/breaks"))

    assert out.text == "partial answer "
    assert isinstance(out.error, StreamError) and not out.error.retryable
    assert "litellm/openai/breaks" in out.error.message and "the upstream fell over" in out.error.message


@pytest.mark.parametrize(("status", "kind", "retry_after"), [
    (429, RateLimitError, 2.0), (500, UpstreamServerError, None), (503, UpstreamServerError, 1.5)])
async def test_429_and_5xx_before_the_first_token_are_retryable_and_litellm_does_not_retry(
        server, provider, collect, status, kind, retry_after):
    server.script("busy", Script(status=status, retry_after=retry_after, error_message="try later"))

    out = await collect(provider, request("openai/busy"))

    assert type(out.error) is kind and out.error.retryable
    assert out.error.retry_after == retry_after
    assert f"HTTP {status}" in out.error.message and "try later" in out.error.message
    assert out.events == []
    assert len(sent(server, "busy")) == 1, "litellm must not retry under the host"


async def test_a_refused_key_names_the_variable_and_never_shows_the_key(server, make_provider, collect, monkeypatch):
    wrong = "sk-wrong-0123456789abcdef"
    monkeypatch.setenv("WRONG_KEY", wrong)
    provider = make_provider(api_key_env="WRONG_KEY")

    out = await collect(provider, request("openai/any"))

    assert isinstance(out.error, AuthenticationError) and out.error.status == 401
    assert "WRONG_KEY" in out.error.message and "HTTP 401" in out.error.message
    shown = "".join(traceback.format_exception(out.error)) + out.error.message
    assert "0123456789abcdef" not in shown


async def test_context_window_exceeded_says_what_to_do(server, provider, collect):
    server.script("small", Script(status=400, error_message="This model's maximum context length is 8192 tokens. "
                                                            "However, your messages resulted in 9000 tokens."))

    out = await collect(provider, request("openai/small"))

    assert type(out.error) is ProviderError and out.error.status == 400 and not out.error.retryable
    assert "context window" in out.error.message and "8192" in out.error.message
    assert "shorten the prompt" in out.error.message


async def test_a_model_the_endpoint_does_not_have_is_a_clear_error(server, provider, collect):
    server.script("gone", Script(status=404, error_message="The model 'gone' does not exist"))

    out = await collect(provider, request("openai/gone"))

    assert type(out.error) is ProviderError and out.error.status == 404
    assert "not found at " + server.url in out.error.message and "does not exist" in out.error.message


async def test_a_model_without_a_sub_provider_is_an_unknown_model(server, provider, collect):
    out = await collect(provider, request("no-such-model-anywhere"))

    assert isinstance(out.error, UnknownModelError)
    assert "litellm/SUB-PROVIDER/MODEL" in out.error.message and "litellm/ollama/llama3.2" in out.error.message
    assert server.requests == []


async def test_a_missing_configured_key_is_named_before_any_request(server, make_provider, collect):
    provider = make_provider(api_key_env="NOT_EXPORTED_KEY")

    out = await collect(provider, request("openai/m"))

    assert isinstance(out.error, MissingKeyError)
    assert out.error.message.startswith("NOT_EXPORTED_KEY is not set")
    assert server.requests == []


async def test_a_missing_sub_provider_key_names_litellms_variable(server, make_provider, collect):
    provider = make_provider(api_key_env=None)

    anthropic = await collect(provider, request("anthropic/claude-sonnet-4-5"))
    gemini = await collect(provider, request("gemini/gemini-2.5-flash"))

    assert isinstance(anthropic.error, MissingKeyError)
    assert anthropic.error.message.startswith("ANTHROPIC_API_KEY is not set")
    assert "providers.litellm.api_key_env" in anthropic.error.message
    assert isinstance(gemini.error, MissingKeyError) and "GEMINI_API_KEY (or GOOGLE_API_KEY)" in gemini.error.message
    assert server.requests == []


async def test_without_api_key_env_litellm_reads_the_sub_providers_own_variable(server, make_provider, collect,
                                                                                monkeypatch, api_key):
    monkeypatch.setenv("OPENAI_API_KEY", api_key)
    provider = make_provider(api_key_env=None)
    server.script("own-variable", Script(tokens=["yes"]))

    out = await collect(provider, request("openai/own-variable"))

    assert out.error is None and out.text == "yes"
    assert sent(server, "own-variable")[0].authorized


async def test_an_unreachable_api_base_is_a_connection_error(make_provider, collect, closed_port_url):
    provider = make_provider(api_base=closed_port_url)

    out = await collect(provider, request("openai/m"))

    assert isinstance(out.error, UpstreamConnectionError) and out.error.retryable
    assert f"cannot reach {closed_port_url}" in out.error.message


async def test_a_refused_connection_on_a_native_route_is_a_connection_error(make_provider, collect, closed_port_url):
    provider = make_provider(api_base=closed_port_url, api_key_env=None)

    out = await collect(provider, request("ollama/llama3.2"))  # litellm's own aiohttp route, not the openai SDK

    assert isinstance(out.error, UpstreamConnectionError) and out.error.retryable
    assert f"cannot reach {closed_port_url}" in out.error.message
    assert "SSLContext" not in out.error.message, "no object reprs in a user's error"


async def test_a_missing_optional_sdk_is_not_retried_and_says_what_to_install(server, make_provider, collect):
    """litellm raises APIConnectionError when bedrock/'s boto3 is absent; the host must not retry that."""
    if importlib.util.find_spec("boto3") is not None:
        pytest.skip("boto3 is installed here")
    provider = make_provider(api_base=None, api_key_env=None)

    out = await collect(provider, request("bedrock/anthropic.claude-3-5-sonnet"))

    assert type(out.error) is ProviderError and not out.error.retryable
    assert "needs a package that is not installed" in out.error.message and "boto3" in out.error.message
    assert server.requests == []


async def test_a_silent_upstream_times_out_after_timeout_s(server, make_provider, collect):
    provider = make_provider(timeout_s=0.5)
    server.script("silent", Script(tokens=["late"], first_delay_s=30, headers_delay=True))

    await sdk.load_async()  # the clock is for the request, not for importing litellm
    started = time.monotonic()
    out = await collect(provider, request("openai/silent"))

    assert isinstance(out.error, UpstreamTimeoutError)
    assert f"timed out talking to {server.url}" in out.error.message
    assert time.monotonic() - started < 15, "timeout_s (0.5 s), not the upstream's 30 s silence, bounds the wait"


# ---------------------------------------------------------------------------- cancel


async def test_closing_the_stream_closes_the_upstream_response(server, provider):
    server.script("stalls", Script(tokens=["one ", "two ", "never"], stall_after=2))

    closed = await cancel_stream(provider.stream(request("openai/stalls")), after=2, how="close")

    assert closed.text == "one two "
    await expect_disconnect(server, "stalls", since=closed.at)  # ≈ms when idle; the stall is endless


async def test_cancelling_the_consuming_task_closes_the_upstream_response(server, provider):
    server.script("stalls", Script(tokens=["one ", "two "], stall_after=1))

    cancelled = await cancel_stream(provider.stream(request("openai/stalls")), after=1)

    assert cancelled.text == "one "
    await expect_disconnect(server, "stalls", since=cancelled.at)  # ≈ms when idle; the stall is endless


# ---------------------------------------------------------------------------- structured output


async def test_json_schema_is_asked_natively_where_litellm_says_the_model_supports_it(server, provider, collect):
    server.script("gpt-4.1-mini", Script(tokens=['{"city": "Oslo"}']))
    server.script("local-model", Script(tokens=['{"city": "Oslo"}']))

    known = await collect(provider, request("openai/gpt-4.1-mini", output_schema=SCHEMA))
    unknown = await collect(provider, request("openai/local-model", output_schema=SCHEMA))

    assert known.error is None and json.loads(known.text) == {"city": "Oslo"}
    assert sent(server, "gpt-4.1-mini")[0].body["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "output", "schema": SCHEMA}}
    assert unknown.error is None
    assert "response_format" not in sent(server, "local-model")[0].body, "the host asks in words for these"


# ---------------------------------------------------------------------------- config, listing, keys


@pytest.mark.parametrize(("options", "expected"), [
    ({"colour": "red"}, "unknown key providers.litellm.colour"),
    ({"models": "anthropic/x"}, "providers.litellm.models must be a list"),
    ({"api_base": ""}, "providers.litellm.api_base must be a non-empty string"),
    ({"timeout_s": 0}, "providers.litellm.timeout_s must be a number"),
    ({"debug": "yes"}, "providers.litellm.debug must be true or false"),
    ({"params": {"ollama/x": 3}}, 'providers.litellm.params."ollama/x" must be a table'),
    ({"params": {"ollama/x": {"api_key": "sk-in-the-file"}}},
     'params."ollama/x".api_key cannot be set: keep keys out of the config'),
    ({"params": {"ollama/x": {"num_retries": 3}}}, "streamhost retries itself"),
])
def test_bad_config_is_refused_with_the_key_named(options, expected):
    with pytest.raises(ConfigError) as info:
        LiteLLMProvider().configure(options)
    assert expected in info.value.message


async def test_reserved_per_model_options_are_refused_at_call_time(server, provider, collect):
    out = await collect(provider, request("openai/m", options={"stream": False}))

    assert isinstance(out.error, ConfigError)
    assert 'models."litellm/openai/m".stream cannot be set' in out.error.message
    assert server.requests == []


def test_listing_shows_advertised_models_and_each_ones_key_variable(monkeypatch, key_variable):
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-anything")
    provider = LiteLLMProvider()
    provider.configure({"models": ["anthropic/claude-sonnet-4-5", "ollama/llama3.2", "gemini/gemini-2.5-flash",
                                   "somevendor/model", "anthropic/claude-sonnet-4-5"]})

    assert [m.name for m in provider.models()] == ["anthropic/claude-sonnet-4-5", "ollama/llama3.2",
                                                   "gemini/gemini-2.5-flash", "somevendor/model"]
    keys = {m.name: (provider.key_variable_for(m.name), provider.key_configured_for(m.name))
            for m in provider.models()}
    assert keys == {
        "anthropic/claude-sonnet-4-5": ("ANTHROPIC_API_KEY", False),
        "ollama/llama3.2": (None, True),
        "gemini/gemini-2.5-flash": ("GOOGLE_API_KEY", True),  # the alternative that is set is named
        "somevendor/model": (None, True),  # unknown to the table: litellm decides at call time
    }
    provider.configure({"models": ["anthropic/claude-sonnet-4-5"], "api_key_env": key_variable})
    assert provider.key_variable_for("anthropic/claude-sonnet-4-5") == key_variable
    assert provider.key_configured_for("anthropic/claude-sonnet-4-5")
    provider.configure({"params": {"anthropic/claude-sonnet-4-5": {"api_key_env": key_variable}}})
    assert provider.key_variable_for("anthropic/claude-sonnet-4-5") == key_variable, "a per-model variable is listed"
    assert provider.key_variable_for("anthropic/claude-haiku-4-5") == "ANTHROPIC_API_KEY"
