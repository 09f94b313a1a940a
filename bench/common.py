"""Shared code for the streamhost benchmarks: isolated environments, an MCP client session on a spawned
server that timestamps every progress notification, the test LLM server, and median tables.

Every time is ``time.monotonic()`` (system-wide on Linux, so it compares with the test server's records).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import psutil

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
KEY = "sk-bench-0123456789abcdef"
DELTA = "streamhost/delta"


def parse_args(doc: str | None, runs: int, extra: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=runs, help=f"runs per side (default {runs})")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


class Home:
    """An isolated HOME/XDG tree with a config file; ``env()`` is the whole environment of a child."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="streamhost-bench-")
        self.root = Path(self._tmp.name)

    def env(self, config: str = "", base_url: str = "http://127.0.0.1:9/v1", name: str = "config") -> dict[str, str]:
        path = self.root / f"{name}.toml"
        path.write_text(config, encoding="utf-8")
        return {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_STATE_HOME": str(self.root / "state"),
            "XDG_CACHE_HOME": str(self.root / "cache"),
            "STREAMHOST_CONFIG": str(path),
            "STREAMHOST_LOG_LEVEL": "warning",
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": base_url,
        }

    def cleanup(self) -> None:
        self._tmp.cleanup()


@dataclass
class Client:
    """An initialized MCP client session on a spawned server, plus what arrived and when."""

    session: Any
    pid: int
    started: float  # before the spawn
    progress: list[tuple[float, Any]] = field(default_factory=list)  # (arrival, params)
    first_text: anyio.Event = field(default_factory=anyio.Event)

    def reset(self) -> None:
        self.progress.clear()
        self.first_text = anyio.Event()

    def texts(self) -> list[tuple[float, Any]]:
        return [(t, p) for t, p in self.progress if p.meta and DELTA in p.meta]

    async def call(self, name: str, arguments: dict[str, Any], timeout: float = 60) -> Any:
        """``tools/call`` with a progress token; notifications are read by the message handler."""
        with anyio.fail_after(timeout):
            return await self.session.call_tool(name, arguments, progress_callback=_no_progress)


async def _no_progress(progress: float, total: float | None, message: str | None) -> None:
    """Passing a callback makes the client send a progress token; arrivals are taken in the handler."""


@asynccontextmanager
async def spawn(command: list[str], env: dict[str, str]) -> AsyncIterator[Client]:
    """Spawn an MCP server on stdio and ``initialize``; ``Client.started`` is taken just before the spawn."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    holder: list[Client] = []

    async def on_message(message: Any) -> None:
        # Arrival time first, and nothing awaited: the order and the stamp are exact.
        if type(message).__name__ == "ProgressNotification" and holder:
            client = holder[0]
            client.progress.append((time.monotonic(), message.params))
            if message.params.meta and DELTA in message.params.meta:
                client.first_text.set()

    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    with tempfile.TemporaryFile("w+") as errlog:
        started = time.monotonic()
        try:
            async with stdio_client(params, errlog=errlog) as (read, write):
                pid = newest_child()
                async with ClientSession(read, write, message_handler=on_message) as session:
                    with anyio.fail_after(30):
                        await session.initialize()
                    holder.append(Client(session=session, pid=pid, started=started))
                    yield holder[0]
        except BaseException:
            errlog.seek(0)
            sys.stderr.write(errlog.read()[-4000:])
            raise


def newest_child() -> int:
    children = [c for c in psutil.Process().children() if c.status() != psutil.STATUS_ZOMBIE]
    return max(children, key=lambda c: c.create_time()).pid


def streamhost_cmd() -> list[str]:
    return [STREAMHOST, "serve"]


def llm_server() -> Any:
    """The test OpenAI-compatible server (loopback, background thread), requiring the bench key."""
    from streamhost.testing import LLMTestServer

    return LLMTestServer(require_key=KEY)


def sdk_client(base_url: str) -> Any:
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)


def words(n: int) -> list[str]:
    return [f"w{i} " for i in range(n)]


# ---------------------------------------------------------------------------------------------- stats


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0.99: the p99) of ``values`` by rank; NaN for none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def children_cpu() -> float:
    """User + system CPU seconds of this process's ended children (the client processes a benchmark waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spawn_script(script: str, *args: str) -> subprocess.Popen[str]:
    """``script`` run again in a process of its own (its client or prober role), stdout piped."""
    return subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE, text=True)


def collect(process: subprocess.Popen[str], timeout: float = 600) -> list[Any]:
    """The JSON lines a :func:`spawn_script` process printed; raises if it failed."""
    out, _ = process.communicate(timeout=timeout)
    if process.returncode:
        raise RuntimeError(f"a bench process failed ({process.returncode})")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def baseline_first(run: int) -> bool:
    """Interleaving: the baseline (SDK) goes first on odd runs, second on even runs."""
    return run % 2 == 1


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, {psutil.cpu_count()} cores, load {load}, "
            f"Python {sys.version.split()[0]}")
