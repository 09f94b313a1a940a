"""Runs over MCP: every call is recorded as it streams, and a server killed mid-answer leaves the run marked
interrupted with the text it had journaled."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import time

import pytest

from streamhost.testing import Script, streamhost_executable

pytestmark = pytest.mark.anyio

DEADLINE_S = 60


def _send(proc: subprocess.Popen, message: dict) -> None:
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def _read_until(proc: subprocess.Popen, wanted, deadline: float) -> list[dict]:
    seen = []
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if not ready:
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            break
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            seen.append(json.loads(line))
            if wanted(seen):
                return seen
    raise AssertionError(f"the server did not send what was expected in time; got {seen[-3:]}")


def _cli(home, *args: str) -> dict | list:
    done = subprocess.run([streamhost_executable(), *args, "--json"], env=home.env, capture_output=True,
                          text=True, timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _journaled(home) -> str:
    """The text the store holds for its runs so far (read-only: the server is writing it)."""
    with contextlib.closing(sqlite3.connect(f"file:{home.store}?mode=ro", uri=True, timeout=5)) as db:
        return "".join(text for (text,) in db.execute("SELECT text FROM run_text ORDER BY run_id, pos"))


def test_a_killed_server_leaves_an_interrupted_run_with_its_text(llm, home):
    # A long answer: 400 tokens at 20/s is 20 s; the server is killed once some of it has streamed.
    llm.script("long", Script(tokens=[f"w{i} " for i in range(400)], rate=20))
    proc = subprocess.Popen([streamhost_executable(), "serve"], env=home.env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + DEADLINE_S
        _send(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        _read_until(proc, lambda seen: any(m.get("id") == 1 for m in seen), deadline)
        _send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _send(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "generate", "arguments": {"prompt": "talk", "model": "openai/long"},
            "_meta": {"progressToken": "p"}}})
        # Killed once the journal (it flushes every 0.5 s) holds text past w40, 2 s in; reading the notifications
        # meanwhile, so the server never blocks on a full pipe.
        _read_until(proc, lambda seen: any("w40 " in json.dumps(m) for m in seen), deadline)
        _read_until(proc, lambda seen: "w40 " in _journaled(home), deadline)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    runs = _cli(home, "runs", "list")["runs"]
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["status"] == "interrupted" and run["model"] == "openai/long"
    shown = _cli(home, "runs", "show", run["id"])
    text = shown["text"]
    assert text.startswith("w0 w1 w2 "), text[:80]
    assert "w40 " in text, "the text up to the last flush before the kill is kept"
    assert "w399" not in text
    words = text.split()
    assert words == [f"w{i}" for i in range(len(words))], "no text lost, repeated or out of order"


async def test_each_call_is_a_run_with_usage_and_text(llm, home, mcp_serve):
    llm.script("m", Script(tokens=["alpha ", "beta"], usage=(11, 2)))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "p", "model": "openai/m"})
    run_id = result.meta["streamhost/run"]
    shown = _cli(home, "runs", "show", run_id)
    assert shown["status"] == "completed" and shown["model"] == "openai/m"
    assert shown["input_tokens"] == 11 and shown["output_tokens"] == 2 and not shown["usage_estimated"]
    assert shown["text"] == "alpha beta"
    assert oct(home.store.stat().st_mode & 0o777) == "0o600"


async def test_a_run_cut_short_keeps_an_estimate_of_what_it_cost(llm, home, mcp_serve):
    # The upstream fails after 3 tokens: it charged for the prompt and those tokens, and reported no usage.
    home.write_config('[models."openai/cut"]\nprice_in = 1000000\nprice_out = 2000000\n')  # USD 1 / 2 per token
    llm.script("cut", Script(tokens=["abcd", "efgh", "ijkl", "never"], error_after=3))
    async with mcp_serve(home.env) as served:
        result = await served.session.call_tool("generate", {"prompt": "12345678", "model": "openai/cut"})
    assert result.is_error
    shown = _cli(home, "runs", "show", result.meta["streamhost/run"])
    assert shown["status"] == "failed" and shown["text"] == "abcdefghijkl"
    # Estimated at 4 characters a token: the 8-character prompt is 2, the 12 characters streamed are 3.
    assert shown["usage_estimated"] and (shown["input_tokens"], shown["output_tokens"]) == (2, 3)
    assert shown["cost_usd"] == pytest.approx(2 * 1 + 3 * 2)
