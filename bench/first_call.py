"""The first call after start-up: time to first text of a ``generate`` sent 0.5 s and 3 s after ``tools/list``.

streamhost: a fresh ``streamhost serve`` each run; spawn → ``initialize`` → ``tools/list`` (the handshake,
timed too, with warm-up on and off), then a pause (0.5 s: about when Claude Code sends its first call; 3 s),
then ``call_tool`` start → the first progress notification carrying text.
Baseline: a fresh Python process with the openai SDK imported (as an app that already uses it would have),
``AsyncOpenAI(max_retries=0)`` built, ``create()`` → the first text delta, on the same scripted stream.
The difference at 0.5 s is what is left of the SDK import the warm-up runs in the background.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import anyio
import common

from streamhost.testing import Script

DELAYS = (0.5, 3.0)
SCRIPT = Script(tokens=common.words(20), rate=2000)
BASELINE = """
import asyncio, json, sys, time
from openai import AsyncOpenAI

async def main():
    client = AsyncOpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
    t0 = time.monotonic()
    first = None
    stream = await client.chat.completions.create(
        model="bench-chat", messages=[{"role": "user", "content": "say something"}], stream=True)
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.monotonic()
    print(json.dumps({"ttft": first - t0}))

asyncio.run(main())
"""


async def via_streamhost(env: dict[str, str], delay: float | None) -> tuple[float, float | None]:
    """(handshake, first-call TTFT); no call when ``delay`` is None."""
    async with common.spawn(common.streamhost_cmd(), env) as client:
        await client.session.list_tools()
        handshake = time.monotonic() - client.started
        if delay is None:
            return handshake, None
        await anyio.sleep(delay)
        t0 = time.monotonic()
        result = await client.call("generate", {"prompt": "say something", "model": "openai/bench-chat"})
        if result.is_error or not client.texts():
            raise RuntimeError(f"streamhost call failed: {result.content[0].text if result.content else result}")
        return handshake, client.texts()[0][0] - t0


def via_sdk(llm: Any) -> float:
    done = subprocess.run([common.PYTHON, "-c", BASELINE, llm.url, common.KEY], capture_output=True, text=True,
                          check=True, timeout=60)
    return float(json.loads(done.stdout)["ttft"])


async def main() -> None:
    args = common.parse_args(__doc__, runs=5)
    only_openai = os.environ.get("BENCH_ONLY_OPENAI") == "1"  # the fetch plugin's warm-up competes for the GIL
    home = common.Home()
    with common.llm_server() as llm:
        llm.script("bench-chat", *[SCRIPT] * (args.runs * (len(DELAYS) + 1) + 2))
        only = {"STREAMHOST_LOAD_PLUGINS": "streamhost-openai"} if only_openai else {}
        env = {**home.env(base_url=llm.url), **only}
        env_cold = {**home.env("[plugins]\nwarmup = false\n", base_url=llm.url, name="cold"), **only}
        handshakes: dict[str, list[float]] = {"warm-up on": [], "warm-up off": []}
        ttft: dict[str, list[float]] = {f"streamhost, call {d} s after tools/list": [] for d in DELAYS}
        ttft["openai SDK process (imported)"] = []
        for _ in range(args.runs):
            for delay in DELAYS:
                handshake, first = await via_streamhost(env, delay)
                handshakes["warm-up on"].append(handshake)
                ttft[f"streamhost, call {delay} s after tools/list"].append(first or 0.0)
            handshakes["warm-up off"].append((await via_streamhost(env_cold, None))[0])
            ttft["openai SDK process (imported)"].append(via_sdk(llm))
    home.cleanup()
    plugins = "the openai plugin only" if only_openai else "every installed plugin"
    print(f"# first call after start-up ({common.machine()}), {plugins}, {args.runs} runs, medians\n")
    print(common.table(["handshake: spawn → initialize → tools/list", "ms"],
                       [[name, common.ms(common.med(v))] for name, v in handshakes.items()]))
    print()
    print(common.table(["time to first text", "ms", "min", "max"],
                       [[name, common.ms(common.med(v)), common.ms(min(v)), common.ms(max(v))]
                        for name, v in ttft.items()]))


if __name__ == "__main__":
    anyio.run(main)
