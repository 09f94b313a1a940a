"""Throughput: a 10,000-token stream at 2,000 tokens/s, through ``streamhost serve`` and through the SDK.

streamhost: ``call_tool`` start -> result (a warmed server: one short untimed call first).
SDK: ``create()`` -> end of the stream (``AsyncOpenAI``, Chat Completions, warmed).
Also: the server process's CPU time per call, notifications sent (all, and those carrying text) and
per second, the time from the test server writing its last byte to the caller having everything
("tail"), and a check that the concatenated ``streamhost/delta`` values equal the result text and the
tokens sent (OK/FAIL).
Runs are interleaved. Goal: streamhost / SDK total time <= 1.05.
"""

from __future__ import annotations

import time

import anyio
import common
import psutil

from streamhost.testing import Script

TOKENS = common.words(10_000)
EXPECTED = "".join(TOKENS)
MODEL = "bench-throughput"


async def via_streamhost(client: common.Client, llm: object) -> dict[str, float | bool]:
    client.reset()
    server = psutil.Process(client.pid)
    cpu0 = sum(server.cpu_times()[:2])
    t0 = time.monotonic()
    result = await client.call("generate", {"prompt": "go", "model": f"openai/{MODEL}"})
    t1 = time.monotonic()
    cpu = sum(server.cpu_times()[:2]) - cpu0
    text = result.content[0].text
    deltas = "".join(p.meta[common.DELTA] for _, p in client.texts())
    ended = llm.requests[-1].ended  # type: ignore[attr-defined]
    return {"total": t1 - t0, "tail": t1 - ended, "notes": len(client.progress), "texts": len(client.texts()),
            "cpu": cpu, "ok": not result.is_error and deltas == text == EXPECTED}


async def via_sdk(sdk: object, llm: object) -> dict[str, float | bool]:
    parts = []
    t0 = time.monotonic()
    stream = await sdk.chat.completions.create(  # type: ignore[attr-defined]
        model=MODEL, messages=[{"role": "user", "content": "go"}], stream=True, stream_options={"include_usage": True})
    async with stream:
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
    t1 = time.monotonic()
    ended = llm.requests[-1].ended  # type: ignore[attr-defined]
    return {"total": t1 - t0, "tail": t1 - ended, "ok": "".join(parts) == EXPECTED}


async def main() -> None:
    args = common.parse_args(__doc__, runs=3)
    home = common.Home()
    out: dict[str, list[dict[str, float | bool]]] = {"streamhost": [], "sdk": []}
    with common.llm_server() as llm:
        llm.script("bench-warm", Script(tokens=common.words(50), rate=2000))
        llm.script(MODEL, Script(tokens=TOKENS, rate=2000))
        sdk = common.sdk_client(llm.url)
        try:
            async with common.spawn(common.streamhost_cmd(), home.env(base_url=llm.url)) as client:
                await client.call("generate", {"prompt": "warm", "model": "openai/bench-warm"})
                await sdk.chat.completions.create(model="bench-warm", messages=[{"role": "user", "content": "w"}])
                for run in range(args.runs):
                    order = ["sdk", "streamhost"] if common.baseline_first(run) else ["streamhost", "sdk"]
                    for side in order:
                        job = via_streamhost(client, llm) if side == "streamhost" else via_sdk(sdk, llm)
                        out[side].append(await job)
        finally:
            await sdk.close()
            home.cleanup()

    def m(side: str, key: str) -> float:
        return common.med([float(r[key]) for r in out[side]])

    ratio = m("streamhost", "total") / m("sdk", "total")
    print(f"throughput: {common.machine()}; 10,000 tokens at 2,000/s; median of {args.runs} runs per side, "
          "interleaved")
    rows = [[side, f"{m(side, 'total'):.3f}", common.ms(m(side, "tail")),
             f"{m(side, 'total') / m('sdk', 'total'):.3f}",
             "OK" if all(r["ok"] for r in out[side]) else "FAIL"] for side in ("sdk", "streamhost")]
    print(common.table(["path", "total s", "tail ms", "ratio", "text check"], rows))
    notes, texts, total = m("streamhost", "notes"), m("streamhost", "texts"), m("streamhost", "total")
    print(f"notifications per call: {notes:.0f} ({texts:.0f} with text), {notes / total:.1f}/s; "
          f"server CPU per call {m('streamhost', 'cpu'):.2f} s ({m('streamhost', 'cpu') / total:.0%} of a core)")
    print(f"ratio streamhost / SDK: {ratio:.3f}  goal <= 1.05: {'met' if ratio <= 1.05 else 'MISSED'}; "
          f"concatenated deltas == result text: {'OK' if all(r['ok'] for r in out['streamhost']) else 'FAIL'}")


if __name__ == "__main__":
    anyio.run(main)
