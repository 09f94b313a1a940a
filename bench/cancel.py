"""Cancellation: client cancel -> the upstream HTTP request closed.

One warmed ``streamhost serve``. Each run calls ``generate`` on a stream that stalls after 5 tokens,
waits for the first progress notification with text, then cancels the anyio scope around
``call_tool`` (the client sends ``notifications/cancelled``) and measures from just before the cancel
to the test server's ``disconnected_at`` for that request (its socket saw EOF). After the runs, one
more call checks that the host still answers. Goal: median and max <= 50 ms.

``--load N --rate R`` first starts N other ``generate`` calls streaming R tokens/s each (restarted as
they end) on the same server, so the cancel is handled by a busy event loop; the measured call is then
cancelled once the test server has sent its 5 tokens (the client's first-text signal is shared with
the load). The test server and the client run in this process, so their own lag is in the figures.

So each run is also timed inside the server, free of the bench process's lag: from its reader thread
reading the cancel to the upstream socket shut down (by that thread) or closed (by the event loop). The
server runs as ``python -c PROBE serve``: the probes are patches in the child process only.

``--compare`` measures the server as it is ("thread": a cancel shuts the upstream socket down from the
thread that read it, ``streamhost.upstream_socket``) against the same server with that switched off
("loop": the socket closes when the event loop gets to cancel the call), alternating between them
``--rounds`` times, ``--runs`` runs per side in all. The host has no setting for it: the bench's patch does it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anyio
import common

from streamhost.testing import Script

MODEL = "bench-stall"
LOAD_MODEL = "bench-load"
PROBE = """
import os, sys, time, asyncio.selector_events as selector
import streamhost.upstreams as upstreams
from streamhost.mcp.calls import Calls

out = open(os.environ["BENCH_CANCEL_PROBE"], "a", buffering=1)
watched = set()
add, shutdown, cancel_read = upstreams.UpstreamSockets.add, upstreams.UpstreamSockets.shutdown, Calls.cancel_read
lost = selector._SelectorTransport._call_connection_lost

def probe_add(self, sock):
    self.__dict__.setdefault("probe_fds", set()).add(sock.fileno())
    return add(self, sock)

def probe_cancel_read(self, key):
    if key in self._open:  # written before the shutdown's own line
        out.write(f"read {time.monotonic()}\\n")
        watched.update(getattr(self._sockets.get(key), "probe_fds", ()))
    return cancel_read(self, key)

def probe_shutdown(self):
    done = shutdown(self) if THREAD else 0
    if done:
        out.write(f"closed {time.monotonic()}\\n")
    return done

def probe_lost(self, exc):
    fd = self._sock.fileno() if self._sock is not None else -1
    lost(self, exc)
    if fd in watched:
        watched.clear()
        out.write(f"closed {time.monotonic()}\\n")

upstreams.UpstreamSockets.add, upstreams.UpstreamSockets.shutdown = probe_add, probe_shutdown
Calls.cancel_read, selector._SelectorTransport._call_connection_lost = probe_cancel_read, probe_lost
from streamhost.cli import main
sys.exit(main())
"""
"""The server with timing probes (``-c``): when its reader read the cancel, and when the upstream socket was shut
down (THREAD) or closed by the event loop, appended to the file ``BENCH_CANCEL_PROBE`` names."""


async def one(client: common.Client, llm: object, loaded: bool = False) -> float:
    """Seconds from the cancel to the upstream request's disconnection, for one call."""
    client.reset()
    before = len(llm.requests)  # type: ignore[attr-defined]

    def streamed(records: list) -> bool:
        return any(r.model == MODEL and r.tokens_sent >= 5 for r in records[before:])

    with anyio.fail_after(300 if loaded else 30):
        async with anyio.create_task_group() as group:
            group.start_soon(client.call, "generate", {"prompt": "stall", "model": f"openai/{MODEL}"})
            if loaded:
                await llm.await_for(streamed, timeout=60)  # type: ignore[attr-defined]
            else:
                await client.first_text.wait()
            cancelled_at = time.monotonic()
            group.cancel_scope.cancel()

        def gone(records: list) -> bool:
            return any(r.model == MODEL and r.disconnected_at is not None for r in records[before:])

        if not await llm.await_for(gone, timeout=30):  # type: ignore[attr-defined]
            raise RuntimeError("the upstream request was not closed within 30 s of the cancel")
    record = next(r for r in llm.requests[before:] if r.model == MODEL)  # type: ignore[attr-defined]
    return record.disconnected_at - cancelled_at


async def load(client: common.Client, stop: anyio.Event) -> None:
    """One background stream, called again each time it ends, until ``stop``."""
    while not stop.is_set():
        await client.call("generate", {"prompt": "load", "model": f"openai/{LOAD_MODEL}"}, timeout=600)


