"""Answers cut short and malformed text on the wire, through litellm's real OpenAI-compatible route to the
loopback test server, relayed as the host relays them (``streamhost.testing.relay``)."""

from __future__ import annotations

import pytest

from streamhost import CallFailed, GenerationRequest, StreamError
from streamhost.testing import Script, relay

pytestmark = pytest.mark.anyio

TOKENS = ["The ", "answer ", "is ", "forty-", "two."]
KEPT = "The answer is "  # the three tokens before the cut


def ask(model: str, **fields) -> GenerationRequest:
    return GenerationRequest(model=f"openai/{model}", prompt="what is it?", **fields)


@pytest.mark.parametrize(("end_with", "drop"), [((), False), (("done",), False), ((), True)],
                         ids=["body-ends", "done-sentinel", "connection-dropped"])
async def test_a_stream_that_ends_before_the_model_finished_is_an_error_keeping_the_text(
        server, provider, end_with, drop):
    # litellm makes up finish_reason "stop" (and usage) for a stream that just stops, even for a dropped
    # connection: without the plugin's check all three pass for complete answers.
    server.script("cut", Script(tokens=TOKENS, end_after=3, end_with=end_with, drop_connection=drop))

    with pytest.raises(CallFailed) as info:
        await relay(provider, ask("cut"))

    error = info.value.error
    assert isinstance(error, StreamError) and not error.retryable
    assert error.message == ("litellm/openai/cut: the upstream closed the stream before the model finished "
                             "(no finish_reason); the text so far is kept")
    assert info.value.result.text == KEPT


async def test_a_finish_reason_on_the_last_chunk_makes_a_stream_complete(server, provider):
    server.script("terse", Script(tokens=TOKENS, end_after=3, end_with=("finish",)))

    result, sink = await relay(provider, ask("terse"))

    assert result.text == KEPT
    assert sink.statuses == []


async def test_a_length_finish_succeeds_and_says_the_answer_is_cut_short(server, provider):
    server.script("limited", Script(tokens=TOKENS, end_after=3, end_with=("finish", "done"), finish_reason="length"))

    result, sink = await relay(provider, ask("limited", max_tokens=3))

    assert result.text == KEPT
    assert sink.statuses == ['litellm/openai/limited: the answer stopped at the output token limit (finish_reason '
                             '"length") and is cut short — a larger max_tokens gives more']


async def test_text_that_is_a_number_does_not_break_the_call(server, provider):
    # litellm 1.83 drops a chunk whose content is not a string before the plugin sees it; the rest is kept.
    server.script("numeric", Script(tokens=["one ", 5, "six"]))

    result, _ = await relay(provider, ask("numeric"))

    assert result.text == "one six"


def test_a_chunk_whose_text_is_not_a_string_is_a_stream_error_naming_its_type():
    """For a litellm that passes such a chunk on: a clear error instead of a crash in the host."""
    from litellm.types.utils import Delta, ModelResponseStream, StreamingChoices

    from streamhost_litellm.provider import chunk_events

    chunk = ModelResponseStream(choices=[StreamingChoices(index=0, delta=Delta(content=5))])

    with pytest.raises(StreamError) as info:
        chunk_events(chunk, "litellm/openai/numeric")
    assert info.value.message == ("litellm/openai/numeric: the upstream sent text that is not a string (int: 5); "
                                  "the text so far is kept")


async def test_a_lone_surrogate_escape_passes_through_and_the_call_completes(server, provider):
    server.script("surrogate", Script(tokens=["bad ", "\ud800", " end"]))

    result, _ = await relay(provider, ask("surrogate"))

    # The host repairs the character for the MCP wire; here only that the text arrives whole in either form.
    assert result.text in ("bad \ud800 end", "bad \ufffd end")
