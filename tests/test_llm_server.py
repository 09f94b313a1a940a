"""Tests of streamhost.testing.LLMTestServer against the real openai SDK and raw HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from streamhost.testing import LLMTestServer, RequestRecord, Script

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")

USER = [{"role": "user", "content": "hello world"}]


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer() as srv:
        yield srv


@pytest.fixture
def client(server: LLMTestServer) -> Iterator[openai.OpenAI]:
    with sync_client(server) as sdk:
        yield sdk


def sync_client(srv: LLMTestServer, key: str = "sk-test") -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url, api_key=key, max_retries=0, timeout=10)


def async_client(srv: LLMTestServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=srv.url, api_key="sk-test", max_retries=0, timeout=10)


def last(srv: LLMTestServer) -> RequestRecord:
    return srv.requests[-1]


# ---------------------------------------------------------------------------- chat completions


def test_chat_stream_default_reply_and_usage_chunk(server: LLMTestServer, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-x", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert content == ["echo:", " hello", " world"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].object == "chat.completion.chunk" and chunks[0].model == "gpt-x"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (2, 3)
    assert chunks[-1].usage.total_tokens == 5


def test_chat_stream_async_scripted_tokens_without_usage(server: LLMTestServer) -> None:
    server.script("m", Script(tokens=["a", "b", "c"], finish_reason="length"))

    async def main() -> list[openai.types.chat.ChatCompletionChunk]:
        async with async_client(server) as aclient:
            stream = await aclient.chat.completions.create(model="m", messages=USER, stream=True)
            return [chunk async for chunk in stream]

    chunks = asyncio.run(main())
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abc"
    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None for c in chunks)


def test_chat_stream_helper_accumulates(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("m", Script(tokens=["x", "y"], usage=(7, 9)))
    with client.chat.completions.stream(model="m", messages=USER, stream_options={"include_usage": True}) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "xy"
    assert final.usage is not None and (final.usage.prompt_tokens, final.usage.completion_tokens) == (7, 9)


def test_chat_mid_stream_error_raises_api_error(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("m", Script(tokens=["a", "b", "c", "d"], error_after=2, error_message="boom"))
    got: list[str] = []
    with pytest.raises(openai.APIError, match="boom"):
        for chunk in client.chat.completions.create(model="m", messages=USER, stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert got == ["a", "b"]
    assert server.wait_for(lambda rs: rs[-1].ended is not None, timeout=30)
    rec = last(server)
    assert rec.tokens_sent == 2 and not rec.disconnected


def test_chat_non_streaming(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("m", Script(tokens=["Hi", " there"], usage=(11, 2), finish_reason="length"))
    completion = client.chat.completions.create(model="m", messages=USER)
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hi there"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.total_tokens == 13
    rec = last(server)
    assert not rec.stream and rec.tokens_sent == 2 and rec.first_token is not None


# ---------------------------------------------------------------------------- responses API


def test_responses_stream_events_text_and_usage(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("r", Script(tokens=["one", " two", " three"]))
    events = list(client.responses.create(model="r", input="say three words", stream=True))
    types = [e.type for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "one two three"
    assert events[7].text == "one two three"
    done = events[-1].response
    assert done.status == "completed" and done.output_text == "one two three"
    assert done.usage is not None
    assert (done.usage.input_tokens, done.usage.output_tokens, done.usage.total_tokens) == (3, 3, 6)
    assert done.usage.input_tokens_details.cached_tokens == 0
    assert done.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_helper_and_message_list_input(server: LLMTestServer) -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    ]

    async def main() -> openai.types.responses.Response:
        async with (
            async_client(server) as aclient,
            aclient.responses.stream(model="r2", input=messages, instructions="be brief") as stream,
        ):
            return await stream.get_final_response()

    final = asyncio.run(main())
    assert final.output_text == "echo: hi"
    assert final.usage is not None and final.usage.input_tokens == 4  # first + hi + be brief
    assert final.instructions == "be brief"


@pytest.mark.parametrize("kind", ["error", "response.failed", "response.incomplete"])
def test_responses_mid_stream_failures_arrive_as_events(
    server: LLMTestServer, client: openai.OpenAI, kind: str
) -> None:
    server.script("r", Script(tokens=["a", "b", "c"], error_after=2, error_kind=kind, error_message="went wrong"))
    events = list(client.responses.create(model="r", input="x", stream=True))
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["a", "b"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1]
    assert final.type == kind
    if kind == "error":
        assert final.message == "went wrong" and final.code == "server_error"
    elif kind == "response.failed":
        assert final.response.status == "failed"
        assert final.response.error is not None and final.response.error.message == "went wrong"
    else:
        assert final.response.status == "incomplete"
        assert final.response.incomplete_details is not None
        assert final.response.incomplete_details.reason == "max_output_tokens"
        assert final.response.output_text == "ab"
        assert events[-2].type == "response.output_item.done" and events[-2].item.status == "incomplete"


def test_responses_non_streaming(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script(
        "r", Script(tokens=["fine", "."]), Script(tokens=["cut"], error_after=1, error_kind="response.incomplete")
    )
    response = client.responses.create(model="r", input="how are you")
    assert response.status == "completed" and response.output_text == "fine."
    assert response.usage is not None and response.usage.output_tokens == 2
    cut = client.responses.create(model="r", input="again")
    assert cut.status == "incomplete" and cut.output_text == "cut"


# ---------------------------------------------------------------------------- errors and auth


def test_rate_limit_429_with_retry_after(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("m", Script(status=429, retry_after=2, error_message="slow down"))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="m", messages=USER, stream=True)
    err = info.value
    assert err.status_code == 429
    assert err.response.headers["retry-after"] == "2"
    assert err.code == "rate_limit_exceeded"
    assert "slow down" in str(err)


def test_scripted_status_queue_order_last_repeats(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("m", Script(status=500, error_message="first fails"), Script(tokens=["ok"]))
    with pytest.raises(openai.InternalServerError, match="first fails"):
        client.chat.completions.create(model="m", messages=USER)
    for _ in range(3):
        assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "ok"
    server.script("m", Script(tokens=["replaced"]))
    assert client.chat.completions.create(model="m", messages=USER).choices[0].message.content == "replaced"


def test_require_key_gives_401(server: LLMTestServer) -> None:
    with LLMTestServer(require_key="sk-right") as secured:
        with pytest.raises(openai.AuthenticationError) as info, sync_client(secured, key="sk-wrong") as wrong:
            wrong.chat.completions.create(model="m", messages=USER)
        assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
        assert "Incorrect API key provided" in str(info.value)
        with sync_client(secured, key="sk-right") as right:
            ok = right.chat.completions.create(model="m", messages=USER)
        assert ok.choices[0].message.content == "echo: hello world"
        records = secured.requests
        assert [r.authorized for r in records] == [False, True]
        assert "sk-right" not in repr(records) and "sk-wrong" not in repr(records)
    # without require_key: authorized just means "a bearer key was sent"
    httpx2.post(server.url + "/chat/completions", json={"model": "m", "messages": USER})
    assert last(server).authorized is False


def test_unknown_path_404_and_bad_body_400(server: LLMTestServer) -> None:
    resp = httpx2.get(server.url + "/nope")
    assert resp.status_code == 404 and resp.json()["error"]["message"].startswith("Unknown request URL")
    assert last(server).api == "other"
    resp = httpx2.post(
        server.url + "/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 400 and "error" in resp.json()


# ---------------------------------------------------------------------------- disconnects and stop


def test_stall_then_client_close_is_recorded_quickly(server: LLMTestServer) -> None:
    server.script("m", Script(tokens=["a", "b", "c", "d"], stall_after=2))

    async def main() -> float:
        async with async_client(server) as aclient:
            stream = await aclient.chat.completions.create(model="m", messages=USER, stream=True)
            got = [(await stream.__anext__()).choices[0].delta.content for _ in range(2)]
            assert got == ["a", "b"]
            closed_at = time.monotonic()
            await stream.close()
            assert await server.await_for(lambda rs: rs[-1].disconnected, timeout=30)
            return closed_at

    closed_at = asyncio.run(main())
    rec = last(server)
    assert rec.disconnected and rec.disconnected_at is not None and rec.ended is not None
    assert rec.disconnected_at - closed_at < 5  # ≈1 ms when idle; the stall alone would last until stop()
    assert rec.tokens_sent == 2


def test_disconnect_during_first_delay_detected_without_writes(server: LLMTestServer) -> None:
    server.script("m", Script(tokens=["late"], first_delay_s=30, headers_delay=True))
    body = json.dumps({"model": "m", "messages": USER, "stream": True}).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert server.wait_for(lambda rs: len(rs) == 1, timeout=30)
    closed_at = time.monotonic()
    assert server.wait_for(lambda rs: rs[-1].disconnected, timeout=30)
    rec = last(server)
    assert rec.disconnected_at is not None and rec.disconnected_at - closed_at < 5  # the delay is 30 s
    assert rec.tokens_sent == 0 and rec.first_token is None


def test_stop_closes_stalled_connections() -> None:
    srv = LLMTestServer().start()
    srv.start()  # idempotent
    srv.script("m", Script(tokens=["a"], stall_after=1))
    with httpx2.Client(timeout=60) as client:
        with client.stream("POST", srv.url + "/chat/completions", json={"model": "m", "stream": True}) as resp:
            lines = resp.iter_lines()
            assert next(lines).startswith("data: ")
            threading.Timer(0.1, srv.stop).start()
            started = time.monotonic()
            with pytest.raises(httpx2.HTTPError):
                for _ in lines:
                    pass
            assert time.monotonic() - started < 30, "stop() must close the stall, not the client's 60 s timeout"
    srv.stop()  # idempotent
    rec = srv.requests[-1]
    assert rec.ended is not None and not rec.disconnected and rec.tokens_sent == 1


# ---------------------------------------------------------------------------- timing


def test_rate_pacing_on_absolute_schedule(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("m", Script(tokens=["t"] * 200, rate=1000))
    started = time.monotonic()
    n = sum(1 for c in client.chat.completions.create(model="m", messages=USER, stream=True) if c.choices)
    elapsed = time.monotonic() - started
    assert n == 201  # 200 tokens + finish chunk
    assert 0.15 < elapsed < 10  # the lower bound is the pacing; the upper one only catches a runaway
    rec = last(server)
    assert rec.first_token is not None and rec.ended is not None
    assert 0.15 < rec.ended - rec.first_token < 10


def test_first_delay_before_or_after_headers(server: LLMTestServer) -> None:
    server.script("late-headers", Script(tokens=["x"], first_delay_s=2.0, headers_delay=True))
    server.script("late-token", Script(tokens=["x"], first_delay_s=2.0))
    for model, headers_late in (("late-headers", True), ("late-token", False)):
        started = time.monotonic()
        body = {"model": model, "messages": USER, "stream": True}
        with httpx2.stream("POST", server.url + "/chat/completions", json=body, timeout=10) as resp:
            headers_at = time.monotonic() - started
            resp.read()
        total = time.monotonic() - started
        assert total >= 1.99
        # Headers either wait out the delay, or come at once and leave the wait to the body (at least 0.5 s of
        # the 2 s: a client descheduled for up to 1.5 s reads the headers late and still passes).
        assert headers_at >= 1.99 if headers_late else total - headers_at >= 0.5
        rec = last(server)
        assert rec.first_token is not None and rec.first_token - rec.started >= 1.99


def test_delay_s_between_tokens(server: LLMTestServer, client: openai.OpenAI) -> None:
    server.script("m", Script(tokens=["a", "b", "c"], delay_s=0.05))
    started = time.monotonic()
    chunks = list(client.chat.completions.create(model="m", messages=USER, stream=True))
    assert len(chunks) == 4
    assert time.monotonic() - started >= 0.1


# ---------------------------------------------------------------------------- models, records, raw HTTP


def test_models_endpoint(server: LLMTestServer, client: openai.OpenAI) -> None:
    assert client.models.list().data == []
    server.script("zeta", Script())
    server.script("alpha", Script())
    models = client.models.list().data
    assert [m.id for m in models] == ["alpha", "zeta"]
    assert models[0].object == "model" and models[0].owned_by == "streamhost-test" and models[0].created == 0
    server.set_models(["only-this"])
    assert [m.id for m in client.models.list().data] == ["only-this"]
    assert client.models.retrieve("only-this").id == "only-this"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("missing")
    assert last(server).api == "models" and last(server).method == "GET"


def test_request_records(server: LLMTestServer, client: openai.OpenAI) -> None:
    client.chat.completions.create(model="a", messages=USER, stream=True).close()
    list(client.chat.completions.create(model="a", messages=USER, stream=True))
    client.responses.create(model="b", input="hi")
    assert server.wait_for(lambda rs: len(rs) == 3 and all(r.ended is not None for r in rs), timeout=30)
    records = server.requests
    full = records[1]
    assert (full.method, full.path, full.model, full.api, full.stream) == (
        "POST",
        "/v1/chat/completions",
        "a",
        "chat",
        True,
    )
    assert full.body is not None and full.body["messages"] == USER
    assert full.authorized and not full.disconnected and full.disconnected_at is None
    assert full.tokens_sent == 3
    assert full.first_token is not None and full.ended is not None
    assert full.started <= full.first_token <= full.ended
    assert records[0].started < records[1].started < records[2].started
    assert (records[2].api, records[2].stream, records[2].model) == ("responses", False, "b")
    records.clear()  # a snapshot: mutating it (or its records) does not touch the server's state
    assert len(server.requests) == 3
    server.requests[0].tokens_sent = 999
    assert server.requests[0].tokens_sent != 999
    server.clear()
    assert server.requests == []
    assert server.wait_for(lambda rs: bool(rs), timeout=0.05) is False


def test_raw_http_chunked_sse_and_keep_alive(server: LLMTestServer) -> None:
    server.script("m", Script(tokens=["a", "b"]))
    body = json.dumps({"model": "m", "messages": USER, "stream": True}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        for _ in range(2):  # two requests on one connection
            sock.sendall(request)
            data = b""
            while not data.endswith(b"0\r\n\r\n"):
                data += sock.recv(65536)
            head = data.split(b"\r\n\r\n", 1)[0].lower()
            assert head.startswith(b"http/1.1 200")
            assert b"content-type: text/event-stream" in head and b"transfer-encoding: chunked" in head
            assert data.count(b"data: ") == 4 and b"data: [DONE]\n\n" in data
    assert [r.tokens_sent for r in server.requests] == [2, 2]


def test_chunked_request_body_is_accepted(server: LLMTestServer) -> None:
    payload = json.dumps({"model": "m", "messages": USER}).encode()
    resp = httpx2.post(server.url + "/chat/completions", content=iter([payload[:10], payload[10:]]))
    assert resp.status_code == 200
    assert resp.json()["choices"][0]["message"]["content"] == "echo: hello world"


def test_subprocess_can_connect(server: LLMTestServer) -> None:
    server.set_models(["from-subprocess"])
    code = (
        "import json, sys, urllib.request\n"
        "print(json.load(urllib.request.urlopen(sys.argv[1] + '/models', timeout=10))['data'][0]['id'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, server.url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "from-subprocess"


def test_await_for_from_another_loop_and_script_validation(server: LLMTestServer, client: openai.OpenAI) -> None:
    async def main() -> tuple[bool, bool]:
        hit = await server.await_for(lambda rs: any(r.model == "w" for r in rs), timeout=0.05)
        await asyncio.to_thread(lambda: client.chat.completions.create(model="w", messages=USER))
        return hit, await server.await_for(lambda rs: any(r.model == "w" for r in rs), timeout=30)

    assert asyncio.run(main()) == (False, True)
    with pytest.raises(ValueError):
        Script(rate=0)
    with pytest.raises(ValueError):
        Script(error_kind="nope")
