"""LLMTestServer misbehaving on purpose: streams cut short, connections dropped, text that is not text,
slow model listings. Checked on the raw bytes (httpx2) and through the real openai SDK."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from streamhost.testing import LLMTestServer, Script

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")

USER = [{"role": "user", "content": "hello world"}]
TOKENS = ["a", "b", "c", "d", "e"]


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer() as srv:
        yield srv


def data_lines(server: LLMTestServer, api: str, **body: object) -> list[str]:
    """The ``data:`` payloads of one streamed call, read whole (the body must end cleanly)."""
    path, payload = ("chat/completions", {"messages": USER}) if api == "chat" else ("responses", {"input": "hi"})
    response = httpx2.post(f"{server.url}/{path}", json={"model": "m", "stream": True, **payload, **body},
                           headers={"Authorization": "Bearer sk-test"}, timeout=10)
    assert response.status_code == 200
    return [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


@pytest.mark.parametrize(("end_with", "tail"), [
    ((), []),
    (("done",), ["[DONE]"]),
    (("finish",), ["finish"]),
    (("finish", "done"), ["finish", "[DONE]"]),
])
def test_a_chat_stream_cut_short_ends_the_body_with_only_the_frames_asked_for(server, end_with, tail):
    server.script("m", Script(tokens=TOKENS, end_after=3, end_with=end_with, finish_reason="length"))

    lines = data_lines(server, "chat", stream_options={"include_usage": True})

    chunks = [json.loads(line) for line in lines if line != "[DONE]"]
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:3]] == ["a", "b", "c"]
    shape = ["finish" if c["choices"][0]["finish_reason"] == "length" else "text" for c in chunks[3:]]
    assert shape + (["[DONE]"] if lines[-1] == "[DONE]" else []) == tail
    assert not any("usage" in c for c in chunks)
    [record] = server.requests
    assert record.tokens_sent == 3 and record.ended is not None and not record.disconnected


def test_a_responses_stream_cut_short_never_sends_completed(server):
    server.script("m", Script(tokens=TOKENS, end_after=2, end_with=("finish",)))

    events = [json.loads(line)["type"] for line in data_lines(server, "responses")]

    assert events[-3:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done"]
    assert events.count("response.output_text.delta") == 2 and "response.completed" not in events


def test_a_dropped_connection_never_ends_the_chunked_body(server):
    server.script("m", Script(tokens=TOKENS, end_after=3, drop_connection=True))

    with pytest.raises(httpx2.RemoteProtocolError):
        httpx2.post(f"{server.url}/chat/completions", json={"model": "m", "stream": True, "messages": USER},
                    headers={"Authorization": "Bearer sk-test"}, timeout=10)

    [record] = server.requests
    assert record.tokens_sent == 3 and not record.disconnected  # the server left, not the client


def test_the_server_keeps_serving_after_dropping_a_connection(server):
    server.script("m", Script(tokens=TOKENS, end_after=1, drop_connection=True), Script(tokens=["fine"]))
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0, timeout=10) as client:
        with pytest.raises(openai.APIConnectionError):
            list(client.chat.completions.create(model="m", messages=USER, stream=True))
        again = client.chat.completions.create(model="m", messages=USER)
    assert again.choices[0].message.content == "fine"


def test_a_non_streaming_reply_holds_the_tokens_before_end_after(server):
    server.script("m", Script(tokens=TOKENS, end_after=2, end_with=("done",), drop_connection=True))
    with openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0, timeout=10) as client:
        reply = client.chat.completions.create(model="m", messages=USER)
    assert reply.choices[0].message.content == "ab" and reply.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_tokens_that_are_not_text_go_out_as_json_values_and_escapes(server, api):
    server.script("m", Script(tokens=["a", 5, None, "\ud800", "ok"]))

    lines = data_lines(server, api)

    key = '"content":' if api == "chat" else '"delta":'
    values = [line.split(key, 1)[1].split(",", 1)[0].rstrip("}]") for line in lines if key in line][:5]
    assert values == ['"a"', "5", "null", '"\\ud800"', '"ok"']


def test_set_models_keeps_the_order_and_can_answer_slowly(server):
    server.set_models(["zeta", "alpha"], delay_s=1.0)
    started = time.monotonic()

    listed = httpx2.get(f"{server.url}/models", headers={"Authorization": "Bearer sk-test"}, timeout=30).json()

    assert [m["id"] for m in listed["data"]] == ["zeta", "alpha"]
    assert time.monotonic() - started >= 1.0


def test_end_with_is_checked(server):
    with pytest.raises(ValueError, match="end_with"):
        Script(end_after=1, end_with=("finnish",))
    with pytest.raises(ValueError, match="end_with"):
        Script(end_after=1, end_with="done")  # a string, not a tuple of names
