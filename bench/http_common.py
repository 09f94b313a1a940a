"""What the HTTP benchmarks share: a spawned ``streamhost serve --http`` and MCP client sessions on it that
timestamp every progress notification (the same :class:`common.Client` the stdio benchmarks use)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import common

OPEN = "[http]\nloopback_without_token = true\n"
"""The benchmarks call from loopback without a token (token checks are cached: not what is measured)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serve_http(env: dict[str, str], *args: str) -> AsyncIterator[tuple[str, int]]:
    """``streamhost serve --http`` on a free port; yields its URL and pid once ``/healthz`` answers."""
    import httpx2

    port = free_port()
    with open(f"{env['HOME']}/serve-{port}.stderr", "w+b") as errors:
        process = subprocess.Popen([common.STREAMHOST, "serve", "--http", "--port", str(port), *args], env=env,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx2.AsyncClient() as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        if (await client.get(url + "/healthz")).status_code == 200:
                            break
                    except httpx2.TransportError:
                        pass
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("streamhost serve --http did not start")
                    await anyio.sleep(0.1)
            yield url, process.pid
        except BaseException:
            errors.seek(0)
            sys.stderr.write(errors.read().decode(errors="replace")[-4000:])
            raise
        finally:
            process.terminate()
            process.wait(30)


@asynccontextmanager
async def session(url: str, pid: int, era: str = "handshake", http_client: Any = None) -> AsyncIterator[common.Client]:
    """An MCP client session over Streamable HTTP whose progress notifications are timestamped on arrival."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    holder: list[common.Client] = []

    async def on_message(message: Any) -> None:
        if type(message).__name__ == "ProgressNotification" and holder:
            client = holder[0]
            client.progress.append((time.monotonic(), message.params))
            if message.params.meta and common.DELTA in message.params.meta:
                client.first_text.set()

    async with streamable_http_client(url + "/mcp", http_client=http_client) as (read, write), \
            ClientSession(read, write, message_handler=on_message) as mcp:
        with anyio.fail_after(30):
            await (mcp.discover() if era == "modern" else mcp.initialize())
        holder.append(common.Client(session=mcp, pid=pid, started=time.monotonic()))
        yield holder[0]
