"""Time to first text: through ``streamhost serve`` against the openai SDK reading the same stream directly.

streamhost: from ``call_tool`` start to the arrival of the first progress notification whose ``_meta``
carries ``streamhost/delta`` (a warmed server: untimed calls first).
SDK: ``AsyncOpenAI(base_url=test server, max_retries=0)`` (warmed), from the ``create()`` call to the
first text delta (``choices[0].delta.content`` / ``response.output_text.delta``); the stream is read to
its end, not left open.
plugin: the openai plugin's ``stream()`` in this process (no host, no MCP), from the call to its first
``TextDelta``: "plugin" against "sdk" is what the plugin adds, "streamhost" against "plugin" what the host
and the MCP hops add.

Both Chat Completions ("openai/bench-chat") and Responses ("openai/o3", routed to Responses) are timed;
the test server sends the first token at once (no model think time), so the difference is the overhead.
Each side is split in two with the test server's records: start -> request at the upstream ("in"), and
upstream's first token -> text at the caller ("out"). The MCP floor is a ``list_models`` round trip
(a tool that does nothing) on the same session. Runs are interleaved (the side that goes first
rotates). Goal: + <= 5 ms median, + <= 10 ms p99.
"""

from __future__ import annotations

import os
import time
from typing import Any

import anyio
import common

from streamhost.testing import Script

WARM_CALLS = 5
APIS = {"chat": "bench-chat", "responses": "o3"}
SIDES = ["sdk", "plugin", "streamhost"]
SCRIPT = Script(tokens=common.words(20), rate=2000)
Sample = tuple[float, float, float]  # (ttft, start -> request at upstream, upstream first token -> caller)


def split(llm: Any, before: int, t0: float, first: float) -> Sample:
    # The first streaming request since ``before``: the warm-up's GET /v1/models may come in between.
    record = next(r for r in llm.requests[before:] if r.api in ("chat", "responses"))
    return first - t0, record.started - t0, first - record.first_token


async def via_streamhost(client: common.Client, llm: Any, api: str, model: str) -> Sample:
    client.reset()
    before = len(llm.requests)
    t0 = time.monotonic()
    result = await client.call("generate", {"prompt": "say something", "model": f"openai/{model}"})
    if result.is_error or not client.texts():
        raise RuntimeError(f"streamhost call failed: {result.content[0].text if result.content else result}")
    return split(llm, before, t0, client.texts()[0][0])


async def via_sdk(sdk: Any, llm: Any, api: str, model: str) -> Sample:
    first = None
    before = len(llm.requests)
    t0 = time.monotonic()
    if api == "chat":
        stream = await sdk.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "say something"}], stream=True,
            stream_options={"include_usage": True})
        async with stream:
            async for chunk in stream:
                if first is None and chunk.choices and chunk.choices[0].delta.content:
                    first = time.monotonic()
    else:
        stream = await sdk.responses.create(model=model, input="say something", stream=True)
        async with stream:
            async for event in stream:
                if first is None and event.type == "response.output_text.delta" and event.delta:
                    first = time.monotonic()
    if first is None:
        raise RuntimeError("the SDK saw no text")
    return split(llm, before, t0, first)


def p99_of(values: list[float]) -> float:
    """The 99th percentile (nearest rank): with fewer than 100 runs, the slowest one."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def via_plugin(provider: Any, llm: Any, api: str, model: str) -> Sample:
    """The openai plugin's ``stream()`` in this process, without the host: what the plugin itself adds."""
    from streamhost import GenerationRequest, TextDelta

    first = None
    before = len(llm.requests)
    t0 = time.monotonic()
    async for event in provider.stream(GenerationRequest(model=model, prompt="say something")):
        if first is None and isinstance(event, TextDelta):
            first = time.monotonic()
    if first is None:
        raise RuntimeError("the plugin saw no text")
    return split(llm, before, t0, first)


def plugin(url: str) -> Any:
    from streamhost_openai import OpenAIProvider

    os.environ["OPENAI_API_KEY"] = common.KEY
    provider = OpenAIProvider()
    provider.configure({"base_url": url})
    provider.warm()
    return provider


async def floor(client: common.Client) -> float:
    t0 = time.monotonic()
    await client.call("list_models", {})
    return time.monotonic() - t0


async def main() -> None:
    args = common.parse_args(__doc__, runs=40)
    home = common.Home()
    times: dict[tuple[str, str], list[Sample]] = {(api, side): [] for api in APIS for side in SIDES}
    floors: list[float] = []
    with common.llm_server() as llm:
        for model in APIS.values():
            llm.script(model, SCRIPT)
        sdk = common.sdk_client(llm.url)
        provider = plugin(llm.url)
        try:
            async with common.spawn(common.streamhost_cmd(), home.env(base_url=llm.url)) as client:
                jobs = {"sdk": (via_sdk, sdk), "plugin": (via_plugin, provider), "streamhost": (via_streamhost, client)}
                for _ in range(WARM_CALLS):
                    for api, model in APIS.items():
                        for job, target in jobs.values():
                            await job(target, llm, api, model)
                for run in range(args.runs):
                    for api, model in APIS.items():
                        for side in SIDES[run % 3:] + SIDES[:run % 3]:  # the side that goes first rotates
                            job, target = jobs[side]
                            times[(api, side)].append(await job(target, llm, api, model))
                    floors.append(await floor(client))
        finally:
            await sdk.close()
            await provider.aclose()
            home.cleanup()

    def m(api: str, side: str, i: int) -> float:
        return common.med([s[i] for s in times[(api, side)]])

    print(f"ttft: {common.machine()}; median of {args.runs} runs per side, interleaved")
    rows = []
    for api in APIS:
        diff = m(api, "streamhost", 0) - m(api, "sdk", 0)
        paired = common.med([h[0] - b[0] for h, b in zip(times[(api, "streamhost")], times[(api, "sdk")],
                                                          strict=True)])
        p99 = {side: p99_of([s[0] for s in times[(api, side)]]) for side in ("sdk", "streamhost")}
        rows.append([f"{api} ({APIS[api]})", common.ms(m(api, "sdk", 0)), common.ms(m(api, "streamhost", 0)),
                     f"{diff * 1000:+.1f}", f"{paired * 1000:+.1f}", common.ms(p99["sdk"]),
                     common.ms(p99["streamhost"]), f"{(p99['streamhost'] - p99['sdk']) * 1000:+.1f}",
                     "met" if diff <= 0.005 and p99["streamhost"] - p99["sdk"] <= 0.010 else "MISSED"])
    print(common.table(["api", "SDK ms", "streamhost ms", "diff ms", "paired diff ms", "SDK p99 ms",
                        "streamhost p99 ms", "p99 diff ms", "goal +<=5 ms, p99 +<=10"], rows))
    print("\nwhere the time goes (medians, ms): in = start -> request at upstream; out = first token -> caller")
    rows = [[f"{api} {side}", common.ms(m(api, side, 0)), common.ms(m(api, side, 1)), common.ms(m(api, side, 2))]
            for api in APIS for side in SIDES]
    print(common.table(["path", "ttft", "in", "out"], rows))
    print(f"MCP floor (list_models round trip on the same session): {common.ms(common.med(floors))} ms")


if __name__ == "__main__":
    anyio.run(main)
