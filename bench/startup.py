"""Start-up cost of ``streamhost serve`` against a bare MCPServer with one tool (bench/bare_server.py).

(a) spawn -> ``initialize`` -> ``tools/list`` answered, each server spawned fresh per run.
(b) idle RSS of the server process (psutil), ~3 s after tools/list: streamhost with warm-up off,
    streamhost with warm-up on (the default: it imports the openai SDK in the background after
    tools/list), and the bare server.

Then, for streamhost only, one ``generate`` call (first call of the process, test server on loopback):
its time to first text and the RSS after it, which show what the warm-up trades.

The three kinds are interleaved: every round spawns each once, in an order that rotates round by round.
One untimed round comes first (page cache). Goals: (a) ratio <= 1.10, (b) ratio <= 1.15.
"""

from __future__ import annotations

import time

import anyio
import common
import psutil

from streamhost.testing import Script

IDLE_S = 3.0
KINDS = {
    "bare MCPServer": ([common.PYTHON, str(common.BENCH / "bare_server.py")], ""),
    "streamhost, warm-up on": (common.streamhost_cmd(), ""),
    "streamhost, warm-up off": (common.streamhost_cmd(), "[plugins]\nwarmup = false\n"),
}


async def one(home: common.Home, kind: str, base_url: str) -> tuple[float, float, float, float]:
    """(spawn -> tools/list s, idle RSS bytes, first call's time to text s, RSS after it) for a fresh server."""
    command, config = KINDS[kind]
    env = home.env(config, base_url=base_url, name=kind.replace(" ", "_").replace(",", ""))
    first, after = float("nan"), float("nan")
    async with common.spawn(command, env) as client:
        await client.session.list_tools()
        listed = time.monotonic() - client.started
        await anyio.sleep(IDLE_S)
        server = psutil.Process(client.pid)
        rss = server.memory_info().rss
        if kind.startswith("streamhost"):
            t0 = time.monotonic()
            await client.call("generate", {"prompt": "hi", "model": "openai/bench-first"})
            first = client.texts()[0][0] - t0
            after = server.memory_info().rss
    return listed, rss, first, after


async def main() -> None:
    args = common.parse_args(__doc__, runs=9)
    home = common.Home()
    names = list(KINDS)
    startup: dict[str, list[float]] = {k: [] for k in names}
    rss: dict[str, list[float]] = {k: [] for k in names}
    first: dict[str, list[float]] = {k: [] for k in names}
    after: dict[str, list[float]] = {k: [] for k in names}
    with common.llm_server() as llm:
        llm.script("bench-first", Script(tokens=common.words(20), rate=2000))
        try:
            for kind in names:  # untimed round
                await one(home, kind, llm.url)
            for run in range(args.runs):
                shift = run % len(names)
                for kind in names[shift:] + names[:shift]:
                    for out, value in zip((startup, rss, first, after), await one(home, kind, llm.url), strict=True):
                        out[kind].append(value)
        finally:
            home.cleanup()

    base_t, base_m = common.med(startup[names[0]]), common.med(rss[names[0]])
    rows = []
    for kind in names:
        t, m = common.med(startup[kind]), common.med(rss[kind])
        rows.append([kind, common.ms(t), f"{min(startup[kind]) * 1000:.0f}-{max(startup[kind]) * 1000:.0f}",
                     f"{t / base_t:.3f}", f"{m / 2**20:.1f}", f"{m / base_m:.3f}",
                     "-" if kind == names[0] else f"{common.med(first[kind]) * 1000:.0f}",
                     "-" if kind == names[0] else f"{common.med(after[kind]) / 2**20:.1f}"])
    print(f"startup: {common.machine()}; median of {args.runs} runs per kind, interleaved")
    print(common.table(["server", "tools/list ms", "range ms", "ratio", "idle RSS MiB", "RSS ratio",
                        "1st call text ms", "RSS after MiB"], rows))
    ratio_t = common.med(startup[names[1]]) / base_t
    print(f"(a) spawn -> tools/list, streamhost (default) / bare: {ratio_t:.3f}  "
          f"goal <= 1.10: {'met' if ratio_t <= 1.10 else 'MISSED'}")
    for kind in names[1:]:
        ratio_m = common.med(rss[kind]) / base_m
        print(f"(b) idle RSS, {kind} / bare: {ratio_m:.3f}  goal <= 1.15: {'met' if ratio_m <= 1.15 else 'MISSED'}")


if __name__ == "__main__":
    anyio.run(main)
