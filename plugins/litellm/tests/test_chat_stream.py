"""Reading OpenAI-compatible chat bodies directly (``chat_stream.py``), and litellm's wrapper where it must still read.

The protocol cases the direct parsing handles are checked on the decoder and the parser themselves; the stream's
outcomes (text, usage, truncation, limits, errors) on both paths through litellm's real route to the loopback
test server. The wrapper path is taken the way a user would cause it: by registering a litellm callback.
"""

from __future__ import annotations

import time

import anyio
import pytest

from streamhost import (
    CallFailed,
    GenerationRequest,
    SSEDecoder,
    Status,
    StreamError,
    TextDelta,
    UpstreamTimeoutError,
    Usage,
)
from streamhost.testing import Script, cancel_stream, expect_disconnect, relay
from streamhost_litellm import sdk
from streamhost_litellm.chat_stream import CALLBACK_LISTS, ChatChunks, direct_body

pytestmark = pytest.mark.anyio

TOKENS = ["The ", "answer ", "is ", "forty-", "two."]
KEPT = "The answer is "


def ask(model: str, sub: str = "openai", **fields) -> GenerationRequest:
    return GenerationRequest(model=f"{sub}/{model}", prompt="what is it?", **fields)


def chunks(label: str = "litellm/openai/m") -> ChatChunks:
    return ChatChunks(label, key="sk-secret-0123456789", repeat_limit=100)


# ---------------------------------------------------------------------------- the SSE decoder


def test_events_split_anywhere_between_reads_come_out_whole():
    body = 'data: {"a": "wörld"}\r\n\r\n: keep-alive\n\ndata: [DONE]\n\n'.encode()
    for cut in range(1, len(body)):
        decoder = SSEDecoder()
        assert decoder.feed(body[:cut]) + decoder.feed(body[cut:]) == ['{"a": "wörld"}', "[DONE]"], cut


def test_several_events_in_one_read_multi_line_data_and_other_fields():
    decoder = SSEDecoder()

    out = decoder.feed(b'event: x\nid: 7\ndata: {"a":\ndata: 1}\n\ndata:{"b": 2}\r\rdata:   \n\ndata: {"cut')

    assert out == ['{"a":\n1}', '{"b": 2}']
    assert decoder.feed(b"") == [], "an event the body cut before its empty line is not dispatched"


def test_bytes_that_are_not_utf8_become_a_replacement_character():
    assert SSEDecoder().feed(b'data: {"a": "\xff"}\n\n') == ['{"a": "\ufffd"}']


# ---------------------------------------------------------------------------- the chunk parser


def test_text_usage_and_finish_reason_from_chunks_of_every_shape():
    parser = chunks()

    events = [
        *parser.take('{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}'),
        *parser.take('{"choices": [{"index": 0, "delta": {"content": "Hi"}}]}'),
        *parser.take('{"choices": [{"index": 1, "delta": {"content": "other answer"}}]}'),
        *parser.take('{"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}'),
        *parser.take('{"choices": [{"index": 0, "delta": {}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1,'
                     ' "total_tokens": 4}}'),
        *parser.take('{"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}'),
        *parser.take('{"choices": [], "usage": null}'),
    ]
    parser.take("[DONE]")

    usage = Usage(input_tokens=3, output_tokens=1, total_tokens=4)
    assert events == [TextDelta("Hi"), usage, usage], "choices[0] only, as litellm's wrapper reads it"
    assert parser.done and parser.finish_reason == "stop" and parser.end() == []


def test_a_body_without_finish_reason_is_cut_short_and_length_is_a_notice():
    cut = chunks()
    cut.take('{"choices": [{"index": 0, "delta": {"content": "Hi"}}]}')
    limited = chunks()
    limited.take('{"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "length"}]}')

    with pytest.raises(StreamError, match=r"closed the stream before the model finished \(no finish_reason\)"):
        cut.end()
    [notice] = limited.end()
    assert isinstance(notice, Status) and 'finish_reason "length"' in notice.message


