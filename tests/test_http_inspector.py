"""``streamhost serve --http`` with a client nobody here wrote: the MCP Inspector's CLI (npm
``@modelcontextprotocol/inspector``) over Streamable HTTP, sending a bearer token made by ``streamhost tokens add``.

It lists the tools and calls ``generate`` against the real openai plugin in front of the test LLM server; without a
token, or with a wrong one, the server refuses it and the Inspector exits non-zero saying authorization is needed.
(Its CLI prints no progress notifications, only the result: tests/test_http.py checks the streaming itself with
the MCP SDK's HTTP client.)

Found as in tests/test_tasks_inspector.py: ``$STREAMHOST_INSPECTOR`` or under ``.ci/node``; skipped when absent,
or when ``node`` is not installed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import pytest

from streamhost.testing import Home, LLMTestServer, Script
from tests.test_http import serve_http
from tests.test_http_auth_served import tokens_add
from tests.test_tasks_inspector import _inspector

pytestmark = pytest.mark.anyio
TOKENS = [f"w{i} " for i in range(20)]


async def inspect(inspector: str, home: Home, url: str, *args: str, token: str | None = None) -> \
        subprocess.CompletedProcess[str]:
    """Run the Inspector's CLI once against ``url`` (in a thread: the server runs on this event loop's side)."""
    header = ["--header", f"Authorization: Bearer {token}"] if token is not None else []
    # --stored-auth-only: a server asking for authorization is an error, never an OAuth flow in a browser.
    command = ["node", inspector, "--cli", url + "/mcp", "--transport", "http", *header, *args, "--format", "json",
               "--stored-auth-only", "--connect-timeout", "120000"]
    # Its own settings go under HOME: the test's home, never the user's.
    return await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=180,
                                   env={**home.env, "HOME": str(home.root)})


def result(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["result"]


async def test_the_inspector_lists_the_tools_and_generates_with_a_token(llm: LLMTestServer, home: Home) -> None:
    inspector = _inspector()
    llm.script("mini", Script(tokens=TOKENS, rate=40))
    token = tokens_add(home, "inspector")
    async with serve_http(home) as served:
        tools = result(await inspect(inspector, home, served.url, "--method", "tools/list", token=token))
        assert {"generate", "list_models", "wait"} <= {tool["name"] for tool in tools["tools"]}
        answer = result(await inspect(inspector, home, served.url, "--method", "tools/call", "--tool-name",
                                      "generate", "--tool-arg", "prompt=Say twenty words", "model=openai/mini",
                                      token=token))
        assert token not in served.log(), "the token never reaches the log"
    assert not answer["isError"] and answer["content"][0]["text"] == "".join(TOKENS)
    assert answer["_meta"]["streamhost/model"] == "openai/mini"
    assert [r.model for r in llm.requests if r.api == "chat"] == ["mini"]


async def test_the_inspector_without_a_valid_token_is_refused(llm: LLMTestServer, home: Home) -> None:
    inspector = _inspector()
    token = tokens_add(home, "inspector")
    async with serve_http(home) as served:
        for sent in (None, token[:-3] + "abc"):
            for method in (["--method", "tools/list"],
                           ["--method", "tools/call", "--tool-name", "generate", "--tool-arg", "prompt=p",
                            "model=openai/mini"]):
                refused = await inspect(inspector, home, served.url, *method, token=sent)
                assert refused.returncode != 0 and refused.stdout == "", refused.stdout
                error = json.loads(refused.stderr.strip().splitlines()[-1])["error"]
                assert error["code"] == "auth_required", error
    assert not [r for r in llm.requests if r.api == "chat"], "no refused call reached the upstream"
