"""``streamhost serve`` end to end: a real MCP client over stdio, the real openai plugin, a real HTTP upstream."""

from __future__ import annotations

import asyncio
import json
import time

import anyio
import pytest

from streamhost.testing import Script

pytestmark = pytest.mark.anyio
TEST_KEY = "sk-test-9f8e7d6c5b4a"
WORDS = [f"word{i} " for i in range(30)]


async def test_text_streams_while_the_upstream_is_still_sending(llm, home, mcp_serve, want_progress):
    # A 3-second upstream, against milliseconds from an upstream token to the client once the SDK is warm:
    # "text arrived before the upstream's last token" holds with a wide margin on a slow machine. The first
    # call of a process pays the SDK's lazy imports after the request is sent: a warm-up call takes them.
    llm.script("warm", Script(tokens=["ok"]))
    llm.script("slow-chat", Script(tokens=WORDS * 2, rate=20))
    async with mcp_serve(home.env) as served:
        await served.session.call_tool("generate", {"prompt": "x", "model": "openai/warm"})
        result = await served.session.call_tool(
            "generate", {"prompt": "count", "model": "openai/slow-chat"}, progress_callback=want_progress
        )
    record = next(r for r in llm.requests if r.model == "slow-chat")
    texts = served.text_progress()
    first = served.arrivals[served.progress.index(texts[0])]
    assert not result.is_error
    assert result.content[0].text == "".join(WORDS * 2)
    assert first < record.ended, "the first text must reach the client before the upstream's last token"
    # At least one notification per 0.5 s (the widest a window grows when the loop lags, as a loaded machine's does).
    assert len(texts) >= 5, "text must arrive in many notifications, not at the end"


@pytest.mark.parametrize("model", ["openai/chat-model", "openai/o3"])
@pytest.mark.parametrize("mode", ["tail", "delta"])
async def test_deltas_rebuild_the_final_text_exactly(llm, home, mcp_serve, want_progress, model, mode):
    pieces = ["Hello", ", ", "wörld", "\n\n", "line two ", "🙂", " end", *WORDS]
    llm.script(model.split("/", 1)[1], Script(tokens=pieces, delay_s=0.01))
    home.write_config(f'[streaming]\nmessage = "{mode}"\ncoalesce_ms = 20\n')
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool(
            "generate", {"prompt": "hi", "model": model}, progress_callback=want_progress
        )
    texts = served.text_progress()
    final = result.content[0].text
    assert final == "".join(pieces)
    assert result.structured_content is None, "a client given structuredContent shows it instead of the text"
    assert "".join(p.meta["streamhost/delta"] for p in texts) == final
    assert [p.meta["streamhost/offset"] for p in texts] == [
        sum(len(p.meta["streamhost/delta"]) for p in texts[:i]) for i in range(len(texts))
    ]
    progress = [p.progress for p in served.progress]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)
    assert all(p.total is None for p in served.progress)
    for p in texts:
        if mode == "delta":
            assert p.message == p.meta["streamhost/delta"]
        else:
            assert len(p.message) <= 200 and "\n" not in p.message
            assert final[: p.meta["streamhost/offset"] + len(p.meta["streamhost/delta"])].split()[-1] in p.message
    meta = result.meta
    assert meta["streamhost/model"] == model and meta["streamhost/usage"]["output_tokens"] == len(pieces)
    assert meta["streamhost/ttft_ms"] > 0 and meta["streamhost/duration_ms"] >= meta["streamhost/ttft_ms"]


async def test_the_modern_protocol_era_streams_too(llm, home, mcp_serve, want_progress):
    llm.script("m", Script(tokens=WORDS, delay_s=0.01))
    async with mcp_serve(home.env, era="modern") as served:
        tools = await served.session.list_tools()
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/m"},
                                                progress_callback=want_progress)
    assert {t.name for t in tools.tools} >= {"generate", "list_models"}
    assert result.content[0].text == "".join(WORDS)
    assert result.meta["streamhost/model"] == "openai/m" and result.structured_content is None
    assert "".join(p.meta["streamhost/delta"] for p in served.text_progress()) == "".join(WORDS)


async def test_cancelling_a_call_disconnects_the_upstream_and_the_host_goes_on(llm, home, mcp_serve,
                                                                             want_progress):
    llm.script("stalls", Script(tokens=["one ", "two ", "never"], stall_after=2))
    llm.script("after", Script(tokens=["still ", "here"]))
    async with mcp_serve(home.env) as served:
        with anyio.move_on_after(30) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: served.session.call_tool(
                    "generate", {"prompt": "x", "model": "openai/stalls"}, progress_callback=want_progress))
                while not served.text_progress():
                    await anyio.sleep(0.01)
                cancelled_at = time.monotonic()
                group.cancel_scope.cancel()
        assert not scope.cancelled_caught
        assert await llm.await_for(lambda rs: any(r.model == "stalls" and r.disconnected for r in rs), 30)
        record = next(r for r in llm.requests if r.model == "stalls")
        assert record.disconnected_at - cancelled_at < 5  # ≈2 ms when idle (bench/cancel.py); the stall is endless
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/after"})
    assert result.content[0].text == "still here"
    events = [(m["event"], m["model"]) for m in map(json.loads, home.metrics.read_text().splitlines())]
    assert ("cancelled", "openai/stalls") in events and ("complete", "openai/after") in events


