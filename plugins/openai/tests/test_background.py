"""Background responses and deep research, against the real loopback test server: streams that complete, streams
dropped mid-way and picked up again (by stream, or by polling past the resume window), resume from a stored
checkpoint, cancelling upstream, the tools deep research needs and the status lines of its steps."""

from __future__ import annotations

import contextlib
import json

import pytest

from streamhost import Checkpoint, GenerationRequest, Status, StreamError, TextDelta
from streamhost.testing import Script, cancel_call, collect_outcome, relay

pytestmark = pytest.mark.anyio

WORDS = [f"w{i} " for i in range(40)]
WHOLE = "".join(WORDS)


def ask(model: str, **options: object) -> GenerationRequest:
    return GenerationRequest(model=model, prompt="tell me", options=options)


def checkpoints(events: list) -> list[dict]:
    return [json.loads(event.state) for event in events if isinstance(event, Checkpoint)]


def calls(server, action: str) -> list:
    return [record for record in server.requests if record.action == action]


async def test_o3_pro_runs_in_the_background_by_default_and_checkpoints_the_text_it_covers(server, provider):
    server.script("o3-pro", Script(tokens=WORDS, delay_s=0.01))

    outcome = (await collect_outcome(provider.stream(ask("o3-pro")))).unwrap()

    assert outcome.text == WHOLE
    [create] = calls(server, "create")
    assert create.body["background"] is True and create.body["stream"] is True and create.path == "/v1/responses"
    marks = checkpoints(outcome.events)
    # The first as soon as the response id is known, before any text; the last at the end, covering it all.
    first = next(i for i, event in enumerate(outcome.events) if isinstance(event, Checkpoint))
    assert not any(isinstance(event, TextDelta) for event in outcome.events[:first])
    assert marks[0] == {"id": marks[0]["id"], "after": 0, "chars": 0} and marks[0]["id"].startswith("resp_")
    assert marks[-1]["chars"] == len(WHOLE) and isinstance(outcome.events[-1], Checkpoint)
    # Each checkpoint covers exactly the text yielded before it.
    given = 0
    for event in outcome.events:
        if isinstance(event, TextDelta):
            given += len(event.text)
        elif isinstance(event, Checkpoint):
            assert json.loads(event.state)["chars"] == given
    # Not one per token: 40 tokens in ~0.4 s.
    assert len(marks) < len(WORDS) / 2
    assert outcome.usages[-1].output_tokens == len(WORDS)
    assert calls(server, "retrieve") == [] and calls(server, "cancel") == []


@pytest.mark.parametrize("options", [{"background": False}, {"background": False, "api": "chat"}, {"api": "chat"}],
                         ids=["background-false", "both", "chat-chosen"])
async def test_background_false_turns_it_off(server, provider, options):
    server.script("o3-pro", Script(tokens=WORDS[:5]))

    outcome = (await collect_outcome(provider.stream(ask("o3-pro", **options)))).unwrap()

    assert outcome.text == "".join(WORDS[:5]) and checkpoints(outcome.events) == []
    [record] = server.requests
    assert "background" not in record.body


async def test_a_stream_dropped_mid_way_is_picked_up_after_its_last_event_exactly(server, provider):
    server.script("slow", Script(tokens=WORDS, delay_s=0.01, drop_after=7))

    result, sink = await relay(provider, ask("slow", background=True))

    assert result.text == WHOLE  # byte for byte: nothing repeated, nothing lost
    assert "".join(update.delta for update in sink.updates if update.kind == "text") == WHOLE
    [create] = calls(server, "create")
    assert create.tokens_sent == 7
    [resumed] = calls(server, "retrieve")
    assert resumed.stream and resumed.response_id.startswith("resp_")
    assert resumed.starting_after is not None and resumed.starting_after > 7  # after the 7th text event
    assert resumed.tokens_sent == len(WORDS) - 7


