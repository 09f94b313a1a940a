"""Time to first text: through ``streamhost serve`` against the openai SDK reading the same stream directly.

streamhost: from ``call_tool`` start to the arrival of the first progress notification whose ``_meta``
carries ``streamhost/delta`` (a warmed server: untimed calls first).
SDK: ``AsyncOpenAI(base_url=test server, max_retries=0)`` (warmed), from the ``create()`` call to the
first text delta (``choices[0].delta.content`` / ``response.output_text.delta``); the stream is read to
its end, not left open.

Both Chat Completions ("openai/bench-chat") and Responses ("openai/o3", routed to Responses) are timed;
the test server sends the first token at once (no model think time), so the difference is the overhead.
Each side is split in two with the test server's records: start -> request at the upstream ("in"), and
upstream's first token -> text at the caller ("out"). The MCP floor is a ``list_models`` round trip
(a tool that does nothing) on the same session. Runs are interleaved (the side that goes first
alternates). Goal: + <= 5 ms median.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import common

from streamhost.testing import Script

WARM_CALLS = 5
APIS = {"chat": "bench-chat", "responses": "o3"}
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


async def floor(client: common.Client) -> float:
    t0 = time.monotonic()
    await client.call("list_models", {})
    return time.monotonic() - t0


async def main() -> None:
    args = common.parse_args(__doc__, runs=40)
    home = common.Home()
    times: dict[tuple[str, str], list[Sample]] = {(api, side): [] for api in APIS for side in ("streamhost", "sdk")}
    floors: list[float] = []
    with common.llm_server() as llm:
        for model in APIS.values():
            llm.script(model, SCRIPT)
        sdk = common.sdk_client(llm.url)
        try:
            async with common.spawn(common.streamhost_cmd(), home.env(base_url=llm.url)) as client:
                for _ in range(WARM_CALLS):
                    for api, model in APIS.items():
                        await via_streamhost(client, llm, api, model)
                        await via_sdk(sdk, llm, api, model)
                for run in range(args.runs):
                    for api, model in APIS.items():
                        for side in ["sdk", "streamhost"] if common.baseline_first(run) else ["streamhost", "sdk"]:
                            job = via_streamhost if side == "streamhost" else via_sdk
                            times[(api, side)].append(await job(client if side == "streamhost" else sdk,
                                                                llm, api, model))
                    floors.append(await floor(client))
        finally:
            await sdk.close()
            home.cleanup()

    def m(api: str, side: str, i: int) -> float:
        return common.med([s[i] for s in times[(api, side)]])

    print(f"ttft: {common.machine()}; median of {args.runs} runs per side, interleaved")
    rows = []
    for api in APIS:
        diff = m(api, "streamhost", 0) - m(api, "sdk", 0)
        paired = common.med([h[0] - b[0] for h, b in zip(times[(api, "streamhost")], times[(api, "sdk")],
                                                          strict=True)])
        rows.append([f"{api} ({APIS[api]})", common.ms(m(api, "sdk", 0)), common.ms(m(api, "streamhost", 0)),
                     f"{diff * 1000:+.1f}", f"{paired * 1000:+.1f}",
                     f"{max(s[0] for s in times[(api, 'streamhost')]) * 1000:.1f}",
                     "met" if diff <= 0.005 else "MISSED"])
    print(common.table(["api", "SDK ms", "streamhost ms", "diff ms", "paired diff ms", "streamhost max ms",
                        "goal +<=5 ms"], rows))
    print("\nwhere the time goes (medians, ms): in = start -> request at upstream; out = first token -> caller")
    rows = [[f"{api} {side}", common.ms(m(api, side, 1)), common.ms(m(api, side, 2))]
            for api in APIS for side in ("sdk", "streamhost")]
    print(common.table(["path", "in", "out"], rows))
    print(f"MCP floor (list_models round trip on the same session): {common.ms(common.med(floors))} ms")


if __name__ == "__main__":
    anyio.run(main)