async def measure(llm: object, home: common.Home, args: argparse.Namespace, runs: int,
                  thread: bool) -> tuple[list[float], list[float], bool]:
    """One warmed server (under the load, if any), the shutdown from the reader thread on or off: for ``runs``
    runs the delays client cancel -> upstream disconnected and (server side) cancel read -> socket shut down or
    closed; and whether the server still answers."""
    delays: list[float] = []
    probe = home.root / f"probe-{time.monotonic_ns()}.txt"
    env = {**home.env(base_url=llm.url), "BENCH_CANCEL_PROBE": str(probe)}  # type: ignore[attr-defined]
    command = [sys.executable, "-c", f"THREAD = {thread}\n{PROBE}", "serve"]
    async with common.spawn(command, env) as client:
        await one(client, llm)  # untimed: warms the SDK import and the connection pool
        stop = anyio.Event()
        async with anyio.create_task_group() as background:
            for _ in range(args.load):
                background.start_soon(load, client, stop)
            if args.load:  # every load stream under way before the first timed run
                await llm.await_for(lambda rs: sum(r.model == LOAD_MODEL and r.tokens_sent > 0 and r.ended is None  # type: ignore[attr-defined]
                                                   for r in rs) >= args.load, timeout=60)
            for _ in range(runs):
                delays.append(await one(client, llm, loaded=args.load > 0))
                await anyio.sleep(0.05)
            stop.set()
            background.cancel_scope.cancel()
        after = await client.call("generate", {"prompt": "x", "model": "openai/bench-after"})
    # The warm-up's cancel first; the load's own cancels (at the end) after the runs.
    return delays, _server_side(probe)[1:1 + runs], not after.is_error and after.content[0].text == "still here"


def _server_side(probe: Path) -> list[float]:
    """From the probe's lines: for each cancel read, the delay until the first close after it."""
    delays, read = [], None
    for kind, at in (line.split() for line in probe.read_text().splitlines()):
        if kind == "read":
            read = float(at)
        elif read is not None:
            delays.append(float(at) - read)
            read = None
    return delays


async def main() -> None:
    args = common.parse_args(__doc__, runs=20, extra=_load_options)
    home = common.Home()
    sides = {"thread": True, "loop": False} if args.compare else {"thread": True}
    rounds = args.rounds if args.compare else 1
    delays: dict[str, list[float]] = {side: [] for side in sides}
    server: dict[str, list[float]] = {side: [] for side in sides}
    alive = True
    with common.llm_server() as llm:
        llm.script(MODEL, Script(tokens=common.words(20), stall_after=5))
        llm.script(LOAD_MODEL, Script(tokens=common.words(int(args.rate * 20)), rate=args.rate))
        llm.script("bench-after", Script(tokens=["still ", "here"]))
        try:
            for round_ in range(rounds):
                for side, thread in (sides.items() if round_ % 2 == 0 else reversed(sides.items())):
                    got, inside, answered = await measure(llm, home, args, max(1, args.runs // rounds), thread)
                    delays[side] += got
                    server[side] += inside
                    alive = alive and answered
        finally:
            home.cleanup()

    loaded = f"; under {args.load} streams of {args.rate:g} tokens/s" if args.load else ""
    print(f"cancel: {common.machine()}; {args.runs} runs per side{loaded}")
    rows = [_row(f"client cancel -> upstream disconnected ({side})", got) for side, got in delays.items()]
    rows += [_row(f"server read the cancel -> socket shut down/closed ({side})", got) for side, got in server.items()]
    print(common.table(["measure", "median ms", "p99 ms", "min ms", "max ms", "goal <= 50 ms"], rows))
    for side in sides:
        print(f"all runs, {side}, client (ms): {' '.join(f'{d * 1000:.1f}' for d in delays[side])}")
        print(f"all runs, {side}, server (ms): {' '.join(f'{d * 1000:.1f}' for d in server[side])}")
    print(f"host answers after the cancels: {'OK' if alive else 'FAIL'}")


def _row(measure: str, got: list[float]) -> list[str]:
    if not got:
        return [measure, "-", "-", "-", "-", "no data"]
    med, worst = common.med(got), max(got)
    p99 = sorted(got)[min(len(got) - 1, int(0.99 * len(got)))]
    verdict = "met" if worst <= 0.05 else ("median met, max MISSED" if med <= 0.05 else "MISSED")
    return [measure, common.ms(med), common.ms(p99), common.ms(min(got)), common.ms(worst), verdict]


def _load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--load", type=int, default=0, help="other streams running during the runs (default 0)")
    parser.add_argument("--rate", type=float, default=100, help="tokens/s of each load stream (default 100)")
    parser.add_argument("--compare", action="store_true",
                        help="also measure the server with the socket shutdown switched off (closed by the loop)")
    parser.add_argument("--rounds", type=int, default=2, help="with --compare: alternations of the sides (default 2)")


if __name__ == "__main__":
    anyio.run(main)