async def test_heartbeats_while_the_model_thinks(llm, home, mcp_serve, want_progress):
    home.write_config("[streaming]\nheartbeat_s = 0.2\n")
    llm.script("thinker", Script(tokens=["done"], first_delay_s=2.0, headers_delay=True))  # ~10 heartbeats
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/thinker"},
                                                progress_callback=want_progress)
    assert result.content[0].text == "done"
    waiting = [m for m in served.statuses() if m.startswith("waiting for openai/thinker (")]
    assert len(waiting) >= 3


async def test_streaming_off_per_model_buffers_but_still_answers(llm, home, mcp_serve, want_progress):
    home.write_config('[streaming]\nheartbeat_s = 0.1\n[models."openai/quiet"]\nstreaming = false\n')
    llm.script("quiet", Script(tokens=WORDS, delay_s=0.02))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/quiet"},
                                                progress_callback=want_progress)
    assert result.content[0].text == "".join(WORDS)
    assert served.text_progress() == []
    assert served.statuses(), "heartbeats still go out while buffering"


async def test_retry_before_the_first_token(llm, home, mcp_serve):
    llm.script("flaky", Script(status=429, retry_after=0.2), Script(status=500), Script(tokens=["fine"]))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/flaky"})
    assert result.content[0].text == "fine"
    stamps = [r.started for r in llm.requests if r.model == "flaky"]
    assert len(stamps) == 3 and stamps[1] - stamps[0] >= 0.19


async def test_a_mid_stream_error_keeps_the_partial_text(llm, home, mcp_serve, want_progress):
    llm.script("breaks", Script(tokens=["partial ", "answer ", "lost"], error_after=2,
                                error_message="the upstream fell over"))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/breaks"},
                                                progress_callback=want_progress)
    assert result.is_error
    text = result.content[0].text
    assert "the upstream fell over" in text and "partial answer " in text
    assert result.meta["streamhost/partial_text"] == "partial answer "
    assert result.meta["streamhost/error_type"] == "StreamError" and result.structured_content is None
    assert len([r for r in llm.requests if r.model == "breaks"]) == 1, "no retry after text was streamed"
    error = json.loads(home.metrics.read_text().splitlines()[-1])
    assert error["event"] == "error" and error["error"] == "StreamError" and error["chars"] == len("partial answer ")


