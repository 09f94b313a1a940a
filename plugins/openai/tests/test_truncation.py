"""Answers cut short and malformed text on the wire: through the real loopback test server, relayed as the host
relays them (``streamhost.testing.relay``), so a failure shows the text kept as the user would get it."""

from __future__ import annotations

import pytest

from streamhost import CallFailed, GenerationRequest, StreamError
from streamhost.testing import Script, relay

pytestmark = pytest.mark.anyio

TOKENS = ["The ", "answer ", "is ", "forty-", "two."]
KEPT = "The answer is "  # the three tokens before the cut
APIS = [pytest.param({}, "no finish_reason", id="chat"),
        pytest.param({"api": "responses"}, "no response.completed", id="responses")]


def ask(model: str, options: dict) -> GenerationRequest:
    return GenerationRequest(model=model, prompt="what is it?", options=options)


@pytest.mark.parametrize(("options", "missing", "end_with"), [
    pytest.param({}, "no finish_reason", (), id="chat-body-ends"),
    pytest.param({}, "no finish_reason", ("done",), id="chat-done-sentinel"),
    pytest.param({"api": "responses"}, "no response.completed", (), id="responses-body-ends"),
    pytest.param({"api": "responses"}, "no response.completed", ("finish",), id="responses-item-closed"),
    pytest.param({"api": "responses"}, "no response.completed", ("done",), id="responses-done-sentinel"),
])
async def test_a_stream_that_ends_before_the_model_finished_is_an_error_keeping_the_text(
        server, provider, options, missing, end_with):
    server.script("cut", Script(tokens=TOKENS, end_after=3, end_with=end_with))

    with pytest.raises(CallFailed) as info:
        await relay(provider, ask("cut", options))

    error = info.value.error
    assert isinstance(error, StreamError) and not error.retryable
    assert error.message == (f"openai/cut: the upstream closed the stream before the model finished ({missing}); "
                             "the text so far is kept")
    assert info.value.result.text == KEPT
    [record] = server.requests
    assert record.tokens_sent == 3 and not record.disconnected  # the server ended the body; the client did not leave


@pytest.mark.parametrize(("options", "missing"), APIS)
async def test_a_connection_dropped_mid_answer_is_a_stream_error_not_an_unreachable_endpoint(
        server, provider, options, missing):
    server.script("dropped", Script(tokens=TOKENS, end_after=3, drop_connection=True))

    with pytest.raises(CallFailed) as info:
        await relay(provider, ask("dropped", options))

    error = info.value.error
    assert isinstance(error, StreamError) and not error.retryable
    assert error.message.startswith("openai/dropped: the upstream closed the stream before the model finished "
                                    "(connection lost")
    assert error.message.endswith("; the text so far is kept")
    assert "cannot reach" not in error.message
    assert info.value.result.text == KEPT


async def test_a_finish_reason_on_the_last_chunk_makes_a_stream_complete_without_usage_or_done(server, provider):
    # Some compatible servers send neither a usage chunk nor [DONE]: the finish_reason alone is enough.
    server.script("terse", Script(tokens=TOKENS, end_after=3, end_with=("finish",)))

    result, sink = await relay(provider, ask("terse", {}))

    assert result.text == KEPT and result.usage is None
    assert sink.statuses == []


@pytest.mark.parametrize("end_with", [("finish",), ("finish", "done")], ids=["no-done", "done"])
async def test_a_length_finish_succeeds_and_says_the_answer_is_cut_short(server, provider, end_with):
    server.script("limited", Script(tokens=TOKENS, end_after=3, end_with=end_with, finish_reason="length"))

    result, sink = await relay(provider, GenerationRequest(model="limited", prompt="go", max_tokens=3))

    assert result.text == KEPT
    assert sink.statuses == ['openai/limited: the answer stopped at the output token limit (finish_reason "length") '
                             "and is cut short — a larger max_tokens gives more"]


@pytest.mark.parametrize(("options", "missing"), APIS)
async def test_text_that_is_a_number_is_a_stream_error_naming_its_type(server, provider, options, missing):
    server.script("numeric", Script(tokens=["one ", 5, "six"]))

    with pytest.raises(CallFailed) as info:
        await relay(provider, ask("numeric", options))

    error = info.value.error
    assert isinstance(error, StreamError)
    assert error.message == ("openai/numeric: the upstream sent text that is not a string (int: 5); "
                             "the text so far is kept")
    assert info.value.result.text == "one "


@pytest.mark.parametrize(("options", "missing"), APIS)
async def test_a_lone_surrogate_escape_passes_through_and_the_call_completes(server, provider, options, missing):
    server.script("surrogate", Script(tokens=["bad ", "\ud800", " end"]))

    result, _ = await relay(provider, ask("surrogate", options))

    # The host repairs the character for the MCP wire; here only that the text arrives whole in either form.
    assert result.text in ("bad \ud800 end", "bad \ufffd end")


async def test_through_serve_a_cut_answer_is_an_error_result_that_keeps_the_text(server, serve_env, mcp_serve):
    server.script("cut", Script(tokens=TOKENS, end_after=3, end_with=("done",)))

    async with mcp_serve(serve_env) as served:
        result = await served.call("generate", {"prompt": "what is it?", "model": "openai/cut"})
        after = await served.call("generate", {"prompt": "still there?", "model": "openai/fine"})

    assert result.is_error
    assert result.text.startswith("openai/cut: the upstream closed the stream before the model finished "
                                  "(no finish_reason)")
    assert KEPT in result.text and result.streamed_text == KEPT
    assert not after.is_error and after.text == "echo: still there?"
