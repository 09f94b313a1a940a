"""A line-level client of ``streamhost serve`` over stdio, for the tests that must write raw JSON lines (what a
real MCP client cannot send) and see every line the server writes: ``Raw``, and ``raw_servers`` that starts
them for a test and kills them after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STREAMHOST = str(Path(sys.executable).with_name("streamhost"))
DEADLINE_S = 30.0
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}


class Raw:
    """``streamhost serve`` with a line-level client: every line read is kept, in order, with its arrival time."""

    def __init__(self, env: dict[str, str], era: str = "handshake") -> None:
        self.era = era
        self.stderr = tempfile.NamedTemporaryFile("w+b", suffix=".stderr", delete=False)
        self.proc = subprocess.Popen([STREAMHOST, "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, env=env)
        self.inbox: queue.Queue[tuple[float, dict[str, Any]] | None] = queue.Queue()
        self.seen: list[tuple[float, dict[str, Any]]] = []
        self.next_id = 100
        self.reading = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        # select with a timeout, not a blocking readline: a test must be able to stop reading and close the pipe.
        fd, pending = self.proc.stdout.fileno(), b""
        while self.reading:
            if not select.select([fd], [], [], 0.05)[0]:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                self.inbox.put((time.monotonic(), json.loads(line)))  # all JSON: nothing else may reach the wire
        self.inbox.put(None)

    def close_stdout(self) -> None:
        """Go away the way a client can: stop reading and close our end of the server's stdout."""
        self.reading = False
        self.reader.join()
        self.proc.stdout.close()

    def send(self, message: dict[str, Any] | bytes) -> None:
        line = message if isinstance(message, bytes) else json.dumps(message).encode()
        self.proc.stdin.write(line + b"\n")
        self.proc.stdin.flush()

    def wait_for(self, what: str, predicate: Any, since: int = 0) -> dict[str, Any]:
        """The first message from the ``since``-th line read on (already read or still to come) that matches."""
        for _, message in self.seen[since:]:
            if predicate(message):
                return message
        deadline = time.monotonic() + DEADLINE_S
        while True:
            try:
                item = self.inbox.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                stderr = self.stderr_text()[-2000:]
                raise AssertionError(f"no {what} within {DEADLINE_S} s; stderr:\n{stderr}") from None
            assert item is not None, f"the server closed stdout before {what}; stderr:\n{self.stderr_text()[-2000:]}"
            self.seen.append(item)
            if predicate(item[1]):
                return item[1]

    def answer(self, request_id: Any) -> dict[str, Any]:
        return self.wait_for(f"answer to {request_id!r}", lambda m: "method" not in m and m.get("id") == request_id)

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        params = dict(params or {})
        if self.era == "modern":
            params["_meta"] = {**MODERN_META, **params.get("_meta", {})}
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, **({"params": params} if params else {})})
        return self.answer(self.next_id)

    def open(self) -> Raw:
        if self.era == "modern":
            assert "result" in self.request("server/discover")
        else:
            assert "result" in self.request("initialize", {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}})
            self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    def still_serves(self) -> None:
        listed = self.request("tools/list")
        assert "generate" in {tool["name"] for tool in listed["result"]["tools"]}, listed

    def exited_within(self, seconds: float) -> int:
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"streamhost serve still running after {seconds} s") from None

    def stderr_text(self) -> str:
        return Path(self.stderr.name).read_text(encoding="utf-8", errors="replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.stderr.close()


@contextlib.contextmanager
def raw_servers(default_env: dict[str, str]) -> Iterator[Callable[..., Raw]]:
    """``start(era="handshake", env=None)`` opens a served ``Raw`` (in ``default_env`` unless given another); each
    one started is killed on the way out."""
    started: list[Raw] = []

    def start(era: str = "handshake", env: dict[str, str] | None = None) -> Raw:
        started.append(Raw(env or default_env, era).open())
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            server.close()
