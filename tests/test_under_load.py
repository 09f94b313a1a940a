"""``streamhost serve`` busy relaying 50 streams: a cancel still wins and control requests are not starved.

A real MCP client on the server's stdio and the real loopback test server. The load streams outlast the
test (60 s each), so "while they run" is checked against the test server's records, not a clock.
"""

from __future__ import annotations

import anyio
import pytest

from streamhost.testing import Script, cancel_call, expect_disconnect

pytestmark = pytest.mark.anyio

STREAMS = 50
RATE = 50  # tokens/s of each load stream: 2,500 tokens/s in all keep the server's loop busy
LOAD_TOKENS = 4500  # 90 s, longer than the test
LONG_TOKENS = 200  # at 10 tokens/s: 20 s
RETRY_AFTER_S = 5.0
"""Long enough for the cancel to reach the busy server before the retry is due, on a slow machine too."""


def _words(n: int) -> list[str]:
    return [f"w{i} " for i in range(n)]


def _load_running(records: list) -> int:
    return sum(r.model == "load" and r.tokens_sent > 0 and r.ended is None for r in records)


async def test_under_50_streams_a_cancel_wins_and_tools_list_is_answered(llm, home, mcp_serve):
    llm.script("load", Script(tokens=_words(LOAD_TOKENS), rate=RATE))
    llm.script("long", Script(tokens=_words(LONG_TOKENS), rate=10))
    llm.script("down", Script(status=500, retry_after=RETRY_AFTER_S, error_message="overloaded"),
               Script(tokens=["late"]))
    async with mcp_serve(home.env) as served, anyio.create_task_group() as load:
        for _ in range(STREAMS):
            load.start_soon(served.call, "generate", {"prompt": "x", "model": "openai/load"})
        assert await llm.await_for(lambda records: _load_running(records) == STREAMS, timeout=120), (
            "the load streams did not all start")

        tools = {tool.name for tool in await served.tools()}
        assert "generate" in tools
        assert _load_running(llm.requests) == STREAMS, "tools/list must be answered while the streams run"

        # A cancel read while the loop is busy closes the upstream long before that stream would end.
        cancelled = await cancel_call(served, "generate", {"prompt": "x", "model": "openai/long"}, timeout=120)
        record = await expect_disconnect(llm, "long", timeout=60)
        assert record.tokens_sent < LONG_TOKENS, "the cancel came only after the stream had ended"
        assert record.disconnected_at is not None and record.disconnected_at >= cancelled.at

        # A call cancelled while it waits to retry a 500 never sends the retry.
        await cancel_call(served, "generate", {"prompt": "x", "model": "openai/down"}, timeout=120,
                          when=lambda progress: any("retrying in" in (p.message or "") for p in progress))
        # Not a condition to poll for: the retry must *not* happen, so wait well past its time.
        await anyio.sleep(RETRY_AFTER_S * 1.5)
        assert [r.model for r in llm.requests].count("down") == 1, "a cancelled call retried"

        assert _load_running(llm.requests) == STREAMS, "the load must still be running for this test to hold"
        load.cancel_scope.cancel()
