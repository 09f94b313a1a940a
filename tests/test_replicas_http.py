"""Two ``streamhost serve --http`` replicas on one PostgreSQL, as behind a load balancer: a thread started on A is
continued on B, and a run handed off on A is waited on from B to its end, text exact (the MCP SDK's Streamable
HTTP client; both protocol eras)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from streamhost.mcp.progress import OFFSET_KEY
from streamhost.testing import LLMTestServer, Script, make_home
from streamhost.testing.toolcalls import ProgressLog, carries_text
from tests.test_http import OPEN, mcp_session, serve_http

pytestmark = pytest.mark.anyio

TEST_KEY = "sk-test-9f8e7d6c5b4a"  # conftest.TEST_KEY: the key the test server requires
TOKENS = [f"t{i:03d} " for i in range(60)]
WHOLE = "".join(TOKENS)


def _note_free(text: str) -> str:
    return text.split("\n\n[streamhost:", 1)[0]


@pytest.mark.parametrize("era", ["handshake", "modern"])
async def test_over_http_any_replica_continues_a_thread_and_follows_a_handed_off_run(
        tmp_path: Path, llm: LLMTestServer, pg_url: str, era: str) -> None:
    llm.script("warm", Script(tokens=["ok"]))
    llm.script("first", Script(tokens=["Paris ", "is the capital."]))
    llm.script("second", Script(tokens=["Agreed."]))
    llm.script("slow", Script(tokens=TOKENS, rate=10))  # 6 s of answer
    homes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        homes.append(make_home(tmp_path / name, config=f'[store]\nurl = "{pg_url}"\n[limits]\nhandoff_s = 1\n{OPEN}',
                               env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": llm.url}))
    log_a, log_b = ProgressLog(), ProgressLog()
    async with serve_http(homes[0]) as served_a, serve_http(homes[1]) as served_b, \
            mcp_session(served_a.url, era, log_a) as a, mcp_session(served_b.url, era, log_b) as b:
        for session in (a, b):  # the SDK imported and the store opened: the hand-off finds text to give
            await session.call_tool("generate", {"prompt": "p", "model": "openai/warm"})
        one = await a.call_tool("generate", {"prompt": "Capital of France?", "model": "openai/first", "thread": "new"})
        two = await b.call_tool("generate", {"prompt": "Sure?", "model": "openai/second",
                                             "thread": one.meta["streamhost/thread"]})
        assert not two.is_error, two.content[0].text

        first = await a.call_tool("generate", {"prompt": "p", "model": "openai/slow"})
        assert first.meta["streamhost/status"] == "running", first.content[0].text
        run = first.meta["streamhost/run"]
        parts = [_note_free(first.content[0].text)]
        for n in itertools.count():
            assert n < 60, "the run never ended"
            step = await b.call_tool("wait", {"run": run}, meta={"progress_token": f"w{n}"})
            assert not step.is_error, step.content[0].text
            if step.meta.get("streamhost/status") != "running":
                break
            parts.append(_note_free(step.content[0].text))
    (second,) = [r for r in llm.requests if r.model == "second"]
    assert [(m["role"], m["content"]) for m in second.body["messages"]] == [
        ("user", "Capital of France?"), ("assistant", "Paris is the capital."), ("user", "Sure?")]
    assert step.content[0].text == WHOLE
    assert "".join(parts) == WHOLE[:len("".join(parts))], "each hand-off's part starts where the previous ended"
    pieces = [(p.meta[OFFSET_KEY], p.meta["streamhost/delta"]) for p in log_b.received
              if carries_text(p) and str(p.progress_token).startswith("w")]
    assert pieces and pieces[0][0] == len(parts[0]), "B's first wait goes on where A's result ended"
    for (offset, delta), (following, _) in itertools.pairwise(pieces):
        assert offset + len(delta) == following, "each delta starts where the previous one ended"
    assert len([r for r in llm.requests if r.model == "slow"]) == 1, "A kept generating; nobody restarted it"
