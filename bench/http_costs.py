"""What one ``serve --http`` process spends per call and per progress notification: server CPU, no load.

Per call: ``generate`` calls (2 tokens, at once) one after another on one keep-alive raw HTTP/1.1 connection, against
``list_models`` calls the same way (the MCP SDK's and HTTP's share of a call: a tool that does nothing), with the
store on and off. Per notification: one ``generate`` of 400 tokens at 200 tokens/s with ``coalesce_ms = 0`` (a
notification per token) against ``coalesce_ms = 10000`` (one or two): the difference over the difference in
notifications. Server CPU is psutil's user + system time of the server process around the calls; medians of
``--runs`` servers per side.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import common
import raw_mcp

CALLS = 200
LONG_TOKENS = 400
LONG_CALLS = 5


async def call(streams: tuple[asyncio.StreamReader, asyncio.StreamWriter], port: int, number: int, tool: str,
               arguments: dict[str, Any]) -> int:
    """One stateless 2026-07-28 call read to its end; how many progress notifications came."""
    reader, writer = streams
    writer.write(raw_mcp.request_bytes(port, number, tool, arguments))
    status = await reader.readline()
    if not status.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected response: {status!r}")
    length = None
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if length is not None:  # a plain JSON answer (no progress)
        await reader.readexactly(length)
        return 0
    notes = 0
    while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
        notes += (await reader.readexactly(size + 2)).count(b"notifications/progress")
    await reader.readline()
    return notes


async def per_call(llm: Any, home: common.Home, config: str, tool: str, arguments: dict[str, Any],
                   calls: int) -> tuple[float, float]:
    """(server CPU ms per call, notifications per call) over ``calls`` calls on a fresh server, after 20 warm ones."""
    import http_common
    import psutil

    async with http_common.serve_http(home.env(config=config, base_url=llm.url)) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        streams = await asyncio.open_connection("127.0.0.1", port)
        for number in range(20):
            await call(streams, port, number, tool, arguments)
        await asyncio.sleep(2)  # the warm-up ends and the server freezes what start-up built
        server = psutil.Process(pid)
        before = sum(server.cpu_times()[:2])
        notes = sum([await call(streams, port, 100 + number, tool, arguments) for number in range(calls)])
        spent = sum(server.cpu_times()[:2]) - before
        streams[1].close()
    return spent / calls * 1000, notes / calls


async def main() -> None:
    import http_common

    from streamhost.testing import Script

    args = common.parse_args(__doc__, runs=3)
    home = common.Home()
    generate = {"prompt": "x", "model": "openai/short"}
    long_call = {"prompt": "x", "model": "openai/long"}
    sides: dict[str, list[tuple[float, float]]] = {}
    try:
        with common.llm_server() as llm:
            llm.script("short", Script(tokens=["a ", "b "]))
            llm.script("long", Script(tokens=[f"t{i} " for i in range(LONG_TOKENS)], rate=200))
            store_off = "[store]\nenabled = false\n"
            plan = [
                ("list_models", http_common.OPEN, "list_models", {}, CALLS),
                ("generate, store on", http_common.OPEN, "generate", generate, CALLS),
                ("generate, store off", http_common.OPEN + store_off, "generate", generate, CALLS),
                ("400 tokens, coalesce_ms = 0", http_common.OPEN + "[streaming]\ncoalesce_ms = 0\n", "generate",
                 long_call, LONG_CALLS),
                ("400 tokens, coalesce_ms = 10000", http_common.OPEN + "[streaming]\ncoalesce_ms = 10000\n",
                 "generate", long_call, LONG_CALLS),
            ]
            for _ in range(args.runs):  # interleaved: the machine's noise falls on every side alike
                for name, config, tool, arguments, calls in plan:
                    sides.setdefault(name, []).append(await per_call(llm, home, config, tool, arguments, calls))
    finally:
        home.cleanup()

    print(f"http_costs: {common.machine()}; medians of {args.runs} servers per side, server CPU")
    rows = [[name, f"{common.med([spent for spent, _ in runs]):.2f}", f"{common.med([n for _, n in runs]):.0f}"]
            for name, runs in sides.items()]
    print(common.table(["side", "ms per call", "notifications per call"], rows))
    def cpu(name: str) -> float:
        return common.med([spent for spent, _ in sides[name]])

    def notes(name: str) -> float:
        return common.med([count for _, count in sides[name]])

    many, few = "400 tokens, coalesce_ms = 0", "400 tokens, coalesce_ms = 10000"
    print(f"per progress notification: {(cpu(many) - cpu(few)) / max(notes(many) - notes(few), 1):.2f} ms of server "
          f"CPU; the store per generate call: {cpu('generate, store on') - cpu('generate, store off'):.2f} ms")

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
