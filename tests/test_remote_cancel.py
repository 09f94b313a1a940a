"""Cancelling a run from a replica that does not run it, as behind a load balancer: the cancel is recorded in the
store, the replica running the run cancels it within about a second (its upstream request is closed), and the
cancelling replica answers as a local cancel does: ``cancelled``, with the text written so far.

Real ``streamhost serve --http`` replicas on one PostgreSQL (the MCP SDK's client, and raw 2026-era requests for
tasks), and two ``streamhost serve`` processes on one SQLite file."""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest

from streamhost.testing import Home, LLMTestServer, Script, make_home, serve
from streamhost.testing.cancelling import expect_disconnect
from streamhost.testing.toolcalls import ProgressLog
from tests.test_http import OPEN, mcp_session, serve_http
from tests.test_http_tasks import _rpc

pytestmark = pytest.mark.anyio

TEST_KEY = "sk-test-9f8e7d6c5b4a"  # conftest.TEST_KEY: the key the test server requires
TOKENS = [f"t{i:03d} " for i in range(300)]
WHOLE = "".join(TOKENS)
SLOW = Script(tokens=TOKENS, rate=10)  # 30 s of answer: the cancel comes long before its end
DEADLINE_S = 60.0


def _note_free(text: str) -> str:
    return text.split("\n\n[streamhost:", 1)[0]


def _homes(tmp_path: Path, llm: LLMTestServer, store: str) -> list[Home]:
    homes = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        homes.append(make_home(tmp_path / name, config=f"[store]\n{store}\n[limits]\nhandoff_s = 1\n{OPEN}",
                               env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": llm.url}))
    return homes


async def test_a_cancel_sent_to_the_other_replica_stops_the_run_and_keeps_its_text(
        tmp_path: Path, llm: LLMTestServer, pg_url: str) -> None:
    llm.script("warm", Script(tokens=["ok"]))
    llm.script("slow", SLOW)
    home_a, home_b = _homes(tmp_path, llm, f'url = "{pg_url}"')
    async with serve_http(home_a) as served_a, serve_http(home_b) as served_b, \
            mcp_session(served_a.url, "handshake", ProgressLog()) as a, \
            mcp_session(served_b.url, "handshake", ProgressLog()) as b:
        for session in (a, b):  # the SDK imported and the store opened: the hand-off finds text to give
            await session.call_tool("generate", {"prompt": "p", "model": "openai/warm"})
        first = await a.call_tool("generate", {"prompt": "p", "model": "openai/slow"})
        assert first.meta["streamhost/status"] == "running", first.content[0].text
        run, handed = first.meta["streamhost/run"], _note_free(first.content[0].text)

        asked = time.time()
        cancelled = await b.call_tool("wait", {"run": run, "cancel": True})
        assert not cancelled.is_error, cancelled.content[0].text
        assert cancelled.meta["streamhost/status"] == "cancelled", cancelled.content[0].text
        assert cancelled.meta["streamhost/run"] == run
        text = _note_free(cancelled.content[0].text)
        assert text.startswith(handed) and len(text) < len(WHOLE), "the text written before the cancel is kept"
        assert WHOLE.startswith(text)

        await expect_disconnect(llm, "slow", since=asked, within=DEADLINE_S, timeout=DEADLINE_S)
        again = await a.call_tool("wait", {"run": run})  # A, which ran it, reads its record back: cancelled
        assert again.meta["streamhost/status"] == "cancelled", again.content[0].text
        assert _note_free(again.content[0].text) == text
    assert len([r for r in llm.requests if r.model == "slow"]) == 1


async def test_a_task_cancelled_on_the_other_replica_ends_cancelled(
        tmp_path: Path, llm: LLMTestServer, pg_url: str) -> None:
    llm.script("slow", SLOW)
    home_a, home_b = _homes(tmp_path, llm, f'url = "{pg_url}"')
    async with serve_http(home_a) as served_a, serve_http(home_b) as served_b, \
            httpx2.AsyncClient(base_url=served_a.url, timeout=DEADLINE_S) as a, \
            httpx2.AsyncClient(base_url=served_b.url, timeout=DEADLINE_S) as b:
        created = (await _rpc(a, None, "tools/call", {  # type: ignore[arg-type]
            "name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"}}))["result"]
        assert created.get("resultType") == "task", created
        task_id = created["taskId"]
        assert await llm.await_for(lambda records: any(r.tokens_sent > 0 for r in records), DEADLINE_S)

        answer = await _rpc(b, None, "tasks/cancel", {"taskId": task_id})  # type: ignore[arg-type]
        assert "error" not in answer, answer
        await expect_disconnect(llm, "slow", timeout=DEADLINE_S)
        deadline = time.monotonic() + DEADLINE_S
        while True:  # A learns of its own call's end as it ends; B read it from the store
            got = (await _rpc(a, None, "tasks/get", {"taskId": task_id}))["result"]  # type: ignore[arg-type]
            if got["status"] != "working" or time.monotonic() > deadline:
                break
        assert got["status"] == "cancelled", got
        on_b = (await _rpc(b, None, "tasks/get", {"taskId": task_id}))["result"]  # type: ignore[arg-type]
        assert on_b["status"] == "cancelled", on_b


async def test_two_stdio_servers_on_one_sqlite_file_cancel_each_others_runs(
        tmp_path: Path, llm: LLMTestServer) -> None:
    llm.script("warm", Script(tokens=["ok"]))
    llm.script("slow", SLOW)
    home_a, home_b = _homes(tmp_path, llm, f'path = "{tmp_path / "shared.db"}"')
    async with serve(home_a.env) as a, serve(home_b.env) as b:
        for served in (a, b):
            await served.call("generate", {"prompt": "p", "model": "openai/warm"})
        first = await a.call("generate", {"prompt": "p", "model": "openai/slow"})
        assert first.meta["streamhost/status"] == "running", first.text
        run, handed = first.meta["streamhost/run"], _note_free(first.text)

        cancelled = await b.call("wait", {"run": run, "cancel": True})
        assert cancelled.meta["streamhost/status"] == "cancelled", cancelled.text
        text = _note_free(cancelled.text)
        assert text.startswith(handed) and WHOLE.startswith(text) and len(text) < len(WHOLE)
        await expect_disconnect(llm, "slow", timeout=DEADLINE_S)
