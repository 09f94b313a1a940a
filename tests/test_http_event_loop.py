"""``streamhost serve --http`` runs on uvloop (a core dependency wherever it has a build) and says so in its log;
text streams through it as it does on asyncio. A real ``streamhost`` process, the MCP SDK's HTTP client, the real
openai plugin and a real loopback upstream."""

from __future__ import annotations

import pytest

from streamhost.testing import Home, LLMTestServer, Script
from streamhost.testing.toolcalls import ProgressLog, carries_text
from tests.test_http import OPEN, mcp_session, serve_http

pytestmark = pytest.mark.anyio
WORDS = [f"word{i} " for i in range(60)]


def test_uvloop_is_installed_with_the_core() -> None:
    # Without it `serve --http` quietly falls back to asyncio and spends more CPU per streamed token.
    import uvloop

    assert uvloop.new_event_loop


async def test_serve_http_runs_on_uvloop_and_streams_text(llm: LLMTestServer, home: Home) -> None:
    # A 3-second upstream: text reaching the client before its last token holds with a wide margin.
    llm.script("slow", Script(tokens=WORDS, rate=20))
    home.write_config(OPEN)
    log = ProgressLog()
    async with serve_http(home) as served, mcp_session(served.url, "modern", log) as session:
        result = await session.call_tool("generate", {"prompt": "count", "model": "openai/slow"},
                                         meta={"progress_token": "slow"})
    assert "(1 process(es), event loop: uvloop)" in served.log(), served.log()
    record = next(r for r in llm.requests if r.model == "slow")
    texts = [p for p in log.received if carries_text(p) and p.progress_token == "slow"]
    assert not result.is_error, result.content
    assert result.content[0].text == "".join(WORDS)
    assert log.arrivals[log.received.index(texts[0])] < record.ended, "text must stream, not arrive at the end"
    # At least one notification per 0.5 s (the widest a window grows when the loop lags, as a loaded machine's does).
    assert len(texts) >= 5, "text must arrive in many notifications"
    assert "".join(p.meta["streamhost/delta"] for p in texts) == "".join(WORDS)

