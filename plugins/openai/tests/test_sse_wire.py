"""Odd but real wire shapes, through the provider, from a raw loopback HTTP server that writes each body exactly
as scripted: CRLF and lone-CR line endings, comments and keep-alives, reads that split a CRLF or a character,
bytes that are not UTF-8, gzip, events this plugin cannot read, and an upstream that stays open after its last
event."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import pytest

import streamhost
from streamhost import CallFailed, GenerationRequest, TextDelta, Usage
from streamhost.testing import relay
from streamhost.testing.http_wire import RequestReader, chunk

pytestmark = pytest.mark.anyio


@dataclass
class Reply:
    """One streamed reply: ``pieces`` written as separate HTTP chunks a moment apart, then ``then``:
    "end" (the body ends), "stall" (nothing more, until the client leaves)."""

    pieces: list[bytes]
    then: str = "end"
    headers: tuple[str, ...] = ()


class RawUpstream:
    """A loopback HTTP/1.1 server on its own thread and loop; every request gets the next queued reply."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.connections = 0
        self.requests: list[Any] = []
        self.client_left: list[float] = []  # when a client closed a connection whose reply was stalled
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> RawUpstream:
        self._thread.start()
        started = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop)
        self._server = started.result(timeout=10)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = RequestReader(reader)
        try:
            while (request := await conn.read_request(writer)) is not None:
                self.requests.append(request)
                reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
                writer.write(("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                              + "".join(f"{h}\r\n" for h in reply.headers) + "\r\n").encode())
                for piece in reply.pieces:
                    writer.write(chunk(piece))
                    await writer.drain()
                    await asyncio.sleep(0.005)  # so that each piece is a read of its own
                if reply.then == "stall":
                    await conn.wait_eof()
                    self.client_left.append(time.monotonic())
                    return
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client left, or the server is stopping
        finally:
            writer.close()


@pytest.fixture
def raw():
    with RawUpstream() as upstream:
        yield upstream


def chat_chunk(content: Any = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    delta = {} if content is None else {"content": content}
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


def sse(obj: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def split(body: bytes, *marks: bytes) -> list[bytes]:
    """``body`` cut into pieces just inside each mark (after its first byte: inside a CRLF, inside a character)."""
    pieces, rest = [], body
    for mark in marks:
        at = rest.index(mark) + 1
        pieces.append(rest[:at])
        rest = rest[at:]
    return [*pieces, rest]


USAGE = {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}
CHAT_BODY = b"".join([
    b": keep-alive\n\n",
    sse({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}),
    b"data: \n\n",
    sse(chat_chunk("Hel")), b"id: 3\nretry: 50\n", sse(chat_chunk("lo wörld ✓")),
    sse(chat_chunk(None)), b":comment without a space\n\n", sse(chat_chunk("!", finish="stop")),
    sse({"id": "c", "choices": [{"index": 0, "delta": {}}], "usage": USAGE}),
    b"data: [DONE]\n\n",
])


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "lone-cr"])
async def test_chat_reads_every_line_ending_keep_alives_and_reads_cut_anywhere(raw, make_provider, collect, ending):
    body = CHAT_BODY.replace(b"\n", ending)
    raw.replies = [Reply(split(body, ending + ending, "ö".encode(), "✓".encode(), ending + b"data"))]

    out = await collect(make_provider(base_url=raw.url), GenerationRequest(model="m", prompt="hi"))

    assert out.error is None, out.error
    assert out.deltas == ["Hel", "lo wörld ✓", "!"]
    assert out.usages == [Usage(input_tokens=4, output_tokens=3, total_tokens=7)]


async def test_responses_reads_named_events_comments_and_crlf(raw, make_provider, collect):
    usage = {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}
    body = b"".join([
        sse({"type": "response.created", "response": {"id": "r"}}, event="response.created"),
        b": keep-alive\n\n",
        sse({"type": "response.output_text.delta", "delta": "día "}, event="response.output_text.delta"),
        sse({"type": "response.reasoning_summary_text.delta", "delta": "not shown"}),
        sse({"type": "response.output_text.delta", "delta": "✓"}, event="response.output_text.delta"),
        sse({"type": "response.completed", "response": {"id": "r", "usage": usage}}, event="response.completed"),
    ]).replace(b"\n", b"\r\n")
    raw.replies = [Reply(split(body, b"\r\n\r\n", "í".encode(), b"\r\n"))]

    out = await collect(make_provider(base_url=raw.url, api="responses"), GenerationRequest(model="m", prompt="hi"))

    assert out.error is None, out.error
    assert out.deltas == ["día ", "✓"]
    assert out.usages == [Usage(input_tokens=5, output_tokens=2, total_tokens=7)]


async def test_bytes_that_are_not_utf8_become_replacement_characters(raw, make_provider, collect):
    raw.replies = [Reply([b'data: {"choices":[{"index":0,"delta":{"content":"a\xff\xfeb"}}]}\n\n',
                          sse(chat_chunk("c", finish="stop")), b"data: [DONE]\n\n"])]

    out = await collect(make_provider(base_url=raw.url), GenerationRequest(model="m", prompt="hi"))

    assert out.error is None and out.text == "a\ufffd\ufffdbc"


async def test_a_surrogate_pair_split_over_two_deltas_arrives_as_one_character(raw, make_provider):
    # "\ud83d" and "\ude00" are each lone escapes (valid JSON); together they are one emoji.
    raw.replies = [Reply([b'data: {"choices":[{"index":0,"delta":{"content":"\\ud83d"}}]}\n\n',
                          b'data: {"choices":[{"index":0,"delta":{"content":"\\ude00 \\ud800!"}}]}\n\n',
                          sse(chat_chunk("", finish="stop")), b"data: [DONE]\n\n"])]

    result, _ = await relay(make_provider(base_url=raw.url), GenerationRequest(model="m", prompt="hi"))

    assert result.text == "😀 \ufffd!"


async def test_a_gzip_body_is_decoded(raw, make_provider, collect):
    packed = gzip.compress(sse(chat_chunk("zipped ")) + sse(chat_chunk("text", finish="stop")) + b"data: [DONE]\n\n")
    raw.replies = [Reply([packed[:20], packed[20:]], headers=("Content-Encoding: gzip",))]

    out = await collect(make_provider(base_url=raw.url), GenerationRequest(model="m", prompt="hi"))

    assert out.error is None and out.text == "zipped text"


@pytest.mark.parametrize(("line", "said"), [
    pytest.param(b"data: {not json\n\n", "the upstream sent an event that is not JSON ('{not json')", id="not-json"),
    pytest.param(b"data: [1, 2]\n\n", "the upstream sent an event that is not a JSON object ('[1, 2]')", id="array"),
    pytest.param(b'data: {"choices": 5}\n\n', "the upstream sent an event this plugin cannot read (", id="shape"),
    pytest.param(b'data: {"choices":[{"delta":{"content":{"x":1}}}]}\n\n',
                 "the upstream sent text that is not a string (dict: {'x': 1})", id="text-object"),
])
async def test_an_event_this_plugin_cannot_read_is_a_stream_error_keeping_the_text(raw, make_provider, collect,
                                                                                     line, said):
    raw.replies = [Reply([sse(chat_chunk("ok ")), line, sse(chat_chunk("never", finish="stop"))])]

    out = await collect(make_provider(base_url=raw.url), GenerationRequest(model="m", prompt="hi"))

    assert out.deltas == ["ok "]
    assert isinstance(out.error, streamhost.StreamError), repr(out.error)
    assert out.error.message.startswith(f"openai/m: {said}"), out.error.message
    assert out.error.message.endswith("the text so far is kept")


@pytest.mark.parametrize(("api", "line"), [
    pytest.param("chat", {"error": {"message": "overloaded for {key}", "type": "server_error"}}, id="chat-error-line"),
    pytest.param("responses", {"type": "error", "code": "server_error", "message": "overloaded for {key}"},
                 id="responses-error-event"),
    pytest.param("responses", {"error": {"message": "overloaded for {key}"}}, id="responses-bare-error-line"),
])
async def test_an_error_mid_stream_is_a_stream_error_that_never_shows_the_key(raw, make_provider, api_key, api, line):
    first = (sse(chat_chunk("part ")) if api == "chat"
             else sse({"type": "response.output_text.delta", "delta": "part "}))
    raw.replies = [Reply([first, f"data: {json.dumps(line)}\n\n".replace("{key}", api_key).encode()])]

    with pytest.raises(CallFailed) as info:  # relayed as the host relays it: the error shown is masked there
        await relay(make_provider(base_url=raw.url, api=api), GenerationRequest(model="m", prompt="hi"))

    assert info.value.result.text == "part "
    assert isinstance(info.value.error, streamhost.StreamError), repr(info.value.error)
    assert info.value.error.message == "openai/m: the upstream reported an error mid-stream: overloaded for ****"


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_upstream_silent_after_its_last_event_does_not_hold_the_call(raw, make_provider, collect, api):
    if api == "chat":
        pieces = [sse(chat_chunk("done", finish="stop")), b"data: [DONE]\n\n"]
    else:
        pieces = [sse({"type": "response.output_text.delta", "delta": "done"}),
                  sse({"type": "response.completed", "response": {"usage": None}})]
    raw.replies = [Reply(pieces, then="stall")]

    started = time.monotonic()
    out = await collect(make_provider(base_url=raw.url, api=api), GenerationRequest(model="m", prompt="hi"))

    assert out.error is None and out.text == "done"
    assert time.monotonic() - started < 10  # the silence is endless: only the bounded drain waits on it
    for _ in range(3000):  # the connection, left mid-body, is closed rather than kept
        if raw.client_left:
            break
        await asyncio.sleep(0.01)
    assert raw.client_left


async def test_a_body_read_to_its_end_leaves_the_connection_for_the_next_call(raw, make_provider, collect):
    raw.replies = [Reply([sse(chat_chunk("again", finish="stop")), b"data: [DONE]\n\n"])]
    provider = make_provider(base_url=raw.url)

    first = await collect(provider, GenerationRequest(model="m", prompt="hi"))
    second = await collect(provider, GenerationRequest(model="m", prompt="hi"))

    assert first.text == second.text == "again" and first.error is None and second.error is None
    assert len(raw.requests) == 2 and raw.connections == 1


async def test_text_arrives_as_it_is_read_not_when_the_body_ends(raw, make_provider):
    raw.replies = [Reply([sse(chat_chunk("first "))], then="stall")]
    agen = make_provider(base_url=raw.url).stream(GenerationRequest(model="m", prompt="hi"))
    try:
        assert await asyncio.wait_for(agen.__anext__(), 30) == TextDelta("first ")
    finally:
        await agen.aclose()