async def test_missing_key_is_a_clear_error(llm, home, mcp_serve):
    home.write_config('[providers.openai]\nmodels = ["listed"]\n')
    env = {k: v for k, v in home.env.items() if k != "OPENAI_API_KEY"}
    async with mcp_serve(env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/any"})
        models = await served.session.call_tool("list_models", {})
    assert result.is_error and "OPENAI_API_KEY is not set" in result.content[0].text
    assert llm.requests == []
    assert "OPENAI_API_KEY not set" in models.content[0].text


async def test_a_refused_key_never_shows_the_key(llm, home, mcp_serve):
    env = {**home.env, "OPENAI_API_KEY": "sk-wrong-0123456789abcdef"}
    async with mcp_serve(env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/any"})
    assert result.is_error and "401" in result.content[0].text and "OPENAI_API_KEY" in result.content[0].text
    assert "0123456789abcdef" not in json.dumps(result.model_dump(mode="json"))
    assert "0123456789abcdef" not in served.stderr_text()


async def test_bad_arguments_name_the_field(home, mcp_serve):
    async with mcp_serve(home.env) as served:
        call = served.session.call_tool
        unknown = await call("generate", {"prompt": "x", "colour": "red"})
        missing = await call("generate", {"model": "openai/x"})
        temperature = await call("generate", {"prompt": "x", "temperature": "hot"})
        tokens = await call("generate", {"prompt": "x", "max_tokens": 0})
        schema = await call("generate", {"prompt": "x", "output_schema": {"type": "nonsense"}})
        model = await call("generate", {"prompt": "x", "model": "opneai/gpt-4.1-mini"})
        tool = await call("no_such_tool", {})
    assert all(r.is_error for r in (unknown, missing, temperature, tokens, schema, model, tool))
    assert "'colour'" in unknown.content[0].text
    assert "'prompt'" in missing.content[0].text
    assert "temperature" in temperature.content[0].text
    assert "max_tokens" in tokens.content[0].text
    assert "output_schema" in schema.content[0].text
    assert "openai/" in model.content[0].text and "close matches" in model.content[0].text
    assert "no_such_tool" in tool.content[0].text


async def test_a_broken_config_file_is_reported_on_every_call(home, mcp_serve):
    home.write_config('default_model = "openai/x"\n[streaming]\ncoalesce_ms = "fast"\n')
    async with mcp_serve(home.env) as served:
        tools = await served.session.list_tools()
        result = await served.session.call_tool("generate", {"prompt": "x"})
    assert {t.name for t in tools.tools} >= {"generate", "list_models"}
    assert result.is_error
    assert str(home.config) in result.content[0].text and "line 3" in result.content[0].text
    assert "streaming.coalesce_ms" in result.content[0].text


SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
          "required": ["city", "population"]}


async def test_structured_output_is_validated(llm, home, mcp_serve, want_progress):
    llm.script("json-good", Script(tokens=['{"city": ', '"Oslo", ', '"population": 709000}']))
    llm.script("json-bad", Script(tokens=['{"city": "Oslo", ', '"population": "many"}']))
    async with mcp_serve(home.env) as served:
        good = await served.session.call_tool(
            "generate", {"prompt": "x", "model": "openai/json-good", "output_schema": SCHEMA},
            progress_callback=want_progress)
        bad = await served.session.call_tool(
            "generate", {"prompt": "x", "model": "openai/json-bad", "output_schema": SCHEMA})
    assert not good.is_error
    assert good.structured_content == {"city": "Oslo", "population": 709000}, "the validated object is the answer"
    assert json.loads(good.content[0].text) == good.structured_content
    assert good.meta["streamhost/model"] == "openai/json-good"
    assert served.text_progress() == [], "no partial JSON is streamed"
    sent = next(r for r in llm.requests if r.model == "json-good").body
    assert sent["response_format"]["json_schema"]["schema"] == SCHEMA
    # An unlisted model is not known to enforce the schema, so it is also asked in words.
    assert sent["messages"][0]["role"] == "system" and '"population"' in sent["messages"][0]["content"]
    assert bad.is_error
    assert "population" in bad.content[0].text and '"many"' in bad.content[0].text


async def test_parallel_calls_do_not_disturb_each_other(llm, home, mcp_serve, want_progress):
    home.write_config("[limits]\nmax_retries = 0\n")
    llm.script("a", Script(tokens=["alpha "] * 20, delay_s=0.01))
    llm.script("b", Script(tokens=["beta "] * 20, delay_s=0.01))
    llm.script("bad", Script(status=500, error_message="boom"))
    results: dict[str, object] = {}
    async with mcp_serve(home.env) as served:
        async def run(model: str) -> None:
            results[model] = await served.session.call_tool(
                "generate", {"prompt": "x", "model": f"openai/{model}"}, progress_callback=want_progress)

        async with anyio.create_task_group() as group:
            for model in ("a", "bad", "b"):
                group.start_soon(run, model)
    assert results["a"].content[0].text == "alpha " * 20
    assert results["b"].content[0].text == "beta " * 20
    assert results["bad"].is_error and "500" in results["bad"].content[0].text


async def test_metrics_record_timings_but_no_text_or_keys(llm, home, mcp_serve):
    llm.script("m", Script(tokens=["secret-ish ", "answer"]))
    async with mcp_serve(home.env) as served:
        await served.session.call_tool("generate", {"prompt": "my private prompt", "model": "openai/m"})
    lines = [json.loads(line) for line in home.metrics.read_text().splitlines()]
    events = [line["event"] for line in lines]
    assert events == ["start", "first_token", "complete"]
    complete = lines[-1]
    assert complete["chars"] == len("secret-ish answer") and complete["tokens"] == 2
    assert lines[1]["ttft_ms"] > 0
    raw = home.metrics.read_text()
    assert "private prompt" not in raw and "secret-ish" not in raw and TEST_KEY not in raw


async def test_list_models_shows_defaults_and_aliases_first(home, mcp_serve):
    home.write_config('default_model = "openai/gpt-4.1"\n[aliases]\nfast = "openai/gpt-4.1-nano"\n'
                      'OPENAI = "x"\n'.replace('OPENAI = "x"\n', ""))
    env = {k: v for k, v in home.env.items() if k != "OPENAI_BASE_URL"}
    async with mcp_serve(env) as served:
        result = await served.session.call_tool("list_models", {})
        tools = await served.session.list_tools()
    models = result.meta["streamhost/models"]
    assert result.structured_content is None and "openai/gpt-4.1-nano (alias fast" in result.content[0].text
    assert models[0]["id"] == "openai/gpt-4.1" and models[0]["default"]
    assert models[1]["id"] == "openai/gpt-4.1-nano" and models[1]["aliases"] == ["fast"]
    description = next(t for t in tools.tools if t.name == "generate").description
    assert description.index("openai/gpt-4.1 (default") < description.index("openai/gpt-4.1-nano (alias fast")


async def test_an_alias_routes_to_its_model(llm, home, mcp_serve):
    home.write_config('[aliases]\nquick = "openai/target-model"\n')
    llm.script("target-model", Script(tokens=["routed"]))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "quick"})
    assert result.content[0].text == "routed" and result.meta["streamhost/model"] == "openai/target-model"


async def test_default_model_is_used_when_none_is_given(llm, home, mcp_serve):
    home.write_config('default_model = "openai/dflt"\n')
    llm.script("dflt", Script(tokens=["default ", "answer"]))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x"})
    assert result.content[0].text == "default answer"
    assert asyncio.iscoroutinefunction(served.session.call_tool)