@pytest.mark.parametrize(("data", "words"), [
    ('{"error": {"message": "overloaded, key sk-secret-0123456789", "type": "server_error"}}',
     "the upstream failed mid-stream: overloaded, key ***"),
    ('{"error": "plain words"}', "the upstream failed mid-stream: plain words"),
    ("not json", "an event that is not JSON"),
    ("[1, 2]", "an event that is not a JSON object"),
])
def test_broken_or_failing_events_are_stream_errors(data, words):
    with pytest.raises(StreamError) as info:
        chunks().take(data)
    assert words in info.value.message and "sk-secret" not in info.value.message


def test_text_that_is_not_a_string_is_skipped_as_litellms_wrapper_skips_it():
    parser = chunks()

    assert parser.take('{"choices": [{"index": 0, "delta": {"content": 5}}]}') == []
    assert parser.take('{"choices": [{"index": 0, "delta": {"content": "six"}}]}') == [TextDelta("six")]


def test_a_model_repeating_one_chunk_is_stopped_at_litellms_limit():
    parser = ChatChunks("litellm/openai/m", key=None, repeat_limit=4)
    same = '{"choices": [{"index": 0, "delta": {"content": "again "}}]}'
    short = '{"choices": [{"index": 0, "delta": {"content": "ab"}}]}'

    for _ in range(10):
        parser.take(short)  # two characters or fewer never count, as in litellm
    for _ in range(3):
        parser.take(same)
    with pytest.raises(StreamError, match="the model sent the same text 4 times in a row"):
        parser.take(same)


# ---------------------------------------------------------------------------- which path reads the stream


@pytest.fixture
def register_callback(monkeypatch):
    """``register_callback(logger)``: a litellm callback, as a user registers one; litellm copies it into its other
    callback lists on the next call, so every list is put back after the test."""
    litellm = sdk.load()
    for name in ("callbacks", "input_callback", *CALLBACK_LISTS):
        monkeypatch.setattr(litellm, name, list(getattr(litellm, name)))
    return litellm.callbacks.append


@pytest.fixture(params=["direct", "wrapper"])
def path(request, register_callback) -> str:
    """Each stream test on both paths: read here, or (a litellm callback registered) by litellm's wrapper."""
    if request.param == "wrapper":
        from litellm.integrations.custom_logger import CustomLogger

        register_callback(CustomLogger())
    return request.param


@pytest.mark.parametrize("sub", ["openai", "hosted_vllm"])  # the openai SDK's stream; litellm's own HTTP route
async def test_the_direct_path_is_taken_on_openai_compatible_routes_unless_a_callback_wants_the_chunks(
        server, provider, register_callback, sub):
    """A litellm that changes the shape of its stream wrapper is caught here, not by a 10× slower server."""
    from litellm.integrations.custom_logger import CustomLogger

    server.script("which", Script(tokens=["ok"]))
    litellm = await sdk.load_async()

    async def body_of(model: str = f"{sub}/which", **extra) -> object:
        arguments = {"model": model, "messages": [{"role": "user", "content": "x"}], "stream": True,
                     "api_base": server.url, "api_key": "sk-test-litellm-1a2b3c4d5e", **extra}
        response = await litellm.acompletion(**arguments)
        try:
            return direct_body(response, litellm, arguments)
        finally:
            await response.aclose()

    assert await body_of() is not None, "litellm's route no longer hands over its HTTP response"
    assert await body_of(metadata={"a": 1}) is not None
    assert await body_of("groq/which") is None, "a vendor's own chunk fields: litellm's wrapper reads them"
    assert await body_of(success_callback=[lambda *args: None]) is None, "a call's own callback"
    register_callback(CustomLogger())
    assert await body_of() is None, "a callback registered with litellm"


