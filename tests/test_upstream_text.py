"""What an upstream says reaches the client safe and whole: real ``streamhost serve``, real openai plugin,
the loopback LLM server, a real MCP client. Stalls keep the text visible, keys are masked, lone
surrogates are repaired, and a cancelled call is never retried."""

from __future__ import annotations

import json
import time

import anyio
import pytest

from streamhost.testing import Script

pytestmark = pytest.mark.anyio


async def test_a_stall_keeps_the_latest_text_on_the_callers_row(llm, home, mcp_serve, want_progress):
    home.write_config("[streaming]\nheartbeat_s = 0.2\n")
    llm.script("slow", Script(tokens=["The answer\n\nis ", "42."], delay_s=2.0))  # ~10 heartbeats of silence
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/slow"},
                                                progress_callback=want_progress)
    assert result.content[0].text == "The answer\n\nis 42."
    first_text = next(i for i, p in enumerate(served.progress) if p.meta and "streamhost/delta" in p.meta)
    between = [p.message for p in served.progress[first_text + 1:] if not (p.meta and "streamhost/delta" in p.meta)]
    assert len(between) >= 3
    for message in between:
        assert message.startswith("The answer is … (stalled "), message
        assert message.endswith(" s)") and len(message) <= 200
    assert "tokens" not in " ".join(between)


@pytest.mark.parametrize("kind", ["error", "response.failed"])
async def test_a_key_echoed_by_the_upstream_mid_stream_is_masked_everywhere(llm, home, mcp_serve, want_progress,
                                                                             kind):
    key = home.env["OPENAI_API_KEY"]
    home.write_config('[providers.openai]\napi = "responses"\n')
    llm.script("echoes", Script(tokens=["partial ", "text"], error_after=2, error_kind=kind,
                                error_message=f"Incorrect API key provided: {key}. Bearer {key}"))
    async with mcp_serve(home.env, "--log-level", "debug") as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/echoes"},
                                                progress_callback=want_progress)
        stderr = served.stderr_text()
    shown = json.dumps(result.model_dump(mode="json"))
    assert result.is_error and "Incorrect API key provided: ****" in result.content[0].text
    assert result.meta["streamhost/partial_text"] == "partial text"
    assert key not in shown
    assert key not in json.dumps([p.model_dump(mode="json") for p in served.progress])
    assert key not in stderr and key not in home.metrics.read_text()


async def test_lone_surrogates_from_the_upstream_arrive_repaired(llm, home, mcp_serve, want_progress):
    llm.script("garbled", Script(tokens=["ok \ud800 ", "then \udfff", " fine"]))
    llm.script("after", Script(tokens=["still ", "here"]))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/garbled"},
                                                progress_callback=want_progress)
        after = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/after"})
        stderr = served.stderr_text()
    assert result.content[0].text == "ok \ufffd then \ufffd fine"
    assert "repaired lone UTF-16 surrogates" not in stderr, "repaired where the text enters, not at the wire"
    assert "".join(p.meta["streamhost/delta"] for p in served.text_progress()) == result.content[0].text
    assert after.content[0].text == "still here"


async def test_a_call_cancelled_while_waiting_to_retry_is_never_retried(llm, home, mcp_serve, want_progress):
    # 5 s: time for the cancel to reach the server before the retry is due, however slow the machine.
    llm.script("down", Script(status=500, retry_after=5.0, error_message="overloaded"), Script(tokens=["late"]))
    llm.script("after", Script(tokens=["still ", "here"]))
    async with mcp_serve(home.env) as served:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(lambda: served.session.call_tool(
                    "generate", {"prompt": "x", "model": "openai/down"}, progress_callback=want_progress))
                while not any("retrying in 5.0 s" in m for m in served.statuses()):
                    await anyio.sleep(0.01)
                group.cancel_scope.cancel()
        cancelled_at = time.monotonic()
        # Not a condition to poll for: the retry must *not* happen, so wait well past its time (5 s).
        await anyio.sleep(7.5)
        after = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/after"})
    assert [r.model for r in llm.requests].count("down") == 1
    assert after.content[0].text == "still here"
    assert time.monotonic() - cancelled_at >= 7.5
