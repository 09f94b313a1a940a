"""The host stays up and the wire stays clean whatever plugins do; start-up imports no SDK."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from streamhost.testing import Script

pytestmark = pytest.mark.anyio
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))


def with_plugins(env: dict[str, str], site: Path) -> dict[str, str]:
    return {**env, "PYTHONPATH": str(site)}


async def test_broken_plugins_leave_the_host_serving(llm, home, mcp_serve, test_plugins):
    llm.script("real", Script(tokens=["the ", "real ", "openai"]))
    async with mcp_serve(with_plugins(home.env, test_plugins)) as served:
        tools = await served.session.list_tools()
        real = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/real"})
        noisy = await served.session.call_tool("generate", {"prompt": "three little words", "model": "noisy/echo"})
        half = await served.session.call_tool("generate", {"prompt": "x", "model": "half/x"})
        stderr = served.stderr_text()
    assert {t.name for t in tools.tools} >= {"generate", "list_models"}
    assert real.content[0].text == "the real openai", "the colliding plugin must not take over openai/"
    assert noisy.content[0].text == "three little words "
    assert half.is_error and "unknown provider prefix 'half'" in half.content[0].text, (
        "a plugin that failed during registration registers nothing")
    assert "streamhost-test-broken-import failed to load" in stderr
    assert "broken at import on purpose" in stderr
    assert "streamhost-test-broken-register failed to load" in stderr
    assert "provider 'openai' is registered by streamhost-openai and" in stderr


def _rpc(proc: subprocess.Popen, message: dict) -> None:
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def _read_until(proc: subprocess.Popen, request_id: int, lines: list[bytes]) -> dict:
    while True:
        line = proc.stdout.readline()
        assert line, "the server closed stdout before answering"
        lines.append(line)
        message = json.loads(line)
        if message.get("id") == request_id:
            return message


def test_nothing_but_protocol_reaches_stdout(home, test_plugins):
    """A plugin printing at import, at registration and while streaming (print, os.write, a child)."""
    proc = subprocess.Popen([STREAMHOST, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=with_plugins(home.env, test_plugins))
    lines: list[bytes] = []
    try:
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
        _read_until(proc, 1, lines)
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        _read_until(proc, 2, lines)
        _rpc(proc, {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "generate", "arguments": {"prompt": "hello wire", "model": "noisy/echo"},
            "_meta": {"progressToken": "t1"}}})
        answer = _read_until(proc, 3, lines)
        rest, stderr = proc.communicate(timeout=20)  # closes stdin: the server must exit cleanly
    finally:
        proc.kill()
    lines.extend(rest.splitlines())
    assert answer["result"]["content"][0]["text"] == "hello wire "
    for line in lines:
        if line.strip():
            assert json.loads(line)["jsonrpc"] == "2.0", f"stray output on the wire: {line!r}"
    assert any(b'"notifications/progress"' in line for line in lines)
    for stray in (b"print at import", b"print at registration", b"print while streaming",
                  b"sys.stdout.write", b"os.write to fd 1", b"a child process"):
        assert stray in stderr, f"{stray!r} should have been diverted to stderr"


def _imported(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` lines. importlib.import_module's own target is not logged
    (only the imports it triggers), so look for a package's submodules."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


async def test_start_up_imports_no_provider_sdk(llm, home, mcp_serve):
    home.write_config("[plugins]\nwarmup = false\n")
    env = {**home.env, "PYTHONPROFILEIMPORTTIME": "1"}
    async with mcp_serve(env) as served:
        await served.session.list_tools()
        models = await served.session.call_tool("list_models", {})
        await anyio.sleep(2.5)  # past the warm-up fallback, which is off here
        imported = _imported(served.stderr_text())
    assert not models.is_error
    assert "mcp" in imported and "streamhost_openai.provider" in imported, "the import log must be readable"
    assert not _sdk(served.stderr_text(), ("openai", "litellm", "trafilatura", "sqlalchemy", "aiosqlite", "alembic"))


def _sdk(stderr: str, packages: tuple[str, ...] = ("openai",)) -> set[str]:
    return {name for name in _imported(stderr) if name.split(".")[0] in packages}


async def test_the_sdk_is_warmed_in_the_background_after_the_handshake(llm, home, mcp_serve):
    # When it starts and in which order: tests/test_wire.py; that it does not slow the handshake: bench/startup.py.
    env = {**home.env, "PYTHONPROFILEIMPORTTIME": "1"}
    async with mcp_serve(env) as served:
        listed = time.monotonic()
        await served.session.list_tools()
        while "openai._client" not in _sdk(served.stderr_text()) and time.monotonic() - listed < 30:
            await anyio.sleep(0.05)
        assert "openai._client" in _sdk(served.stderr_text())


def test_strict_mode_stops_on_a_broken_plugin(home, test_plugins):
    env = {**with_plugins(home.env, test_plugins), "STREAMHOST_STRICT_PLUGINS": "1"}
    done = subprocess.run([STREAMHOST, "serve"], stdin=subprocess.DEVNULL, capture_output=True, env=env,
                          timeout=30, text=True)
    assert done.returncode != 0
    assert "streamhost-test-broken-import failed to load" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("variable", ["STREAMHOST_DISABLE_PLUGINS", "STREAMHOST_LOAD_PLUGINS"])
async def test_the_bundled_plugin_can_be_turned_off(home, mcp_serve, variable):
    value = "streamhost-openai,streamhost-litellm" if variable == "STREAMHOST_DISABLE_PLUGINS" else ""
    async with mcp_serve({**home.env, variable: value}) as served:
        result = await served.session.call_tool("generate", {"prompt": "x", "model": "openai/gpt-4.1-mini"})
    assert result.is_error and "no provider plugin is loaded" in result.content[0].text


def test_the_module_is_runnable_and_serve_exits_when_stdin_closes(home):
    started = time.monotonic()
    done = subprocess.run([STREAMHOST, "serve"], stdin=subprocess.DEVNULL, capture_output=True, env=home.env,
                          timeout=30)
    assert done.returncode == 0 and done.stdout == b""
    assert time.monotonic() - started < 20
    assert os.path.exists(STREAMHOST)
