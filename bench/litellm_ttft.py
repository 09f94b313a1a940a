"""Time to first text through the litellm plugin: right after start-up, and on a warmed server against
the openai plugin.

(1) First call: a fresh ``streamhost serve`` per run; 0, 1 or 3 s after ``tools/list`` is answered, one
    ``generate`` on ``litellm/openai/bench-chat``: call start -> first text progress notification.
    Warm-up on (the default: litellm is imported in a background thread 50 ms after tools/list) against
    warm-up off (the call imports litellm itself). While waiting, ``list_models`` round trips every
    100 ms show what the background import costs other requests (it holds the GIL in stretches).
    Interleaved, the side that goes first alternating.
(2) Warmed: one server, untimed calls first, then ``litellm/openai/bench-chat`` against
    ``openai/bench-chat`` on the same test server and the same scripted stream (first token at once, so
    the figures are overhead), interleaved run by run. "in" = call start -> request at the test server,
    "out" = its first token -> text at the client.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import common

from streamhost.testing import Script

WARM_CALLS = 5
FIRST_RUNS = 5
DELAYS = (0.0, 1.0, 3.0)
SCRIPT = Script(tokens=common.words(20), rate=2000)
MODELS = {"litellm": "litellm/openai/bench-chat", "openai": "openai/bench-chat"}


def config(url: str, warmup: bool) -> str:
    return (f'[providers.litellm]\napi_base = "{url}"\napi_key_env = "OPENAI_API_KEY"\n'
            f"[plugins]\nwarmup = {str(warmup).lower()}\n")


async def timed_call(client: common.Client, llm: Any, model: str) -> tuple[float, float, float]:
    """(time to first text, start -> request at the upstream, upstream first token -> caller)."""
    client.reset()
    before = len(llm.requests)
    t0 = time.monotonic()
    result = await client.call("generate", {"prompt": "say something", "model": model})
    if result.is_error or not client.texts():
        raise RuntimeError(f"{model} failed: {result.content[0].text if result.content else result}")
    first = client.texts()[0][0]
    record = llm.requests[before]
    return first - t0, record.started - t0, first - record.first_token


async def first_call(home: common.Home, llm: Any, warmup: bool, delay: float) -> tuple[float, list[float]]:
    """(first litellm call's time to text, list_models round trips while waiting ``delay`` s)."""
    env = home.env(config(llm.url, warmup), base_url=llm.url, name=f"warmup_{warmup}")
    pings: list[float] = []
    async with common.spawn(common.streamhost_cmd(), env) as client:
        await client.session.list_tools()
        until = time.monotonic() + delay
        while time.monotonic() < until:
            t0 = time.monotonic()
            await client.call("list_models", {})
            pings.append(time.monotonic() - t0)
            await anyio.sleep(max(0.0, min(0.1, until - time.monotonic())))
        return (await timed_call(client, llm, MODELS["litellm"]))[0], pings


async def main() -> None:
    args = common.parse_args(__doc__, runs=40)
    home = common.Home()
    first: dict[tuple[bool, float], list[float]] = {(w, d): [] for w in (True, False) for d in DELAYS}
    pings: dict[bool, list[float]] = {True: [], False: []}
    warm: dict[str, list[tuple[float, float, float]]] = {side: [] for side in MODELS}
    with common.llm_server() as llm:
        llm.script("bench-chat", SCRIPT)
        try:
            await first_call(home, llm, True, 0.0)  # untimed: page cache, .pyc files
            for run in range(FIRST_RUNS):
                for delay in DELAYS:
                    for warmup in (True, False) if common.baseline_first(run) else (False, True):
                        ttft, waited = await first_call(home, llm, warmup, delay)
                        first[(warmup, delay)].append(ttft)
                        if delay == max(DELAYS):
                            pings[warmup].extend(waited)
            async with common.spawn(common.streamhost_cmd(), home.env(config(llm.url, True), base_url=llm.url)) \
                    as client:
                for _ in range(WARM_CALLS):
                    for model in MODELS.values():
                        await timed_call(client, llm, model)
                for run in range(args.runs):
                    for side in ("openai", "litellm") if common.baseline_first(run) else ("litellm", "openai"):
                        warm[side].append(await timed_call(client, llm, MODELS[side]))
        finally:
            home.cleanup()

    print(f"litellm_ttft: {common.machine()}")
    print(f"\n(1) first litellm call N s after tools/list, median of {FIRST_RUNS} fresh servers per cell")
    headers = ["warm-up", *[f"{d:g} s after: text ms" for d in DELAYS], "list_models while waiting: med / max ms"]
    print(common.table(headers,
                       [[("on" if w else "off"), *[common.ms(common.med(first[(w, d)])) for d in DELAYS],
                         f"{common.ms(common.med(pings[w]))} / {common.ms(max(pings[w]))}"] for w in (True, False)]))

    def m(side: str, i: int) -> float:
        return common.med([s[i] for s in warm[side]])

    paired = common.med([a[0] - b[0] for a, b in zip(warm["litellm"], warm["openai"], strict=True)])
    print(f"\n(2) warmed server, median of {args.runs} runs per side, interleaved "
          f"(litellm - openai: {(m('litellm', 0) - m('openai', 0)) * 1000:+.1f} ms, paired {paired * 1000:+.1f} ms)")
    print(common.table(["plugin", "time to text ms", "in ms", "out ms", "max ms"], [
        [side, common.ms(m(side, 0)), common.ms(m(side, 1)), common.ms(m(side, 2)),
         common.ms(max(s[0] for s in warm[side]))] for side in MODELS]))


if __name__ == "__main__":
    anyio.run(main)
