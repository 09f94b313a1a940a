"""A token's limits against a real ``streamhost serve --http``: ``list_models`` shows each token the models it may
call (a local caller all of them), and ``streamhost tokens set`` changes a token's limits on a running server while
its holder keeps the same token."""

from __future__ import annotations

import asyncio
import subprocess
import time
from typing import Any

import pytest
from mcp import ClientSession

from streamhost.testing import Home, LLMTestServer, Script, streamhost_executable
from streamhost.testing.toolcalls import ProgressLog
from tests.test_http import OPEN, mcp_session, serve_http
from tests.test_http_auth_served import session_as, tokens_add

pytestmark = pytest.mark.anyio
DEADLINE_S = 30
EVERY = ["openai/big", "openai/mini-1", "openai/mini-2"]
CONFIG = ('default_model = "openai/big"\n' + OPEN
          + '[providers.openai]\nmodels = ["big", "mini-1", "mini-2"]\n'
          + '[aliases]\nfast = "openai/mini-1"\nsmart = "openai/big"\n')


async def listed(session: ClientSession) -> tuple[list[str], str | None, dict[str, str], str]:
    """What ``list_models`` shows: the model ids (sorted), the default, the aliases, and its text."""
    result = await session.call_tool("list_models", {})
    assert not result.is_error, result.content[0].text
    meta: dict[str, Any] = result.meta or {}
    return (sorted(m["id"] for m in meta["streamhost/models"]), meta.get("streamhost/default"),
            meta["streamhost/aliases"], result.content[0].text)


async def generate_description(session: ClientSession) -> str:
    """The description ``tools/list`` gives of ``generate`` (it names the models the caller may call)."""
    tools = (await session.list_tools()).tools
    return next(tool.description or "" for tool in tools if tool.name == "generate")


def tokens_set(home: Home, name: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([streamhost_executable(), "tokens", "set", name, *options], env=home.env,
                          capture_output=True, text=True, timeout=120)


async def until_listed(session: ClientSession, models: list[str]) -> None:
    """Wait until ``list_models`` shows ``models``: a running server reads a token's limits again within
    ``TOKEN_CACHE_S``; the deadline is generous for a loaded machine."""
    deadline = time.monotonic() + DEADLINE_S
    while (shown := (await listed(session))[0]) != models:
        assert time.monotonic() < deadline, f"still listed {shown}, expected {models}"
        await asyncio.sleep(0.2)


async def test_list_models_shows_each_token_the_models_it_may_call(llm: LLMTestServer, home: Home) -> None:
    home.write_config(CONFIG)
    alice = tokens_add(home, "alice", "--models", "openai/mini-*")
    bob = tokens_add(home, "bob")
    async with serve_http(home) as served:
        async with session_as(served.url, alice) as session:
            models, default, aliases, text = await listed(session)
            described = await generate_description(session)
        assert models == ["openai/mini-1", "openai/mini-2"]
        assert "openai/mini-1" in described and "openai/big" not in described, described
        assert default is None, "alice may not call the default: calls naming no model are refused for her"
        assert aliases == {"fast": "openai/mini-1"}
        assert "openai/big" not in text and "smart" not in text

        async with session_as(served.url, bob) as session:
            models, default, aliases, _ = await listed(session)
            assert "openai/big" in await generate_description(session)
        assert (models, default, aliases) == (EVERY, "openai/big", {"fast": "openai/mini-1", "smart": "openai/big"})
        async with mcp_session(served.url, "handshake", ProgressLog()) as session:  # loopback, no token: local
            models, default, _, text = await listed(session)
        assert models == EVERY and default == "openai/big" and "openai/big" in text


async def test_tokens_set_changes_the_limits_of_a_running_servers_token(llm: LLMTestServer, home: Home) -> None:
    home.write_config(CONFIG)
    llm.script("mini-1", Script(tokens=["small"]))
    carol = tokens_add(home, "carol")
    async with serve_http(home) as served:
        async with session_as(served.url, carol) as session:
            assert (await listed(session))[0] == EVERY

            changed = tokens_set(home, "carol", "--models", "openai/big", "--per-minute", "100")
            assert changed.returncode == 0, changed.stderr
            assert "openai/big; no daily budget; 100 calls a minute" in changed.stdout
            await until_listed(session, ["openai/big"])
            refused = await session.call_tool("generate", {"prompt": "p", "model": "openai/mini-1"})
            assert refused.is_error
            assert "not allowed for token carol (allowed: openai/big)" in refused.content[0].text

            lifted = tokens_set(home, "carol", "--any-model", "--daily-usd", "0")
            assert lifted.returncode == 0, lifted.stderr
            await until_listed(session, EVERY)
            broke = await session.call_tool("generate", {"prompt": "p", "model": "openai/mini-1"})
            assert broke.is_error and "token carol has used its daily budget of $0.00" in broke.content[0].text

            assert tokens_set(home, "carol", "--no-daily-usd").returncode == 0
            deadline = time.monotonic() + DEADLINE_S
            while (answer := await session.call_tool("generate", {"prompt": "p", "model": "openai/mini-1"})).is_error:
                assert "daily budget" in answer.content[0].text, answer.content[0].text
                assert time.monotonic() < deadline, "the lifted budget still refused carol's calls"
                await asyncio.sleep(0.2)
        assert answer.content[0].text == "small", "the same token works throughout: only its limits changed"
    assert [r.model for r in llm.requests if r.api == "chat"] == ["mini-1"]
