"""An OpenAI-compatible endpoint (vLLM, Ollama, LM Studio) lists its models: the warm-up asks it once, in the
background, and its first chat model becomes the default. Against the real loopback test server."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time

import pytest

from streamhost.testing import streamhost_executable
from streamhost_openai import catalog

pytestmark = pytest.mark.anyio


def listings(server) -> list:
    return [r for r in server.requests if r.api == "models"]


async def test_warm_lists_a_compatible_endpoint_once_and_its_first_chat_model_is_the_default(server, provider):
    server.set_models(["nomic-embed-text", "qwen2.5-7b", "llama3.2"])
    assert provider.models() == []  # nothing configured, never listed: no default either

    await asyncio.to_thread(provider.warm)

    [listing] = listings(server)
    assert listing.method == "GET" and listing.path == "/v1/models" and listing.authorized
    infos = provider.models()
    assert [m.name for m in infos] == ["nomic-embed-text", "qwen2.5-7b", "llama3.2"]  # the endpoint's order
    assert [m.name for m in infos if m.default] == ["qwen2.5-7b"]  # an embedder cannot answer a prompt

    await asyncio.to_thread(provider.warm)
    assert len(listings(server)) == 1, "listed once; `streamhost models --refresh` updates it"


async def test_the_first_configured_model_is_the_default_and_listed_models_follow(server, make_provider):
    server.set_models(["served-a", "mine"])
    provider = make_provider(models=["mine", "other"])

    await asyncio.to_thread(provider.warm)

    infos = provider.models()
    assert [m.name for m in infos] == ["mine", "other", "served-a"]
    assert [m.name for m in infos if m.default] == ["mine"]


async def test_an_endpoint_listing_nothing_counts_as_listed(server, provider):
    server.set_models([])

    await asyncio.to_thread(provider.warm)
    await asyncio.to_thread(provider.warm)

    assert provider.models() == [] and len(listings(server)) == 1


async def test_a_long_listing_is_cut_to_max_listed(server, provider):
    ids = [f"model-{i:04d}" for i in range(catalog.MAX_LISTED + 200)]
    server.set_models(ids)

    await asyncio.to_thread(provider.warm)

    names = [m.name for m in provider.models()]
    assert names == ids[: catalog.MAX_LISTED]
    assert [m.name for m in provider.models() if m.default] == ["model-0000"]


@pytest.mark.parametrize("broken", ["unreachable", "refused-key"])
async def test_a_failed_listing_is_quiet_says_how_to_retry_and_is_tried_again(
        server, make_provider, closed_port_url, monkeypatch, caplog, broken):
    if broken == "unreachable":
        provider = make_provider(base_url=closed_port_url)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-00aa11bb22cc")
        provider = make_provider()
    caplog.set_level(logging.INFO, logger="streamhost.openai")

    await asyncio.to_thread(provider.warm)  # raises nothing: the host works without the list
    await asyncio.to_thread(provider.warm)

    assert provider.models() == []
    said = [r.getMessage() for r in caplog.records if r.name == "streamhost.openai"]
    assert len(said) == 2 and all("`streamhost models --refresh` tries again" in m for m in said)
    assert not any("00aa11bb22cc" in m for m in said)
    if broken == "refused-key":
        assert len(listings(server)) == 2 and "HTTP 401" in said[0]
    else:
        assert "cannot reach" in said[0] and closed_port_url in said[0]


async def test_without_a_key_the_endpoint_is_not_asked(server, provider, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")

    await asyncio.to_thread(provider.warm)

    assert server.requests == [] and provider.models() == []


def test_warm_on_the_official_endpoint_touches_no_network(tmp_path):
    # The official endpoint has its curated list: the warm-up imports the SDK and asks nothing.
    code = "\n".join([
        "import socket",
        "def refuse(*args, **kwargs):",
        "    raise AssertionError('network used: %r' % (args,))",
        "socket.socket.connect = refuse",
        "socket.create_connection = refuse",
        "import streamhost_openai",
        "p = streamhost_openai.OpenAIProvider()",
        "p.configure({})",
        "p.warm()",
        "assert [m.name for m in p.models() if m.default] == ['gpt-4.1-mini']",
        "print('ok')",
    ])
    env = {"PATH": "", "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "OPENAI_API_KEY": "sk-x"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ---------------------------------------------------------------------------- through `streamhost serve`


async def test_serve_lists_the_endpoint_in_the_background_and_calls_its_model_by_default(
        server, serve_env, mcp_serve):
    server.set_models(["local-llama"])
    async with mcp_serve(serve_env) as served:
        await served.tools()
        # The warm-up lists after the first tools/list; poll for its result through the tool a client has.
        deadline = time.monotonic() + 30
        while "openai/local-llama (default)" not in (listed := (await served.call("list_models")).text):
            assert time.monotonic() < deadline, listed
            await asyncio.sleep(0.1)
        result = await served.call("generate", {"prompt": "hello there"})  # no model named

    assert not result.is_error, result.text
    assert result.text == "echo: hello there"
    assert [r.model for r in server.requests if r.api == "chat"] == ["local-llama"]
    assert len(listings(server)) == 1


async def test_the_tool_list_does_not_wait_for_a_slow_endpoint(server, serve_env, mcp_serve):
    # The endpoint takes 30 s to list (the warm-up gives up after LIST_TIMEOUT_S): had the tool list waited for
    # it, the listing would have ended, answered or abandoned, before tools/list was answered.
    server.set_models(["local-llama"], delay_s=30)
    async with mcp_serve(serve_env) as served:
        tools = await served.tools()
        answered = time.monotonic()
        assert not [r for r in listings(server) if r.ended is not None], (answered, listings(server))
        result = await served.call("generate", {"prompt": "hi", "model": "openai/anything"})

    assert {t.name for t in tools} >= {"generate", "list_models"}
    assert not result.is_error, result.text
    assert result.text == "echo: hi"


# ---------------------------------------------------------------------------- `streamhost models`


def run_models(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([streamhost_executable(), "models", "--json", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def unwrapped(text: str) -> str:
    """The terminal output with the console's line wrapping undone."""
    return " ".join(text.split())


def test_models_hints_refresh_when_nothing_is_listed_and_refresh_finds_the_default(server, serve_env):
    server.set_models(["local-llama", "nomic-embed-text"])

    before = run_models(serve_env)
    refreshed = run_models(serve_env, "--refresh")

    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout) == {"default": None, "models": []}
    assert "no models listed: `streamhost models --refresh` asks each provider's endpoint what it serves; " \
           "any openai/NAME works without a listing" in unwrapped(before.stderr)
    assert refreshed.returncode == 0, refreshed.stderr
    listed = json.loads(refreshed.stdout)
    assert listed["default"] == "openai/local-llama"
    assert [m["id"] for m in listed["models"]] == ["openai/local-llama", "openai/nomic-embed-text"]
    assert "no models listed" not in refreshed.stderr


def test_models_says_when_the_endpoint_lists_nothing(server, serve_env):
    server.set_models([])

    refreshed = run_models(serve_env, "--refresh")

    assert refreshed.returncode == 0, refreshed.stderr
    assert "no models listed: the endpoints listed no models; any openai/NAME works" in unwrapped(refreshed.stderr)
