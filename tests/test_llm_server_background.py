"""LLMTestServer's background responses (``background: true``): kept server-side with every event, streamed again
from any sequence number, polled, cancelled, cut off their first connection on purpose, and the web-search
steps of deep research. Checked through the real openai SDK and on the raw bytes (httpx2)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest

from streamhost.testing import LLMTestServer, Script

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")

TOKENS = [f"t{i} " for i in range(12)]
WHOLE = "".join(TOKENS)


@pytest.fixture
def server() -> Iterator[LLMTestServer]:
    with LLMTestServer() as srv:
        yield srv


@pytest.fixture
def client(server: LLMTestServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="sk-test", base_url=server.url, max_retries=0) as c:
        yield c


def poll_until_done(client: openai.OpenAI, response_id: str) -> openai.types.responses.Response:
    deadline = time.monotonic() + 30
    while True:
        response = client.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress") or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def test_a_background_stream_starts_queued_and_completes(server, client):
    server.script("m", Script(tokens=TOKENS))

    events = list(client.responses.create(model="m", input="hi", stream=True, background=True))

    assert [e.type for e in events[:3]] == ["response.created", "response.queued", "response.in_progress"]
    assert events[0].response.status == "queued" and events[0].response.background is True
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.completed" and events[-1].response.output_text == WHOLE
    response_id = events[0].response.id
    assert response_id.startswith("resp_bg_") and all(getattr(e, "response", events[0].response).id == response_id
                                                       for e in events)
    polled = client.responses.retrieve(response_id)
    assert polled.status == "completed" and polled.output_text == WHOLE and polled.usage.output_tokens == len(TOKENS)
    record, poll = server.requests
    assert (record.action, record.api, record.stream, record.tokens_sent) == ("create", "responses", True, 12)
    assert (poll.action, poll.api, poll.stream, poll.response_id) == ("retrieve", "responses", False, response_id)


def test_a_dropped_stream_goes_on_server_side_and_resumes_after_any_event(server, client):
    server.script("m", Script(tokens=TOKENS, delay_s=0.01, drop_after=4))
    seen = []
    with pytest.raises(openai.APIConnectionError):
        for event in client.responses.create(model="m", input="hi", stream=True, background=True):
            seen.append(event)
    deltas = [e.delta for e in seen if e.type == "response.output_text.delta"]
    assert deltas == TOKENS[:4]
    response_id, last = seen[0].response.id, seen[-1].sequence_number

    rest = list(client.responses.retrieve(response_id, stream=True, starting_after=last))

    assert [e.sequence_number for e in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert "".join(deltas) + "".join(e.delta for e in rest if e.type == "response.output_text.delta") == WHOLE
    assert rest[-1].type == "response.completed"
    create, resumed = server.requests
    assert create.tokens_sent == 4 and create.action == "create"
    assert (resumed.method, resumed.action, resumed.response_id, resumed.starting_after, resumed.stream) == (
        "GET", "retrieve", response_id, last, True)
    assert resumed.path == f"/v1/responses/{response_id}"
    # From the start again: every event, the same bytes of text.
    again = list(client.responses.retrieve(response_id, stream=True))
    assert [e.sequence_number for e in again] == list(range(len(again)))


def test_past_the_resume_window_only_polling_works(server, client):
    server.script("m", Script(tokens=TOKENS, resume_window_s=0))
    response = client.responses.create(model="m", input="hi", background=True)
    assert response.status == "queued" and response.background is True  # not streamed: answered at once

    with pytest.raises(openai.BadRequestError, match="can no longer be resumed"):
        list(client.responses.retrieve(response.id, stream=True, starting_after=3))

    done = poll_until_done(client, response.id)
    assert done.status == "completed" and done.output_text == WHOLE


def test_cancel_stops_the_response_and_ends_its_open_streams(server):
    server.script("m", Script(tokens=TOKENS, delay_s=0.05))

    async def main() -> tuple[list, object]:
        async with openai.AsyncOpenAI(api_key="sk-test", base_url=server.url, max_retries=0) as aclient:
            events = []
            stream = await aclient.responses.create(model="m", input="hi", stream=True, background=True)
            async for event in stream:
                events.append(event)
                if event.type == "response.output_text.delta" and event.delta == "t2 ":
                    cancelled = await aclient.responses.cancel(events[0].response.id)
            return events, cancelled

    events, cancelled = asyncio.run(main())

    assert cancelled.status == "cancelled"
    assert all(e.type != "response.completed" for e in events)  # the body just ends
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.startswith("t0 t1 t2 ") and text != WHOLE
    [cancel] = [r for r in server.requests if r.action == "cancel"]
    assert cancel.response_id == events[0].response.id and cancel.path.endswith("/cancel")
    with openai.OpenAI(api_key="sk-test", base_url=server.url, max_retries=0) as client:
        assert client.responses.retrieve(events[0].response.id).status == "cancelled"


def test_unknown_responses_are_404(server, client):
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve("resp_nope")
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel("resp_nope")
    assert [(r.action, r.response_id) for r in server.requests] == [("retrieve", "resp_nope"), ("cancel", "resp_nope")]


def test_web_searches_come_before_the_message_with_their_queries(server, client):
    server.script("m", Script(tokens=["ok"], searches=("first query", "second")))

    events = list(client.responses.create(model="m", input="hi", stream=True))

    kinds = [e.type for e in events]
    assert kinds.count("response.web_search_call.searching") == 2
    assert kinds.index("response.web_search_call.completed") < kinds.index("response.output_text.delta")
    done = [e.item for e in events if e.type == "response.output_item.done" and e.item.type == "web_search_call"]
    assert [item.action.query for item in done] == ["first query", "second"]
    final = events[-1].response
    assert final.output_text == "ok" and [item.type for item in final.output] == ["web_search_call"] * 2 + ["message"]
    delta = next(e for e in events if e.type == "response.output_text.delta")
    assert delta.output_index == 2


def test_tools_sent_are_recorded_and_echoed(server, client):
    tools = [{"type": "web_search_preview"}]

    response = client.responses.create(model="m", input="hi", tools=tools)

    assert server.requests[0].body["tools"] == tools
    assert [tool.type for tool in response.tools] == ["web_search_preview"]


def test_raw_bytes_of_a_resumed_stream(server):
    server.script("m", Script(tokens=TOKENS))
    headers = {"Authorization": "Bearer sk-test"}
    created = httpx2.post(f"{server.url}/responses", json={"model": "m", "input": "x", "background": True},
                          headers=headers, timeout=10).json()
    deadline = time.monotonic() + 30
    while httpx2.get(f"{server.url}/responses/{created['id']}", headers=headers).json()["status"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.02)

    body = httpx2.get(f"{server.url}/responses/{created['id']}?stream=true&starting_after=15", headers=headers,
                      timeout=10).text

    frames = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: ")]
    assert [f["sequence_number"] for f in frames] == list(range(16, 21))
    assert frames[-1]["type"] == "response.completed"
