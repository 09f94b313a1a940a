"""``streamhost serve`` with the litellm plugin installed: a real MCP client over stdio, real litellm, real HTTP."""

from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata

import anyio
import pytest

from streamhost.testing import Script, cancel_call, expect_disconnect

pytestmark = pytest.mark.anyio
WORDS = [f"word{i} " for i in range(60)]


def imported(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` lines (an import_module target itself is not logged: look for a
    package's submodules)."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and line.count("|") == 2}


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def litellm_modules(stderr: str) -> set[str]:
    return {name for name in imported(stderr) if name.split(".")[0] == "litellm"}


def _openai_imported(stderr: str) -> bool:
    return "openai" in {name.split(".")[0] for name in imported(stderr)}


async def test_text_streams_through_litellm_as_it_is_generated(server, home, mcp_serve, want_progress):
    # A 3-second upstream, against ~20 ms from an upstream token to the client once litellm is warm: "text
    # arrived before the upstream's last token" holds with a wide margin on a slow machine. The first call of
    # a process spends 0.6-1.6 s in litellm's lazy imports after the request is sent: a warm-up call pays it.
    server.script("warm", Script(tokens=["ok"]))
    server.script("slow", Script(tokens=WORDS, rate=20, usage=(3, 30)))
    async with mcp_serve(home.env) as served:
        await served.session.call_tool("generate", {"prompt": "x", "model": "litellm/openai/warm"})
        result = await served.session.call_tool("generate", {"prompt": "count", "model": "litellm/openai/slow"},
                                                progress_callback=want_progress)
    record = next(r for r in server.requests if r.model == "slow")
    assert not result.is_error, result.content[0].text
    assert result.content[0].text == "".join(WORDS) == "".join(served.texts())
    assert len(served.texts()) >= 10, "text must arrive in many notifications, not at the end"
    assert result.meta["streamhost/model"] == "litellm/openai/slow"
    assert result.meta["streamhost/usage"] == {"input_tokens": 3, "output_tokens": 30, "total_tokens": 33}
    assert served.first_text_at() < record.ended, "the first text must arrive before the upstream's last token"


async def test_the_host_retries_429_and_500_before_the_first_token(server, home, mcp_serve):
    server.script("flaky", Script(status=429, retry_after=0.2), Script(status=500), Script(tokens=["fine"]))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "litellm/openai/flaky"})
    assert result.content[0].text == "fine"
    stamps = [r.started for r in server.requests if r.model == "flaky"]
    assert len(stamps) == 3 and stamps[1] - stamps[0] >= 0.19, "one request per host attempt, no litellm retries"


async def test_cancelling_a_call_disconnects_the_upstream(server, home, mcp_serve):
    server.script("stalls", Script(tokens=["one ", "two ", "never"], stall_after=2))
    server.script("after", Script(tokens=["still ", "here"]))
    async with mcp_serve(home.env) as served:
        # notifications/cancelled once the first text has arrived, as a client whose user gives up
        cancelled = await cancel_call(served, "generate", {"prompt": "x", "model": "litellm/openai/stalls"})
        await expect_disconnect(server, "stalls", since=cancelled.at)  # ≈ms when idle; the stall is endless
        after = await served.call("generate", {"prompt": "x", "model": "litellm/openai/after"})
    assert cancelled.text.startswith("one ")
    assert after.text == "still here"


async def test_a_mid_stream_error_keeps_the_partial_text(server, home, mcp_serve, want_progress):
    server.script("breaks", Script(tokens=["partial ", "answer ", "lost"], error_after=2,
                                   error_message="the upstream fell over"))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "litellm/openai/breaks"},
                                                progress_callback=want_progress)
    assert result.is_error
    assert "the upstream fell over" in result.content[0].text
    assert result.meta["streamhost/partial_text"] == "partial answer "
    assert result.meta["streamhost/error_type"] == "StreamError"


def test_nothing_litellm_prints_reaches_the_wire(server, home, litellm_config, raw_serve):
    """debug = true lets litellm print its help banner (print() to stdout) on every failure, and verbose
    lines while streaming: all of it must land on stderr, and stdout must stay pure JSON-RPC."""
    home.write_config(litellm_config("debug = true\n") + "[limits]\nmax_retries = 0\n")
    server.script("fails", Script(status=500, error_message="scripted failure"))
    server.script("works", Script(tokens=["fine ", "answer"]))
    raw = raw_serve(home.env)
    raw.request(1, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                                  "clientInfo": {"name": "raw", "version": "0"}})
    raw.request(None, "notifications/initialized")
    raw.request(2, "tools/list")
    failed = raw.request(3, "tools/call", {"name": "generate", "arguments": {
        "prompt": "x", "model": "litellm/openai/fails"}, "_meta": {"progressToken": "a"}})
    worked = raw.request(4, "tools/call", {"name": "generate", "arguments": {
        "prompt": "x", "model": "litellm/openai/works"}, "_meta": {"progressToken": "b"}})
    raw.finish()
    assert failed["result"]["isError"] and "scripted failure" in failed["result"]["content"][0]["text"]
    assert worked["result"]["content"][0]["text"] == "fine answer"
    for line in raw.lines:
        assert json.loads(line)["jsonrpc"] == "2.0", f"stray output on the wire: {line!r}"
    assert b"Give Feedback / Get Help" in raw.stderr, "litellm's banner was printed, and diverted to stderr"


async def test_start_up_and_listing_do_not_import_litellm(home, mcp_serve, litellm_config, streamhost_command):
    home.write_config(litellm_config('models = ["openai/listed"]\n', key=False) + "[plugins]\nwarmup = false\n")
    env = {**home.env, "PYTHONPROFILEIMPORTTIME": "1", "ANTHROPIC_API_KEY": "sk-ant-set"}
    async with mcp_serve(env) as served:
        await served.session.list_tools()
        listing = await served.session.call_tool("list_models", {})
        await anyio.sleep(2.5)  # past the warm-up fallback, which is off here
        stderr = served.stderr_text()
    assert "streamhost_litellm.provider" in imported(stderr), "the import log must be readable"
    assert litellm_modules(stderr) == set()
    entry = next(m for m in listing.meta["streamhost/models"] if m["id"] == "litellm/openai/listed")
    assert (entry["key_variable"], entry["key_configured"]) == ("OPENAI_API_KEY", False)

    home.write_config(litellm_config('models = ["anthropic/claude-sonnet-4-5", "ollama/llama3.2"]\n', key=False))
    done = subprocess.run([streamhost_command, "models", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "streamhost_litellm.provider" in imported(done.stderr) and litellm_modules(done.stderr) == set()
    models = {m["id"]: m for m in json.loads(done.stdout)["models"]}
    assert models["litellm/anthropic/claude-sonnet-4-5"]["key_variable"] == "ANTHROPIC_API_KEY"
    assert models["litellm/anthropic/claude-sonnet-4-5"]["key_configured"] is True
    assert models["litellm/ollama/llama3.2"]["key_variable"] is None


async def test_litellm_is_warmed_in_the_background_after_tools_list(server, home, mcp_serve):
    env = {**home.env, "PYTHONPROFILEIMPORTTIME": "1"}
    server.script("m", Script(tokens=["warm"]))
    async with mcp_serve(env) as served:
        listed = time.monotonic()
        await served.session.list_tools()
        assert "litellm.main" not in litellm_modules(served.stderr_text()), "tools/list must not wait for it"
        while "litellm.main" not in litellm_modules(served.stderr_text()) and time.monotonic() - listed < 30:
            await anyio.sleep(0.05)
        assert "litellm.main" in litellm_modules(served.stderr_text())
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "litellm/openai/m"})
    assert result.content[0].text == "warm"


@pytest.mark.parametrize("set_up", [False, True], ids=["no providers.litellm table", "warmup = false"])
async def test_litellm_is_not_warmed_unless_it_is_set_up(server, home, mcp_serve, litellm_config, set_up):
    # Imported, litellm holds ~130 MiB: a user who merely has the plugin installed must not pay for it.
    home.write_config(litellm_config("warmup = false\n") if set_up else "")
    server.script("m", Script(tokens=["cold"]))
    async with mcp_serve({**home.env, "PYTHONPROFILEIMPORTTIME": "1"}) as served:
        await served.session.list_tools()
        await anyio.sleep(3)  # the warm-up starts 50 ms after tools/list; litellm's submodules show within 1 s
        if _installed("streamhost-openai"):  # its warm-up imports the openai SDK: the sign that the warm-up ran
            listed = time.monotonic()  # a loaded machine may take longer than those 3 s
            while not _openai_imported(served.stderr_text()) and time.monotonic() - listed < 30:
                await anyio.sleep(0.05)
            assert _openai_imported(served.stderr_text()), "warm-up ran"
        # (On its own, this suite has test_litellm_is_warmed_in_the_background_after_tools_list to show that the
        # warm-up runs within that wait.)
        assert not litellm_modules(served.stderr_text())
        if set_up:  # the first call imports it and still works
            result = await served.session.call_tool("generate", {"prompt": "x", "model": "litellm/openai/m"})
            assert result.content[0].text == "cold"