@pytest.mark.parametrize("sub", ["hosted_vllm", "groq"])
async def test_closing_the_stream_closes_the_upstream_on_litellms_own_http_routes(server, provider, path, sub):
    """litellm's own routes keep only a line iterator, which nothing closed: the upstream generated on."""
    server.script("stalls", Script(tokens=["one ", "two ", "never"], stall_after=2))

    closed = await cancel_stream(provider.stream(ask("stalls", sub=sub)), after=2, how="close")

    assert closed.text == "one two "
    await expect_disconnect(server, "stalls", since=closed.at)


async def test_a_registered_litellm_callback_still_sees_the_whole_streamed_answer(server, provider,
                                                                                register_callback):
    from litellm.integrations.custom_logger import CustomLogger

    seen: list[str] = []

    class Recorder(CustomLogger):
        async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
            seen.append(response_obj.choices[0].message.content)

    server.script("logged", Script(tokens=TOKENS))
    register_callback(Recorder())

    result, _ = await relay(provider, ask("logged"))
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:  # litellm logs from a task of its own
        await anyio.sleep(0.05)

    assert result.text == "".join(TOKENS) and seen == ["".join(TOKENS)]


@pytest.mark.parametrize("sub", ["openai", "hosted_vllm"])
async def test_text_and_usage(server, provider, collect, path, sub):
    server.script("whole", Script(tokens=TOKENS, usage=(9, 5)))

    out = await collect(provider, ask("whole", sub=sub))

    assert out.error is None and out.text == "".join(TOKENS)
    assert out.usages == [Usage(input_tokens=9, output_tokens=5, total_tokens=14)]


@pytest.mark.parametrize("drop", [False, True], ids=["body-ends", "connection-dropped"])
async def test_a_stream_cut_short_is_an_error_keeping_the_text(server, provider, path, drop):
    server.script("cut", Script(tokens=TOKENS, end_after=3, drop_connection=drop))

    with pytest.raises(CallFailed) as info:
        await relay(provider, ask("cut"))

    assert isinstance(info.value.error, StreamError) and "no finish_reason" in info.value.error.message
    assert info.value.result.text == KEPT


async def test_a_length_finish_succeeds_with_a_notice(server, provider, path):
    server.script("limited", Script(tokens=TOKENS, end_after=3, end_with=("finish", "done"), finish_reason="length"))

    result, sink = await relay(provider, ask("limited"))

    assert result.text == KEPT and len(sink.statuses) == 1 and '"length"' in sink.statuses[0]


async def test_finish_reason_error_fails_the_call(server, provider, collect, path):
    server.script("failed", Script(tokens=TOKENS, end_after=2, end_with=("finish",), finish_reason="error"))

    out = await collect(provider, ask("failed"))

    assert isinstance(out.error, StreamError) and "failed mid-stream" in out.error.message
    assert out.text == "The answer "


async def test_a_mid_stream_error_event(server, provider, collect, path):
    server.script("breaks", Script(tokens=TOKENS, error_after=2, error_message="the upstream fell over"))

    out = await collect(provider, ask("breaks"))

    assert isinstance(out.error, StreamError) and "the upstream fell over" in out.error.message
    assert out.text == "The answer "


async def test_an_upstream_silent_mid_stream_times_out_after_timeout_s(server, make_provider, collect, path):
    provider = make_provider(timeout_s=2)  # it bounds the connect and the first tokens too: room for a slow machine
    server.script("stalls", Script(tokens=TOKENS, stall_after=2))

    await sdk.load_async()
    started = time.monotonic()
    out = await collect(provider, ask("stalls"))

    assert isinstance(out.error, UpstreamTimeoutError) and out.text == "The answer "
    assert time.monotonic() - started < 20, "timeout_s (2 s), not the endless stall, bounds the wait"


async def test_a_model_in_a_loop_is_stopped(server, provider, collect, path, monkeypatch):
    monkeypatch.setattr(sdk.load(), "REPEATED_STREAMING_CHUNK_LIMIT", 5)
    server.script("loops", Script(tokens=["Again and again. "] * 50))

    out = await collect(provider, ask("loops"))

    assert isinstance(out.error, StreamError) and "Again and again" in out.error.message
    assert out.text.count("Again and again. ") < 10