async def test_past_the_resume_window_the_response_is_polled_to_its_end(server, provider):
    server.script("slow", Script(tokens=WORDS, delay_s=0.02, drop_after=5, resume_window_s=0))

    outcome = (await collect_outcome(provider.stream(ask("slow", background=True)))).unwrap()

    assert outcome.text == WHOLE
    retrieves = calls(server, "retrieve")
    assert retrieves[0].stream  # refused with HTTP 400: the window has passed
    polls = retrieves[1:]
    assert polls and not any(poll.stream for poll in polls)
    assert outcome.usages[-1].output_tokens == len(WORDS)


async def test_resume_continues_from_a_stored_checkpoint_and_closing_never_cancels(server, make_provider):
    server.script("slow", Script(tokens=WORDS, delay_s=0.02))
    first = make_provider()
    given, mark = "", None
    stream = first.stream(ask("slow", background=True))
    async with contextlib.aclosing(stream):
        async for event in stream:
            if isinstance(event, TextDelta):
                given += event.text
            elif isinstance(event, Checkpoint) and len(given) >= 10:
                mark = event.state
                break  # the host stops here (a restart); the response goes on upstream
    assert mark is not None and json.loads(mark)["chars"] == len(given)

    later = make_provider()  # a new process: nothing in memory but the checkpoint
    assert later.supports_resume
    outcome = (await collect_outcome(later.resume("slow", mark))).unwrap()

    assert given + outcome.text == WHOLE
    assert calls(server, "cancel") == []
    [resumed] = calls(server, "retrieve")
    assert resumed.starting_after == json.loads(mark)["after"]


async def test_resume_of_a_response_the_endpoint_no_longer_knows_is_a_clear_error(server, provider):
    outcome = await collect_outcome(provider.resume("slow", '{"id":"resp_gone","after":12,"chars":40}'))

    assert outcome.events == [] and outcome.error is not None
    assert "openai/slow" in str(outcome.error) and "resp_gone" in str(outcome.error)


async def test_a_checkpoint_from_elsewhere_is_refused(provider):
    outcome = await collect_outcome(provider.resume("slow", "not json"))

    assert isinstance(outcome.error, StreamError) and "cannot resume" in outcome.error.message


async def test_cancel_upstream_cancels_the_response_and_its_stream_ends_with_that(server, provider):
    server.script("long", Script(tokens=WORDS, delay_s=0.05))
    stream = provider.stream(ask("long", background=True))
    events: list = []
    with pytest.raises(StreamError) as info:
        async with contextlib.aclosing(stream):
            async for event in stream:
                events.append(event)
                if isinstance(event, TextDelta) and len(events) > 5:
                    mark = next(e.state for e in reversed(events) if isinstance(e, Checkpoint))
                    await provider.cancel_upstream("long", mark)

    assert "cancelled upstream" in info.value.message and info.value.message.startswith("openai/long: ")
    [cancel] = calls(server, "cancel")
    assert cancel.response_id == checkpoints(events)[0]["id"]
    text = "".join(event.text for event in events if isinstance(event, TextDelta))
    assert text and WHOLE.startswith(text) and text != WHOLE


async def test_cancel_upstream_of_a_finished_or_unknown_response_is_quiet(server, provider):
    server.script("short", Script(tokens=WORDS[:3]))
    outcome = (await collect_outcome(provider.stream(ask("short", background=True)))).unwrap()
    done = next(event.state for event in reversed(outcome.events) if isinstance(event, Checkpoint))

    await provider.cancel_upstream("short", done)
    await provider.cancel_upstream("short", '{"id":"resp_gone","after":1,"chars":0}')

    assert [record.response_id for record in calls(server, "cancel")] == [json.loads(done)["id"], "resp_gone"]


