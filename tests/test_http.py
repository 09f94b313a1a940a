"""``streamhost serve --http`` end to end: a real ``streamhost`` process, the MCP SDK's Streamable HTTP client
(both protocol eras), the real openai plugin and a real loopback upstream."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import psutil
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from streamhost.testing import Home, LLMTestServer, Script, streamhost_executable
from streamhost.testing.toolcalls import ProgressLog, carries_text

pytestmark = pytest.mark.anyio
WORDS = [f"word{i} " for i in range(60)]
OPEN = "[http]\nloopback_without_token = true\n"
"""Tests other than auth's call from loopback without a token."""
ERAS = {"handshake": "2025-11-25", "modern": "2026-07-28"}


@dataclass
class HttpServed:
    """A running ``streamhost serve --http`` process."""

    process: subprocess.Popen[bytes]
    url: str
    stderr_path: str

    def log(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as file:
            return file.read()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve_http(home: Home, *args: str) -> AsyncIterator[HttpServed]:
    """Start ``streamhost serve --http`` on a free port; ready once ``/healthz`` answers (generous deadline)."""
    port = free_port()
    log_path = home.root / f"serve-{port}.stderr"
    errors = open(log_path, "wb")
    process = subprocess.Popen([streamhost_executable(), "serve", "--http", "--port", str(port), *args],
                               env=home.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
    served = HttpServed(process, f"http://127.0.0.1:{port}", str(log_path))
    try:
        async with httpx2.AsyncClient(timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                assert process.poll() is None, f"the server exited: {served.log()}"
                try:
                    if (await client.get(served.url + "/healthz")).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                assert time.monotonic() < deadline, f"the server did not start: {served.log()}"
                await asyncio.sleep(0.1)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        errors.close()


@asynccontextmanager
async def mcp_session(url: str, era: str, log: ProgressLog) -> AsyncIterator[ClientSession]:
    async with streamable_http_client(url + "/mcp") as (read, write), \
            ClientSession(read, write, message_handler=log) as session:
        await (session.discover() if era == "modern" else session.initialize())
        yield session


def tools_call(name: str, arguments: dict[str, Any], request_id: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": name, "arguments": arguments, "_meta": {"progressToken": "p"}}}


def era_headers(era: str, body: dict[str, Any]) -> dict[str, str]:
    """The headers of a raw request of the era: a 2026-07-28 request repeats its method and name in headers."""
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": ERAS[era]}
    if era == "modern":
        headers.update({"mcp-method": body["method"], "mcp-name": body["params"]["name"]})
    return headers


def era_body(era: str, body: dict[str, Any]) -> dict[str, Any]:
    """A raw request of the era: a 2026-07-28 request names its version and client in ``_meta``."""
    if era == "modern":
        body["params"]["_meta"].update({"io.modelcontextprotocol/protocolVersion": ERAS[era],
                                        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
                                        "io.modelcontextprotocol/clientCapabilities": {}})
    return body


@pytest.mark.parametrize("era", ["handshake", "modern"])
async def test_text_streams_while_the_upstream_is_still_sending(llm: LLMTestServer, home: Home, era: str) -> None:
    # A 3-second upstream: text reaching the client before its last token holds with a wide margin.
    llm.script("warm", Script(tokens=["ok"]))
    llm.script("slow", Script(tokens=WORDS, rate=20))
    home.write_config(OPEN)
    log = ProgressLog()
    async with serve_http(home) as served, mcp_session(served.url, era, log) as session:
        await session.call_tool("generate", {"prompt": "x", "model": "openai/warm"})
        result = await session.call_tool("generate", {"prompt": "count", "model": "openai/slow"},
                                         meta={"progress_token": "slow"})
    record = next(r for r in llm.requests if r.model == "slow")
    texts = [p for p in log.received if carries_text(p) and p.progress_token == "slow"]
    first = log.arrivals[log.received.index(texts[0])]
    assert not result.is_error
    assert result.content[0].text == "".join(WORDS)
    assert first < record.ended, "the first text must reach the client before the upstream's last token"
    # At least one notification per 0.5 s (the widest a window grows when the loop lags, as a loaded machine's does).
    assert len(texts) >= 5, "text must arrive in many notifications, not at the end"
    assert "".join(p.meta["streamhost/delta"] for p in texts) == "".join(WORDS)


@pytest.mark.parametrize("era", ["handshake", "modern"])
async def test_closing_the_response_cancels_the_call_and_its_upstream(llm: LLMTestServer, home: Home,
                                                                      era: str) -> None:
    llm.script("slow", Script(tokens=WORDS * 5, rate=20))  # 15 s unless cancelled
    home.write_config(OPEN)
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        body = era_body(era, tools_call("generate", {"prompt": "x", "model": "openai/slow"}))
        async with client.stream("POST", served.url + "/mcp", json=body, headers=era_headers(era, body)) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data:") and "streamhost/delta" in line:
                    break  # text is streaming: close the response now
        closed = time.monotonic()
        assert await llm.await_for(lambda rs: any(r.model == "slow" and r.disconnected for r in rs), timeout=30)
    record = next(r for r in llm.requests if r.model == "slow")
    assert record.disconnected_at is not None and record.disconnected_at >= closed - 1
    assert record.tokens_sent < len(WORDS) * 5, "the upstream request must end before its stream does"


async def test_stopping_the_server_cancels_running_calls_and_closes_their_upstreams(llm: LLMTestServer,
                                                                                    home: Home) -> None:
    llm.script("slow", Script(tokens=WORDS * 10, rate=20))  # 30 s unless cancelled
    home.write_config(OPEN)
    lines: list[str] = []

    async def call(client: httpx2.AsyncClient, url: str) -> None:
        body = era_body("handshake", tools_call("generate", {"prompt": "x", "model": "openai/slow"}))
        async with client.stream("POST", url + "/mcp", json=body, headers=era_headers("handshake", body)) as response:
            async for line in response.aiter_lines():
                lines.append(line)

    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        running = asyncio.ensure_future(call(client, served.url))
        assert await llm.await_for(lambda rs: any(r.model == "slow" and r.tokens_sent for r in rs), timeout=30)
        stopped = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(served.process.wait, 30)
        await asyncio.wait_for(asyncio.gather(running, return_exceptions=True), 30)
    record = next(r for r in llm.requests if r.model == "slow")
    assert record.disconnected and record.tokens_sent < len(WORDS) * 10
    assert time.monotonic() - stopped < 25, "a stop must not wait for the running calls to finish"
    assert "Application shutdown complete" in served.log()
    # The cancelled call's error result is written as the server goes down; on a loaded machine the response may
    # be cut before it is flushed (seen once: uvicorn's "ASGI callable returned without completing response").
    # What must hold either way is above; an answer that did arrive must say the call was cancelled.
    answers = [json.loads(line[5:]) for line in lines if line.startswith("data:") and "result" in line]
    assert all(a["result"]["isError"] and "cancelled" in a["result"]["content"][0]["text"] for a in answers), answers


async def test_healthz_and_readyz_answer_json(llm: LLMTestServer, home: Home) -> None:
    home.write_config(OPEN)
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        health = await client.get(served.url + "/healthz")
        # The first probe opens the store (and migrates it): a slow machine may say "not yet" at first.
        deadline = time.monotonic() + 60
        while (ready := await client.get(served.url + "/readyz")).status_code != 200:
            assert ready.status_code == 503 and ready.json()["reason"], ready.text
            assert time.monotonic() < deadline, ready.text
            await asyncio.sleep(0.5)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.json() == {"status": "ready"}


async def test_readyz_says_why_a_server_with_a_broken_config_is_not_ready(llm: LLMTestServer, home: Home) -> None:
    home.write_config("[limits]\ndeadline_s = -1\n")
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        health = await client.get(served.url + "/healthz")
        ready = await client.get(served.url + "/readyz")
    assert health.status_code == 200
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable" and "deadline_s" in ready.json()["reason"]


async def test_readyz_says_when_the_store_cannot_be_opened(llm: LLMTestServer, home: Home) -> None:
    blocker = home.root / "not-a-dir"
    blocker.write_text("x")
    home.write_config(OPEN + f'[store]\npath = "{blocker}/streamhost.db"\n')
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        ready = await client.get(served.url + "/readyz", timeout=30)
    assert ready.status_code == 503 and "store" in ready.json()["reason"]


async def test_a_foreign_host_or_origin_is_refused_dns_rebinding(llm: LLMTestServer, home: Home) -> None:
    llm.script("m", Script(tokens=["hi"]))
    home.write_config(OPEN + 'allowed_hosts = ["mcp.example.test"]\n')
    body = era_body("handshake", tools_call("generate", {"prompt": "x", "model": "openai/m"}))
    headers = era_headers("handshake", body)
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        foreign = await client.post(served.url + "/mcp", json=body, headers={**headers, "host": "evil.example"})
        origin = await client.post(served.url + "/mcp", json=body,
                                   headers={**headers, "origin": "http://evil.example"})
        listed = await client.post(served.url + "/mcp", json=body, headers={**headers, "host": "mcp.example.test"})
        local = await client.post(served.url + "/mcp", json=body,
                                  headers={**headers, "origin": served.url})
    assert foreign.status_code == 421
    assert origin.status_code == 403
    assert listed.status_code == 200 and "hi" in listed.text
    assert local.status_code == 200 and "hi" in local.text
    assert len([r for r in llm.requests if r.model == "m"]) == 2, "a refused request must not reach the upstream"


async def test_a_caller_without_a_token_is_refused(llm: LLMTestServer, home: Home) -> None:
    body = era_body("handshake", tools_call("list_models", {}))
    async with serve_http(home) as served, httpx2.AsyncClient(timeout=60) as client:
        refused = await client.post(served.url + "/mcp", json=body, headers=era_headers("handshake", body))
        health = await client.get(served.url + "/healthz")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert health.status_code == 200, "the probes need no token"


async def test_local_files_are_off_over_http_unless_http_roots_are_set(llm: LLMTestServer, home: Home) -> None:
    llm.script("m", Script(tokens=["seen"]))
    shared = home.root / "shared"
    shared.mkdir()
    (shared / "notes.txt").write_text("the shared notes")
    (home.root / "private.txt").write_text("the server user's own file")
    log = ProgressLog()
    home.write_config(OPEN + f'[context]\nroots = ["{home.root}"]\n')
    async with serve_http(home) as served, mcp_session(served.url, "handshake", log) as session:
        off = await session.call_tool("generate", {"prompt": "x", "model": "openai/m",
                                                   "files": [str(home.root / "private.txt")]})
    home.write_config(OPEN + f'roots = ["{shared}"]\n[context]\nroots = ["{home.root}"]\n')
    async with serve_http(home) as served, mcp_session(served.url, "handshake", log) as session:
        allowed = await session.call_tool("generate", {"prompt": "x", "model": "openai/m", "files": ["notes.txt"]})
        outside = await session.call_tool("generate", {"prompt": "x", "model": "openai/m",
                                                       "files": [str(home.root / "private.txt")]})
    assert off.is_error and "[http] roots" in off.content[0].text
    assert not allowed.is_error
    assert outside.is_error, "over HTTP, [context] roots are not the caller's: only [http] roots are"
    sent = [json.dumps(r.body) for r in llm.requests if r.model == "m"]
    assert len(sent) == 1 and "the shared notes" in sent[0]


async def test_two_workers_serve_on_one_port(llm: LLMTestServer, home: Home) -> None:
    llm.script("m", *[Script(tokens=[f"answer{i}"]) for i in range(8)])
    home.write_config(OPEN)
    log = ProgressLog()
    async with serve_http(home, "--workers", "2") as served:
        deadline = time.monotonic() + 60
        while served.log().count("Application startup complete") < 2:
            assert time.monotonic() < deadline, served.log()
            await asyncio.sleep(0.2)

        async def one() -> str:
            async with mcp_session(served.url, "modern", log) as session:
                result = await session.call_tool("generate", {"prompt": "x", "model": "openai/m"})
                assert not result.is_error
                return result.content[0].text

        answers = await asyncio.gather(*(one() for _ in range(8)))
        # Each worker is a fresh interpreter, which imports uvloop only to run on it (the faster loop, everywhere).
        workers = [int(pid) for pid in re.findall(r"Started server process \[(\d+)\]", served.log())]
        on_uvloop = [pid for pid in workers if any("uvloop" in m.path for m in psutil.Process(pid).memory_maps())]
    assert sorted(answers) == sorted(f"answer{i}" for i in range(8))
    assert "(2 process(es), event loop: uvloop)" in served.log(), served.log()
    assert len(workers) == 2 and on_uvloop == workers, served.log()
    assert len(set(line for line in served.log().splitlines() if "Started server process" in line)) >= 2
