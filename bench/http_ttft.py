"""Time to first text over Streamable HTTP against stdio: the same upstream, the same config, one run after the other.

Each side is a warmed ``streamhost serve`` (stdio) or ``streamhost serve --http`` (one process) with a client:
the SDK's stdio client; the SDK's Streamable HTTP client, in both protocol eras; and a raw client of each
transport (``raw_mcp.py``: the least a client can do), which shows the server's own share. Timed: from the call
to the first progress notification carrying ``streamhost/delta``; the test server sends its first token at once.
Runs are interleaved (the side that goes first rotates). Goal: HTTP <= stdio + 5 ms, judged client for client
(SDK against SDK, raw against raw). Also the server process's CPU time per call (user + system): on a loaded
machine the wall times wander, the CPU a call costs much less.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import common
import http_common
import psutil
import raw_mcp

from streamhost.testing import Script

WARM_CALLS = 5
MODEL = "bench-chat"
SCRIPT = Script(tokens=common.words(20), rate=2000)
SIDES = ["stdio", "http", "http-2026", "stdio-raw", "http-raw", "http-raw-2026"]
BASELINE = {"http": "stdio", "http-2026": "stdio", "http-raw": "stdio-raw", "http-raw-2026": "stdio-raw"}
ARGUMENTS = {"prompt": "say something", "model": f"openai/{MODEL}"}


class SdkSide:
    """An SDK client session as a side: the same ``first_text`` as the raw clients'."""

    def __init__(self, client: common.Client) -> None:
        self.client = client
        self.pid = client.pid

    async def first_text(self, arguments: dict[str, Any]) -> tuple[float, float]:
        self.client.reset()
        t0 = time.monotonic()
        result = await self.client.call("generate", arguments)
        if result.is_error or not self.client.texts():
            raise RuntimeError(f"call failed: {result.content[0].text if result.content else result}")
        return t0, self.client.texts()[0][0]


p = common.percentile


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def first_text(side: Any, llm: Any) -> tuple[float, float, float, float]:
    """(ttft, start -> request at the upstream, upstream's first token -> text at the client, server CPU)."""
    cpu = cpu_of(side.pid)
    before = len(llm.requests)
    t0, first = await side.first_text(ARGUMENTS)
    record = next(r for r in llm.requests[before:] if r.api == "chat")
    return first - t0, record.started - t0, first - record.first_token, cpu_of(side.pid) - cpu




async def main() -> None:
    args = common.parse_args(__doc__, runs=60)
    home = common.Home()
    times: dict[str, list[tuple[float, float, float, float]]] = {side: [] for side in SIDES}
    with common.llm_server() as llm:
        llm.script(MODEL, SCRIPT)
        env = home.env(config=http_common.OPEN, base_url=llm.url)
        raw_stdio = raw_mcp.RawStdio(env)
        raw_http: list[raw_mcp.RawHttp] = []
        try:
            async with common.spawn(common.streamhost_cmd(), env) as stdio, \
                    http_common.serve_http(env) as (url, pid), \
                    http_common.session(url, pid) as http, \
                    http_common.session(url, pid, era="modern") as modern:
                await raw_stdio.start()
                port = int(url.rsplit(":", 1)[1])
                raw_http = [raw_mcp.RawHttp(port, pid, era="2025-11-25"), raw_mcp.RawHttp(port, pid)]
                clients = {"stdio": SdkSide(stdio), "http": SdkSide(http), "http-2026": SdkSide(modern),
                           "stdio-raw": raw_stdio, "http-raw": raw_http[0], "http-raw-2026": raw_http[1]}
                for _ in range(WARM_CALLS):
                    for client in clients.values():
                        await first_text(client, llm)
                for run in range(args.runs):
                    turn = run % len(SIDES)
                    for side in SIDES[turn:] + SIDES[:turn]:
                        times[side].append(await first_text(clients[side], llm))
                for client in raw_http:
                    client.close()
        finally:
            await raw_stdio.close()
            home.cleanup()

    def med(side: str, i: int) -> float:
        return common.med([sample[i] for sample in times[side]])

    print(f"http_ttft: {common.machine()}; median of {args.runs} runs per side, interleaved")
    rows = []
    for side in SIDES:
        base = BASELINE.get(side, side)
        diff = med(side, 0) - med(base, 0)
        paired = common.med([h[0] - s[0] for h, s in zip(times[side], times[base], strict=True)])
        rows.append([side, common.ms(med(side, 0)), common.ms(p([sample[0] for sample in times[side]], 0.99)),
                     f"{diff * 1000:+.1f}", f"{paired * 1000:+.1f}", common.ms(med(side, 1)), common.ms(med(side, 2)),
                     f"{sum(sample[3] for sample in times[side]) / len(times[side]) * 1000:.1f}",
                     "-" if side not in BASELINE else ("met" if diff <= 0.005 else "MISSED")])
    print(common.table(["side", "median ms", "p99 ms", "diff vs its stdio ms", "paired diff ms", "in ms", "out ms",
                        "server CPU ms/call", "goal +<=5 ms"], rows))
    print("in = call start -> request at the upstream; out = upstream's first token -> text at the client; "
          "raw sides against stdio-raw, SDK sides against stdio")


if __name__ == "__main__":
    anyio.run(main)
