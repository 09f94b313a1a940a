"""Tokens against a real ``streamhost serve --http``: tokens made with ``streamhost tokens add``, the MCP SDK's HTTP
client sending them, a missing, wrong or revoked token refused with 401, a token's model patterns as a clear tool
error, a thread that only its token can continue, and usage per token."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from streamhost.testing import Home, LLMTestServer, Script, streamhost_executable
from tests.test_http import serve_http

pytestmark = pytest.mark.anyio
DEADLINE_S = 30


def tokens_add(home: Home, name: str, *options: str) -> str:
    done = subprocess.run([streamhost_executable(), "tokens", "add", name, *options], env=home.env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1]


@asynccontextmanager
async def session_as(url: str, token: str) -> AsyncIterator[ClientSession]:
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as client, \
            streamable_http_client(url + "/mcp", http_client=client) as (read, write), \
            ClientSession(read, write) as session:
        await session.discover()
        yield session


def raw_call(token: str | None) -> dict[str, str]:
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return headers


BODY = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}


async def test_tokens_open_the_server_to_their_holders_only(llm: LLMTestServer, home: Home) -> None:
    llm.script("mini-1", Script(tokens=["Paris."]))
    llm.script("mini-2", Script(tokens=["Yes."]))
    alice = tokens_add(home, "alice", "--models", "openai/mini-*")
    bob = tokens_add(home, "bob")
    async with serve_http(home) as served:
        async with httpx2.AsyncClient(base_url=served.url, timeout=60) as client:
            for token in (None, "sht_" + "x" * 43, alice[:-2]):
                refused = await client.post("/mcp", json=BODY, headers=raw_call(token))
                assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
                assert b"alice" not in refused.content

        async with session_as(served.url, alice) as session:
            first = await session.call_tool("generate", {"prompt": "Capital of France?", "model": "openai/mini-1",
                                                         "thread": "new"})
            assert not first.is_error, first.content[0].text
            thread = first.meta["streamhost/thread"]
            other = await session.call_tool("generate", {"prompt": "x", "model": "openai/big"})
            assert other.is_error
            assert "model openai/big is not allowed for token alice (allowed: openai/mini-*)" in other.content[0].text

        async with session_as(served.url, bob) as session:
            stolen = await session.call_tool("generate", {"prompt": "Sure?", "model": "openai/mini-2",
                                                          "thread": thread})
            assert stolen.is_error and f"unknown thread {thread!r}" in stolen.content[0].text

        async with session_as(served.url, alice) as session:
            second = await session.call_tool("generate", {"prompt": "Sure?", "model": "openai/mini-2",
                                                          "thread": thread})
            assert not second.is_error, second.content[0].text
        assert [r.model for r in llm.requests if r.api == "chat"] == ["mini-1", "mini-2"]

        revoked = subprocess.run([streamhost_executable(), "tokens", "revoke", "bob"], env=home.env,
                                 capture_output=True, text=True, timeout=120)
        assert revoked.returncode == 0, revoked.stderr
        async with httpx2.AsyncClient(base_url=served.url, timeout=60) as client:
            deadline = time.monotonic() + DEADLINE_S
            while (await client.post("/mcp", json=BODY, headers=raw_call(bob))).status_code != 401:
                assert time.monotonic() < deadline, "bob's revoked token still opened the server"
                await asyncio.sleep(0.2)
        assert alice not in served.log() and bob not in served.log(), "tokens never reach the log"

    usage = subprocess.run([streamhost_executable(), "usage", "--by", "token", "--json"], env=home.env,
                           capture_output=True, text=True, timeout=120)
    assert {row["key"]: row["runs"] for row in json.loads(usage.stdout)["rows"]} == {"alice": 2}
