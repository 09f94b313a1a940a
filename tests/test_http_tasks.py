"""MCP tasks over ``streamhost serve --http`` with tokens: a task belongs to the token that started it. Another
token polling, cancelling or listing it is answered as for an unknown task, and its call goes on untouched."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2
import pytest

from streamhost.testing import Home, LLMTestServer, Script
from tests.raw_client import MODERN_META
from tests.test_http import serve_http
from tests.test_http_auth_served import raw_call, tokens_add

pytestmark = pytest.mark.anyio
EXTENSION = "io.modelcontextprotocol/tasks"
META = {**MODERN_META, "io.modelcontextprotocol/clientCapabilities": {"extensions": {EXTENSION: {}}}}
TOKENS = [f"w{i:03d} " for i in range(40)]
DEADLINE_S = 60.0


async def _rpc(client: httpx2.AsyncClient, token: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """One 2026-era request; its JSON-RPC answer, from a JSON body or the last message of an SSE body."""
    body = {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": META}}
    # The 2026-07-28 HTTP transport routes on headers that repeat the body's version, method and tool name.
    headers = {**raw_call(token), "mcp-protocol-version": MODERN_META["io.modelcontextprotocol/protocolVersion"],
               "mcp-method": method, **({"mcp-name": params["name"]} if "name" in params else {})}
    answer = await client.post("/mcp", json=body, headers=headers)
    assert answer.status_code in (200, 400), answer.text  # 400: a JSON-RPC error answered as such
    if answer.headers["content-type"].startswith("application/json"):
        return answer.json()
    lines = [line[5:] for line in answer.text.splitlines() if line.startswith("data:") and line[5:].strip()]
    messages = [json.loads(line) for line in lines]
    return next(message for message in reversed(messages) if message.get("id") == 7)


async def test_another_tokens_task_is_unknown_to_it_and_goes_on(llm: LLMTestServer, home: Home) -> None:
    llm.script("slow", Script(tokens=TOKENS, rate=8))  # 5 s of answer
    alice, bob = tokens_add(home, "alice"), tokens_add(home, "bob")
    async with serve_http(home) as served, httpx2.AsyncClient(base_url=served.url, timeout=60) as client:
        created = (await _rpc(client, alice, "tools/call", {
            "name": "generate", "arguments": {"prompt": "p", "model": "openai/slow"}}))["result"]
        assert created.get("resultType") == "task", created
        task_id = created["taskId"]

        for method in ("tasks/get", "tasks/cancel"):
            refused = await _rpc(client, bob, method, {"taskId": task_id})
            assert "error" in refused and refused["error"]["code"] == -32602, refused
            assert "w00" not in json.dumps(refused), "nothing of the task's text reaches another token"

        deadline = time.monotonic() + DEADLINE_S
        while True:
            got = (await _rpc(client, alice, "tasks/get", {"taskId": task_id}))["result"]
            if got["status"] != "working" or time.monotonic() > deadline:
                break
        assert got["status"] == "completed", got
        assert "".join(block["text"] for block in got["result"]["content"]) == "".join(TOKENS)
        # Ended, the task is read back from the store: still unknown to the other token.
        refused = await _rpc(client, bob, "tasks/get", {"taskId": task_id})
        assert "error" in refused, refused
