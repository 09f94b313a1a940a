"""A 2026-era ``tools/call`` over HTTP whose progress the server writes to the response itself (``http_stream.py``):
through ``streamhost serve --http`` with the real openai plugin and upstream, and around a small ASGI app on a real
uvicorn for what takes the SDK's own timing (a silent call's pings) or none of streamhost's calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import pytest
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from streamhost.mcp import http_stream
from streamhost.testing import Home, LLMTestServer, Script
from tests.asgi_served import served
from tests.test_http import OPEN, era_body, era_headers, serve_http, tools_call

pytestmark = pytest.mark.anyio
WORDS = [f"w{i} " for i in range(40)]


def sse_messages(body: bytes) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an SSE body, in order (comment lines and event names left out)."""
    text = body.decode("ascii")  # every byte ASCII: the JSON is escaped as the SDK escapes it
    return [json.loads(line[5:]) for line in text.replace("\r\n", "\n").split("\n")
            if line.startswith("data:") and line[5:].strip()]


async def test_a_call_streams_its_text_and_ends_with_its_answer_in_one_sse_body(llm: LLMTestServer,
                                                                                 home: Home) -> None:
    # A lone UTF-16 surrogate from the upstream reads the same (repaired) in the deltas as in the answer.
    tokens = ["one\ud800 ", *WORDS]
    llm.script("slow", Script(tokens=tokens, rate=40))
    home.write_config(OPEN)
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        body = era_body("modern", tools_call("generate", {"prompt": "x", "model": "openai/slow"}))
        answer = await client.post(served.url + "/mcp", json=body, headers=era_headers("modern", body))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    messages = sse_messages(answer.content)
    notes = [m for m in messages if m.get("method") == "notifications/progress"]
    deltas = [n["params"]["_meta"]["streamhost/delta"] for n in notes if "streamhost/delta" in n["params"]["_meta"]]
    assert len(deltas) >= 2, "text must arrive in several notifications (a lagging loop's window is up to 0.5 s)"
    text = "".join(tokens).replace("\ud800", "\ufffd")  # the host repairs what UTF-8 cannot hold
    assert "".join(deltas) == text
    assert [n["params"]["progressToken"] for n in notes] == ["p"] * len(notes)
    progress = [n["params"]["progress"] for n in notes]
    assert progress == sorted(set(progress)), "progress must increase with every notification"
    assert messages[-1]["id"] == 1 and "result" in messages[-1], "the answer must be the stream's last message"
    assert messages[-1]["result"]["content"][0]["text"] == text
    assert len(messages) == len(notes) + 1


async def test_a_call_that_streams_nothing_is_answered_as_json(llm: LLMTestServer, home: Home) -> None:
    home.write_config(OPEN)
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        body = era_body("modern", tools_call("generate", {"model": "openai/x"}))  # no prompt
        answer = await client.post(served.url + "/mcp", json=body, headers=era_headers("modern", body))
    assert answer.headers["content-type"].startswith("application/json"), answer.text
    message = answer.json()
    assert message["id"] == 1
    assert "prompt" in json.dumps(message), "the refusal must name the missing argument"


# ------------------------------------------------------------------------- around a small app, on uvicorn


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def test_a_silent_call_gets_pings_and_a_client_that_goes_cancels_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_stream, "PING_S", 0.2)
    cancelled = asyncio.Event()

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        try:
            await asyncio.sleep(60)  # says nothing: only pings keep the response alive
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await http_stream.serve(silent, scope, receive, send)

    async with served(app) as url, httpx2.AsyncClient(timeout=60) as client:
        async with client.stream("POST", url, content=b"{}") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            pings = 0
            async for line in response.aiter_lines():
                pings += line.startswith(": ping")
                if pings == 2:
                    break  # two pings: now go away
        await asyncio.wait_for(cancelled.wait(), 30)
    assert pings == 2


async def test_the_apps_answer_ends_the_stream_or_is_passed_on_as_it_is() -> None:
    async def answering(scope: Scope, receive: Receive, send: Send) -> None:
        body = json.loads(await read_body(receive))
        stream = http_stream.current()
        assert stream is not None
        for step in range(body["notes"]):
            await stream.notify("notifications/progress", {"progressToken": "t", "progress": step + 1})
        answer = JSONResponse({"jsonrpc": "2.0", "id": 3, "result": {"ok": body["notes"]}},
                              status_code=200 if body["notes"] else 400)
        await send({"type": "http.response.start", "status": answer.status_code, "headers": answer.raw_headers})
        half = len(answer.body) // 2  # in two pieces: the answer is framed once it is whole
        await send({"type": "http.response.body", "body": answer.body[:half], "more_body": True})
        await send({"type": "http.response.body", "body": answer.body[half:], "more_body": False})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await http_stream.serve(answering, scope, receive, send)

    async with served(app) as url, httpx2.AsyncClient(timeout=60) as client:
        streamed = await client.post(url, json={"notes": 2})
        plain = await client.post(url, json={"notes": 0})
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    assert sse_messages(streamed.content) == [
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1}},
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 2}},
        {"jsonrpc": "2.0", "id": 3, "result": {"ok": 2}}]
    assert plain.status_code == 400 and plain.headers["content-type"] == "application/json"
    assert plain.json() == {"jsonrpc": "2.0", "id": 3, "result": {"ok": 0}}


def test_only_2026_era_calls_that_accept_sse_take_this_path() -> None:
    def scope(method: str = "POST", **headers: str) -> dict[str, Any]:
        base = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28",
                "mcp-method": "tools/call"}
        merged = {**base, **headers}
        return {"type": "http", "method": method,
                "headers": [(k.encode(), v.encode()) for k, v in merged.items() if v]}

    assert http_stream.takes(scope())
    assert not http_stream.takes(scope("GET"))
    assert not http_stream.takes(scope(**{"mcp-protocol-version": "2025-11-25"}))
    assert not http_stream.takes(scope(**{"mcp-protocol-version": ""}))
    assert not http_stream.takes(scope(**{"mcp-method": "tools/list"}))
    assert not http_stream.takes(scope(**{"mcp-method": "subscriptions/listen"}))
    assert not http_stream.takes(scope(accept="application/json"))
