"""A resumable upstream and its provider plugin, for the resume tests (standard library + httpx2 + streamhost only).

:class:`BackgroundUpstream` is a loopback HTTP server that runs jobs the way a background API does: a job goes on
whether or not anybody listens, each of its tokens has a sequence number, and its events can be streamed again
from after any number (``GET /jobs/ID/events?after=N``) or the job cancelled (``POST /jobs/ID/cancel``). It runs in
the test process, so it outlives a ``streamhost serve`` that the test kills.

:class:`BackgroundProvider` (``bg/MODEL``) is a real provider plugin on the public API: ``stream`` starts a job and
yields each token with a :class:`~streamhost.Checkpoint` after it; ``resume`` streams from after a checkpoint's
number; ``cancel_upstream`` cancels the job. ``plugin`` is an instance for an entry point; it finds the upstream in
``$BG_UPSTREAM_URL``. This file is copied into a site directory for the subprocess tests: it imports nothing else
from the tests.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from streamhost import (
    Checkpoint,
    Event,
    GenerationRequest,
    ModelInfo,
    Provider,
    StreamError,
    TextDelta,
    Usage,
    hookimpl,
)

URL_ENV = "BG_UPSTREAM_URL"


@dataclass
class Job:
    """One background job: its tokens come out at ``rate`` per second from ``started``, wanted or not."""

    id: str
    prompt: str
    tokens: list[str]
    rate: float
    started: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def due(self, seq: int) -> float:
        """When token ``seq`` (1-based) exists."""
        return self.started + seq / self.rate


class BackgroundUpstream:
    """The upstream: ``with BackgroundUpstream(tokens, rate) as upstream:`` serves on ``upstream.url``."""

    def __init__(self, tokens: list[str], rate: float = 10.0) -> None:
        self.tokens = tokens
        self.rate = rate
        self.jobs: dict[str, Job] = {}
        self.reads: list[tuple[str, int]] = []
        """Every events request: (job id, after)."""
        self.cancels: list[str] = []
        self.held_after: int | None = None
        """Set by :meth:`hold`: no job's token after this one comes out until :meth:`release`."""
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def text(self) -> str:
        """The whole answer every job gives."""
        return "".join(self.tokens)

    def __enter__(self) -> BackgroundUpstream:
        threading.Thread(target=self._server.serve_forever, name="bg-upstream", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for job in self.jobs.values():
            job.cancelled = True  # ends the streams still open
        self._server.shutdown()
        self._server.server_close()

    def hold(self, after: int) -> None:
        """Hold every job's tokens after the ``after``-th until :meth:`release`: a run that must not end before
        the test has stopped its host, however slow the machine."""
        self.held_after = after

    def release(self) -> None:
        """Let the held tokens out (those already due come at once)."""
        self.held_after = None

    def create(self, prompt: str) -> Job:
        job = Job(f"job{next(self._ids)}", prompt, list(self.tokens), self.rate)
        self.jobs[job.id] = job
        return job


def _handler(upstream: BackgroundUpstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection closes: no framing to write

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            parts = urlparse(self.path).path.strip("/").split("/")
            if parts == ["jobs"]:
                self._json({"id": upstream.create(str(body.get("prompt", ""))).id})
            elif len(parts) == 3 and parts[0] == "jobs" and parts[2] == "cancel" and parts[1] in upstream.jobs:
                upstream.jobs[parts[1]].cancelled = True
                upstream.cancels.append(parts[1])
                self._json({"id": parts[1], "status": "cancelled"})
            else:
                self.send_error(404)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            parts = url.path.strip("/").split("/")
            if len(parts) != 3 or parts[0] != "jobs" or parts[2] != "events" or parts[1] not in upstream.jobs:
                self.send_error(404)
                return
            job = upstream.jobs[parts[1]]
            after = int(parse_qs(url.query).get("after", ["0"])[0])
            upstream.reads.append((job.id, after))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            try:
                for seq in range(after + 1, len(job.tokens) + 1):
                    while (held := upstream.held_after) is not None and seq > held and not job.cancelled:
                        time.sleep(0.02)
                    while time.monotonic() < job.due(seq) and not job.cancelled:
                        time.sleep(min(0.02, max(job.due(seq) - time.monotonic(), 0)))
                    if job.cancelled:
                        self.wfile.write(b"cancelled\n")
                        return
                    self.wfile.write(f"{seq}\t{json.dumps(job.tokens[seq - 1])}\n".encode())
                    self.wfile.flush()
                self.wfile.write(f"done\t{len(job.tokens)}\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # the reader went away (a killed host): the job goes on without it

        def _json(self, value: Any) -> None:
            data = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class BackgroundProvider(Provider):
    """``bg/MODEL``: background jobs on a :class:`BackgroundUpstream`, resumable from any token."""

    name = "bg"
    key_env_var = None
    supports_resume = True

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        super().__init__()

    @hookimpl
    def register_providers(self, register: Any) -> None:
        """Register this provider (it is its own plugin)."""
        register(self)

    def models(self) -> list[ModelInfo]:
        return [ModelInfo(name="deep")]

    def _base(self) -> str:
        return (self.url or os.environ[URL_ENV]).rstrip("/")

    async def stream(self, request: GenerationRequest) -> AsyncIterator[Event]:
        import httpx2

        async with httpx2.AsyncClient(timeout=30) as client:
            started = await client.post(f"{self._base()}/jobs", json={"prompt": request.prompt})
            job = started.json()["id"]
        async for event in self._events(job, 0):
            yield event

    async def resume(self, model: str, checkpoint: str) -> AsyncIterator[Event]:
        job, _, seq = checkpoint.rpartition(":")
        async for event in self._events(job, int(seq)):
            yield event

    async def cancel_upstream(self, model: str, checkpoint: str) -> None:
        import httpx2

        job = checkpoint.rpartition(":")[0]
        async with httpx2.AsyncClient(timeout=30) as client:
            await client.post(f"{self._base()}/jobs/{job}/cancel", json={})

    async def _events(self, job: str, after: int) -> AsyncIterator[Event]:
        import httpx2

        async with httpx2.AsyncClient(timeout=30) as client, \
                client.stream("GET", f"{self._base()}/jobs/{job}/events", params={"after": after}) as response:
            async for line in response.aiter_lines():
                head, _, rest = line.partition("\t")
                if head == "done":
                    yield Usage(input_tokens=1, output_tokens=int(rest))
                elif head == "cancelled":
                    raise StreamError(f"bg: job {job} was cancelled")
                elif head.isdigit():
                    yield TextDelta(json.loads(rest))
                    yield Checkpoint(f"{job}:{head}")


plugin = BackgroundProvider()
"""For an entry point (``bg = MODULE:plugin``): the upstream comes from ``$BG_UPSTREAM_URL``."""