async def test_a_failed_background_response_is_an_error_and_is_not_picked_up_again(server, provider):
    server.script("bad", Script(tokens=WORDS, error_after=4, error_kind="response.failed", error_message="boom"))

    outcome = await collect_outcome(provider.stream(ask("bad", background=True)))

    assert isinstance(outcome.error, StreamError) and outcome.error.message == "openai/bad: the response failed: boom"
    assert outcome.text == "".join(WORDS[:4])
    assert calls(server, "retrieve") == []


async def test_deep_research_sends_web_search_preview_and_shows_its_steps(server, provider):
    server.script("o3-deep-research", Script(tokens=WORDS[:5], searches=("tallest tree", "redwood height")))

    result, sink = await relay(provider, ask("o3-deep-research"))

    assert result.text == "".join(WORDS[:5])
    [create] = calls(server, "create")
    assert create.body["tools"] == [{"type": "web_search_preview"}] and create.body["background"] is True
    label = "openai/o3-deep-research"
    steps = [line for line in sink.statuses if line.startswith(label)]
    assert f"{label}: queued upstream" in steps
    assert steps.count(f"{label}: searching the web") == 2
    assert f"{label}: searched the web: tallest tree" in steps and f"{label}: searched the web: redwood height" in steps
    assert steps.index(f"{label}: searched the web: tallest tree") < steps.index(f"{label}: searched the web: "
                                                                                   "redwood height")


async def test_the_tools_are_configurable_per_model(server, provider):
    server.script("o4-mini-deep-research-2025-06-26", Script(tokens=["ok"]))
    server.script("gpt-4.1", Script(tokens=["ok"]))

    await collect_outcome(provider.stream(ask("o4-mini-deep-research-2025-06-26",
                                              tools=["web_search", "code_interpreter"])))
    await collect_outcome(provider.stream(ask("gpt-4.1", tools=["web_search_preview"])))

    deep, plain = calls(server, "create")
    assert deep.body["tools"] == [{"type": "web_search"}, {"type": "code_interpreter", "container": {"type": "auto"}}]
    assert deep.body["background"] is True
    # Tools need the Responses API: a chat model is sent there, without background.
    assert plain.path == "/v1/responses" and plain.body["tools"] == [{"type": "web_search_preview"}]
    assert "background" not in plain.body


async def test_status_events_show_on_a_plain_responses_stream_too(server, provider):
    server.script("o3", Script(tokens=["ok"], searches=("one",)))

    outcome = (await collect_outcome(provider.stream(ask("o3")))).unwrap()

    assert [event.message for event in outcome.events if isinstance(event, Status)] == [
        "openai/o3: searching the web", "openai/o3: searched the web: one"]


async def test_through_streamhost_serve_a_dropped_deep_research_call_answers_whole_with_its_steps(
        server, serve_env, mcp_serve):
    server.script("o3-deep-research", Script(tokens=WORDS, delay_s=0.01, drop_after=9, searches=("sequoia",)))

    async with mcp_serve(serve_env) as served:
        call = await served.call("generate", {"prompt": "how tall?", "model": "openai/o3-deep-research"})

    assert not call.is_error, call.text
    assert call.text == WHOLE and call.streamed_text == WHOLE
    assert any("searched the web: sequoia" in line for line in call.statuses)
    [create] = calls(server, "create")
    assert create.body["tools"] == [{"type": "web_search_preview"}] and create.tokens_sent == 9
    assert [record.stream for record in calls(server, "retrieve")] == [True]


async def test_through_streamhost_serve_a_user_cancel_cancels_the_background_response(server, serve_env, mcp_serve):
    server.script("o3-pro", Script(tokens=WORDS, delay_s=0.1))

    async with mcp_serve(serve_env) as served:
        await cancel_call(served, "generate", {"prompt": "go", "model": "openai/o3-pro"})

        assert await server.await_for(lambda records: any(r.action == "cancel" for r in records), timeout=30)
    [create] = calls(server, "create")
    [cancel] = calls(server, "cancel")
    assert cancel.response_id.startswith("resp_bg_") and create.disconnected
