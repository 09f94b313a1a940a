"""CPU per streamed token: ``streamhost serve`` against the floors, and 200 concurrent streams on one server.

CPU mode (default): one stream of ``--tokens`` (10,000) tokens at ``--rate`` (2,000) tokens/s from the test
server, read by
- the ``streamhost serve`` process (a real MCP client calls ``generate``): openai Chat Completions
  (``openai/bench-cpu``), openai Responses (``openai/o3``) and litellm Chat Completions
  (``litellm/openai/bench-cpu``); its CPU is psutil's ``cpu_times`` (user + system) before and after the call;
- a floor process (``token_floors.py``), on the same stream from the same server:
  raw ``httpx2`` + stdlib ``json`` (the practical floor), the openai SDK's own stream parsing
  (``create(stream=True)`` iterated to the end) and each provider plugin's ``stream()`` alone (no host):
  its process CPU (``time.process_time``) around the stream.
Every side checks its text against the tokens sent (server: concatenated ``streamhost/delta`` values ==
result text == tokens). Medians of ``--runs`` runs; the order of the sides rotates run by run.

Concurrency mode (``--concurrent 200 --tokens 200 --rate 50``): one server, N streams started evenly over
``--ramp`` seconds (so all N run at once before the first ends), each with its own model and text, every
``N // --cancels``-th cancelled half-way through its schedule. Reported: first-text latency (call start ->
first text notification) p50/p99 against a lone stream's (median of ``--runs`` lone calls before and after
the burst), lost or crossed text (each call's notifications, grouped by progress token, rebuild exactly its
own result and its own tokens; offsets contiguous), cancel -> upstream closed p50/p99 (the test server's
``disconnected_at``), ``tools/list`` sent every 0.25 s during the burst -> its answer (a control request
must not wait behind the streams), and the CPU of the server and of this process during the burst (this
process runs the test server and the MCP client: when it nears a whole core its own lag is in the latencies).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import anyio
import common
import psutil
from token_floors import HAS_AIOHTTP, HAS_LITELLM, Floors

from streamhost.testing import Script

CHAT, RESPONSES, WARM_CHAT, WARM_RESPONSES = "bench-cpu", "o3", "bench-warm", "o3-warm"
SERVER_SIDES = {  # name -> (api, MCP model)
    "streamhost: openai chat": ("chat", f"openai/{CHAT}"),
    "streamhost: openai responses": ("responses", f"openai/{RESPONSES}"),
    "streamhost: litellm chat": ("chat", f"litellm/openai/{CHAT}"),
    "streamhost: litellm chat, hosted_vllm route": ("chat", f"litellm/hosted_vllm/{CHAT}"),  # litellm's own HTTP
}
FLOOR_SIDES = {  # name -> (api, worker side)
    "raw httpx2 + json: chat": ("chat", "raw"),
    "raw httpx2 + json: responses": ("responses", "raw"),
    "raw via the SDK's aiohttp transport + json: chat": ("chat", "raw-aiohttp"),
    "openai SDK parsing: chat": ("chat", "sdk"),
    "openai SDK parsing: responses": ("responses", "sdk"),
    "openai plugin stream() alone: chat": ("chat", "plugin"),
    "openai plugin stream() alone: responses": ("responses", "plugin"),
    "litellm plugin stream() alone: chat": ("chat", "litellm"),
}


def config(url: str) -> str:
    return f'[providers.litellm]\napi_base = "{url}"\napi_key_env = "OPENAI_API_KEY"\n' if HAS_LITELLM else ""


def sides(only: str = "") -> list[str]:
    """Every side (``only``: those whose name holds one of its comma-separated words; the raw floors always)."""
    words = [w.strip() for w in only.split(",") if w.strip()]
    return [s for s in [*SERVER_SIDES, *FLOOR_SIDES] if (HAS_LITELLM or "litellm" not in s)
            and (HAS_AIOHTTP or "aiohttp" not in s)
            and (not words or s.startswith("raw") or any(w in s for w in words))]


def cpu_of(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


# ------------------------------------------------------------------------------------------ CPU mode


async def via_server(client: common.Client, model: str, expected: str) -> dict[str, Any]:
    client.reset()
    cpu0 = cpu_of(client.pid)
    t0 = time.monotonic()
    result = await client.call("generate", {"prompt": "go", "model": model}, timeout=300)
    wall = time.monotonic() - t0
    cpu = cpu_of(client.pid) - cpu0
    text = result.content[0].text if result.content else ""
    deltas = "".join(p.meta[common.DELTA] for _, p in client.texts())
    return {"cpu": cpu, "wall": wall, "notes": len(client.progress),
            "ok": not result.is_error and deltas == text == expected}


async def cpu_mode(args: argparse.Namespace) -> None:
    tokens = common.words(args.tokens)
    expected = "".join(tokens)
    home = common.Home()
    out: dict[str, list[dict[str, Any]]] = {side: [] for side in sides(args.only)}
    with common.llm_server() as llm:
        for model in (CHAT, RESPONSES):
            llm.script(model, Script(tokens=tokens, rate=args.rate))
        for model in (WARM_CHAT, WARM_RESPONSES):
            llm.script(model, Script(tokens=common.words(200), rate=args.rate))
        env = home.env(config(llm.url), base_url=llm.url)
        worker = [common.PYTHON, str(common.BENCH / "token_floors.py"), llm.url]
        try:
            async with await anyio.open_process(worker, env={**os.environ, **env}, stderr=None) as process, \
                    common.spawn(common.streamhost_cmd(), env) as client:
                floors = Floors(process)
                for side in sides(args.only):  # untimed: imports, connections, first-use costs
                    if side in SERVER_SIDES:
                        warm = SERVER_SIDES[side][1].replace(CHAT, WARM_CHAT).replace(RESPONSES, WARM_RESPONSES)
                        await client.call("generate", {"prompt": "warm", "model": warm}, timeout=120)
                    else:
                        api, kind = FLOOR_SIDES[side]
                        await floors.run(kind, api, WARM_CHAT if api == "chat" else WARM_RESPONSES)
                for run in range(args.runs):
                    names = sides(args.only)
                    shift = run % len(names)
                    for side in names[shift:] + names[:shift]:
                        if side in SERVER_SIDES:
                            out[side].append(await via_server(client, SERVER_SIDES[side][1], expected))
                        else:
                            api, kind = FLOOR_SIDES[side]
                            got = await floors.run(kind, api, CHAT if api == "chat" else RESPONSES)
                            out[side].append({"cpu": got["cpu"], "ok": got["text"] == expected})
                await process.stdin.aclose()  # type: ignore[union-attr]
        finally:
            home.cleanup()

    def per_token(side: str) -> float:
        return common.med([r["cpu"] for r in out[side]]) / args.tokens * 1e6

    floor = {api: per_token(f"raw httpx2 + json: {api}") for api in ("chat", "responses")}
    print(f"token_cpu: {common.machine()}; {args.tokens:,} tokens at {args.rate:,.0f}/s; median of {args.runs} "
          "runs per side, order rotating")
    rows = []
    for side in sides(args.only):
        api = (SERVER_SIDES.get(side) or FLOOR_SIDES[side])[0]
        cpu = common.med([r["cpu"] for r in out[side]])
        notes = f"{common.med([r['notes'] for r in out[side]]):.0f}" if side in SERVER_SIDES else "–"
        rows.append([side, f"{per_token(side):.1f}", f"{per_token(side) / floor[api]:.2f}", f"{cpu:.2f}", notes,
                     "OK" if all(r["ok"] for r in out[side]) else "FAIL"])
    print(common.table(["path", "CPU µs/token", "× raw floor", "CPU s/stream", "notifications", "text"], rows))
    for side in SERVER_SIDES:
        if side in out and "openai" in side:
            figure = per_token(side)
            print(f"{side}: {figure:.1f} µs/token, goal <= 60: {'met' if figure <= 60 else 'MISSED'}")


# ------------------------------------------------------------------------------------------ concurrency mode


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def lone(client: common.Client, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        client.reset()
        t0 = time.monotonic()
        result = await client.call("generate", {"prompt": "go", "model": "openai/bench-lone"}, timeout=120)
        if result.is_error or not client.texts():
            raise RuntimeError(f"the lone stream failed: {result.content[0].text if result.content else result}")
        times.append(client.texts()[0][0] - t0)
    return times


async def concurrent_mode(args: argparse.Namespace) -> None:
    n, per = args.concurrent, args.tokens
    texts = {i: [f"c{i}w{j} " for j in range(per)] for i in range(n)}
    cancelled = set(range(0, n, max(1, n // args.cancels))) if args.cancels else set()
    home = common.Home()
    starts: dict[int, float] = {}
    results: dict[int, Any] = {}
    cancels: dict[int, float] = {}
    listings: list[float] = []
    with common.llm_server() as llm:
        for i in range(n):
            llm.script(f"bench-c{i}", Script(tokens=texts[i], rate=args.rate))
        llm.script("bench-lone", Script(tokens=common.words(per), rate=args.rate))
        try:
            async with common.spawn(common.streamhost_cmd(), home.env(base_url=llm.url)) as client:
                lone_times = (await lone(client, args.runs + 1))[1:]  # the first one warms up

                async def one(i: int) -> None:
                    await anyio.sleep(max(0.0, begin + i * args.ramp / n - time.monotonic()))
                    starts[i] = time.monotonic()
                    with anyio.CancelScope() as scope:
                        if i in cancelled:
                            asyncio.get_running_loop().call_later(per / args.rate / 2, _cancel, scope, cancels, i)
                        results[i] = await client.call("generate", {"prompt": "go", "model": f"openai/bench-c{i}"},
                                                       timeout=600)

                async def probe() -> None:  # until the streams are over
                    while True:
                        await anyio.sleep(0.25)
                        t0 = time.monotonic()
                        await client.session.list_tools()
                        listings.append(time.monotonic() - t0)

                client.reset()
                me = psutil.Process()
                cpu_me, cpu_server, wall0 = sum(me.cpu_times()[:2]), cpu_of(client.pid), time.monotonic()
                begin = time.monotonic()
                async with anyio.create_task_group() as probing:
                    probing.start_soon(probe)
                    async with anyio.create_task_group() as group:
                        for i in range(n):
                            group.start_soon(one, i)
                    probing.cancel_scope.cancel()
                wall = time.monotonic() - wall0
                burst_me, burst_server = sum(me.cpu_times()[:2]) - cpu_me, cpu_of(client.pid) - cpu_server
                progress = list(client.progress)
                lone_times += await lone(client, args.runs)

                def settled(records: list) -> bool:  # every cancelled call's request closed, or never sent
                    mine = {r.model: r for r in records}
                    return all(mine.get(f"bench-c{i}") is None or mine[f"bench-c{i}"].ended for i in cancels)

                await llm.await_for(settled, timeout=30)
                records = {r.model: r for r in llm.requests}
        finally:
            home.cleanup()
    report_concurrent(args, texts, cancelled, starts, results, cancels, progress, records, lone_times,
                      (wall, burst_server, burst_me), listings)


def report_concurrent(args: argparse.Namespace, texts: dict[int, list[str]], cancelled: set[int],
                      starts: dict[int, float], results: dict[int, Any], cancels: dict[int, float],
                      progress: list[tuple[float, Any]], records: dict[str, Any], lone_times: list[float],
                      burst: tuple[float, float, float], listings: list[float]) -> None:
    n, per = args.concurrent, args.tokens
    # Notifications grouped by progress token; each group is one call, found by the tag its first delta carries.
    groups: dict[Any, list[tuple[float, Any]]] = {}
    for at, params in progress:
        if params.meta and common.DELTA in params.meta:
            groups.setdefault(params.progress_token, []).append((at, params))
    first_text: dict[int, float] = {}
    split: list[tuple[float, float]] = []  # (call start -> request at the upstream, its first token -> text here)
    bad: list[str] = []
    for notes in groups.values():
        joined = "".join(p.meta[common.DELTA] for _, p in notes)
        owner = int(joined[1:joined.index("w")])
        foreign = {w.split("w")[0] for w in joined.split()} - {f"c{owner}"}
        offsets = [p.meta.get("streamhost/offset") for _, p in notes]
        lengths = [len(p.meta[common.DELTA]) for _, p in notes]
        if foreign or offsets != [sum(lengths[:k]) for k in range(len(lengths))]:
            bad.append(f"call {owner}: crossed text or broken offsets")
        first_text[owner] = notes[0][0] - starts[owner]
        record = records.get(f"bench-c{owner}")
        if record is not None and record.first_token is not None:
            split.append((record.started - starts[owner], notes[0][0] - record.first_token))
        result = results.get(owner)
        if owner not in cancelled and (result is None or result.is_error or result.content[0].text != joined
                                       or joined != "".join(texts[owner])):
            bad.append(f"call {owner}: its text was lost or changed")
    bad += [f"call {i}: no text arrived" for i in range(n) if i not in cancelled and i not in first_text]
    delays, unsent, late, whole, open_ = [], 0, 0, 0, 0
    for i, at in cancels.items():
        record = records.get(f"bench-c{i}")
        if record is None:
            unsent += 1
            continue
        late += record.started > at  # the request went out after the client had cancelled the call
        if record.disconnected_at is not None:
            delays.append(record.disconnected_at - at)
        elif record.ended is not None:
            whole += 1  # the upstream sent all of it: the cancel never closed it, or came too late to
        else:
            open_ += 1

    lat, base = list(first_text.values()), common.med(lone_times)
    wall, cpu_server, cpu_me = burst
    streamed = sum(r.tokens_sent for name, r in records.items() if name and name.startswith("bench-c"))
    print(f"token_cpu --concurrent: {common.machine()}; {n} streams of {per} tokens at {args.rate:g}/s, started over "
          f"{args.ramp:g} s, {len(cancelled)} cancelled half-way; one server")
    print(common.table(["measure", "p50 ms", "p99 ms", "max ms", "goal"], [
        ["first text, lone stream", common.ms(base), common.ms(pct(lone_times, 0.99)), common.ms(max(lone_times)),
         "–"],
        ["first text, under load", common.ms(common.med(lat)), common.ms(pct(lat, 0.99)), common.ms(max(lat)),
         "p99 <= lone + 20: " + ("met" if pct(lat, 0.99) - base <= 0.020 else "MISSED")],
        ["  call start -> request at upstream", common.ms(common.med([a for a, _ in split])),
         common.ms(pct([a for a, _ in split], 0.99)), common.ms(max((a for a, _ in split), default=float("nan"))),
         "–"],
        ["  upstream first token -> text here", common.ms(common.med([b for _, b in split])),
         common.ms(pct([b for _, b in split], 0.99)), common.ms(max((b for _, b in split), default=float("nan"))),
         "–"],
        ["cancel -> upstream closed", common.ms(common.med(delays)), common.ms(pct(delays, 0.99)),
         common.ms(max(delays, default=float("nan"))),
         "p99 <= 50: " + ("met" if delays and pct(delays, 0.99) <= 0.05 and not open_ + whole else "MISSED")],
        [f"tools/list during the burst ({len(listings)})", common.ms(common.med(listings)),
         common.ms(pct(listings, 0.99)), common.ms(max(listings, default=float("nan"))), "–"],
    ]))
    print(f"text: {n - len(cancelled) - len({b.split(':')[0] for b in bad})}/{n - len(cancelled)} calls whole; "
          f"lost or crossed: {'none' if not bad else '; '.join(bad[:10])}")
    print(f"cancels: {len(delays)} closed the upstream request, {whole} let it send everything, {open_} left it open "
          f"30 s later, {unsent} came before it was sent (never sent); {late} of them sent the request after the "
          "client's cancel")
    print(f"burst: {wall:.2f} s wall; server CPU {cpu_server:.2f} s ({cpu_server / wall:.0%} of a core, "
          f"~{cpu_server / max(streamed, 1) * 1e6:.0f} µs per token sent); this process {cpu_me:.2f} s "
          f"({cpu_me / wall:.0%} of a core: the test server and the MCP client)")


def _cancel(scope: anyio.CancelScope, cancels: dict[int, float], i: int) -> None:
    cancels[i] = time.monotonic()
    scope.cancel()


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokens", type=int, default=None, help="tokens per stream (10000; 200 with --concurrent)")
    parser.add_argument("--rate", type=float, default=None, help="tokens/s per stream (2000; 50 with --concurrent)")
    parser.add_argument("--concurrent", type=int, default=0, help="streams at once on one server (default: CPU mode)")
    parser.add_argument("--ramp", type=float, default=2.0, help="seconds over which the streams start (default 2)")
    parser.add_argument("--cancels", type=int, default=20, help="streams cancelled half-way (default 20)")
    parser.add_argument("--only", default="", help="comma-separated words: only the sides whose name holds one "
                        "(e.g. 'openai chat,SDK parsing: chat'); the raw floors always run")


async def main() -> None:
    args = common.parse_args(__doc__, runs=5, extra=_options)
    if args.concurrent:
        args.tokens, args.rate = args.tokens or 200, args.rate or 50
        await concurrent_mode(args)
    else:
        args.tokens, args.rate = args.tokens or 10_000, args.rate or 2000
        await cpu_mode(args)


if __name__ == "__main__":
    anyio.run(main)
