"""One ``streamhost serve --http`` process, N concurrent streaming calls (default 200, each 200 tokens at 50 tok/s).

Checked: every call's answer and its concatenated ``streamhost/delta`` texts equal exactly the tokens its own
upstream sent (no lost or crossed text). Measured: added first-text latency (text at the client minus the
upstream's first token) under load, against the same calls made one at a time in the same run; the
server's event-loop lag, seen as the round trip of ``/healthz`` (a handler that does nothing) from a separate
prober process every 50 ms, minus its idle median; the server's CPU. Goals: p99 added first text <= 20 ms,
loop lag p99 <= 50 ms.

The figure measures the server, so the client is cheap: one process (``--clients``) of raw asyncio HTTP/1.1
connections, one per call, each POSTing a stateless 2026-07-28 ``tools/call`` (no ``initialize``) and reading
its SSE body, JSON-parsing only ``data:`` lines. ``--ramp S`` spreads the call starts evenly over S seconds
(default 0: a burst, 200 request set-ups at once).
"""

from __future__ import annotations

import asyncio
import functools
import http.client
import json
import subprocess
import sys
import time
from typing import Any

import common
import raw_mcp

TOKENS = 200
RATE = 50.0
SOLO_CALLS = 10
SOLO_TOKENS = 10
"""The baseline calls are cut short: only their first text is measured, and they run one at a time."""
DELTA = common.DELTA


spawn = functools.partial(common.spawn_script, __file__)  # this script again, in its client or prober role
p = common.percentile


def tokens_of(call: int, tokens: int = TOKENS) -> list[str]:
    return [f"c{call}t{i} " for i in range(tokens)]


# ------------------------------------------------------------------------------------- client processes

def request_bytes(port: int, call: int) -> bytes:
    """A stateless 2026-07-28 ``tools/call`` (no ``initialize``): its version, method and tool name in headers too."""
    return raw_mcp.request_bytes(port, call, "generate", {"prompt": "x", "model": f"openai/load{call}"},
                                 client="http_load")


async def raw_call(port: int, call: int, start_at: float) -> dict[str, Any]:
    """One call on its own connection (opened before ``start_at``): its answer, deltas and first-text time."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.monotonic()
    writer.write(request_bytes(port, call))
    status = await reader.readline()
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    first, deltas, notes, answer = None, [], 0, None
    buffer = b""
    async for arrived, data in raw_mcp.body_pieces(reader, headers):
        buffer += data
        *events, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
        for event in events:
            for line in event.split(b"\n"):
                if not line.startswith(b"data:") or not line[5:].strip():
                    continue
                message = json.loads(line[5:])
                if message.get("method") == "notifications/progress":
                    meta = message["params"].get("_meta") or {}
                    if DELTA in meta:
                        notes += 1
                        deltas.append(meta[DELTA])
                        first = arrived if first is None else first
                elif "id" in message:
                    answer = message
        if answer is not None:
            break
    writer.close()
    result = (answer or {}).get("result") or {}
    content = result.get("content") or [{}]
    return {"call": call, "t0": t0, "end": time.monotonic(), "first": first, "status": status.decode().strip(),
            "text": content[0].get("text", ""), "error": answer is None or "error" in answer or result.get("isError"),
            "deltas": "".join(deltas), "notes": notes}


async def client_main(port: int, calls: list[int], start_at: float, ramp: float, solo: bool) -> None:
    """Run ``calls`` from this process: at once from ``start_at`` (monotonic), their starts spread evenly over
    ``ramp`` seconds, or one at a time (``solo``); print one JSON line per call."""
    if solo:
        results = [await raw_call(port, call, 0.0) for call in calls]
    else:
        step = ramp / len(calls)
        results = await asyncio.gather(*(raw_call(port, call, start_at + i * step) for i, call in enumerate(calls)))
    for result in results:
        print(json.dumps(result))


def prober_main(port: int, start_at: float, seconds: float) -> None:
    """From ``start_at`` (monotonic), time a ``/healthz`` round trip every 50 ms for ``seconds`` on one keep-alive
    connection; print the times (seconds) as one JSON list."""
    samples = []
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/healthz")
    connection.getresponse().read()
    time.sleep(max(0.0, start_at - time.monotonic()))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.monotonic()
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        samples.append(time.monotonic() - t0)
        time.sleep(0.05)
    connection.close()
    print(json.dumps(samples))


# ---------------------------------------------------------------------------------------------- driver










def added(results: list[dict[str, Any]], llm: Any) -> list[float]:
    first_token = {r.model: r.first_token for r in llm.requests if r.api == "chat"}
    return [r["first"] - first_token[f"load{r['call']}"] for r in results if r["first"] is not None]


def to_upstream(results: list[dict[str, Any]], llm: Any) -> list[float]:
    started = {r.model: r.started for r in llm.requests if r.api == "chat"}
    return [started[f"load{r['call']}"] - r["t0"] for r in results if f"load{r['call']}" in started]


def check(results: list[dict[str, Any]], calls: range, tokens: int = TOKENS) -> list[str]:
    problems = []
    if sorted(r["call"] for r in results) != list(calls):
        problems.append(f"{len(calls) - len(results)} call(s) gave no result")
    for r in results:
        want = "".join(tokens_of(r["call"], tokens))
        if r["error"] or r["text"] != want:
            problems.append(f"call {r['call']}: the answer is not its own upstream's text")
        elif r["deltas"] != want:
            problems.append(f"call {r['call']}: the streamed deltas do not rebuild its text (lost or crossed)")
    return problems


def load_run(port: int, pid: int, llm: Any, calls: range, clients: int, ramp: float, tokens: int = TOKENS,
             profile: str | None = None) -> dict[str, Any]:
    """One loaded run: the calls from ``clients`` processes, the prober beside them; what was measured.

    ``profile``: a file for py-spy's collapsed stacks of the server during the run (it costs the server a little).
    """
    import psutil

    llm.clear()
    server = psutil.Process(pid)
    cpu_before, children_before = sum(server.cpu_times()[:2]), common.children_cpu()
    upstream_before = time.process_time()  # this process: the test upstream's thread serving the streams
    start_at = time.monotonic() + 2  # every client process has its connections open by then
    shares = [[c for c in calls if c % clients == k] for k in range(clients)]
    processes = [spawn("clients", str(port), str(start_at), str(ramp), *map(str, share)) for share in shares if share]
    prober = spawn("probe", str(port), str(start_at), str(ramp + tokens / RATE + 1))
    spy = None if profile is None else subprocess.Popen(
        [str(common.BENCH.parent / ".venv/bin/py-spy"), "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
         "--duration", str(int(2 + ramp + tokens / RATE + 2)), "--output", profile, "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = [r for process in processes for r in common.collect(process)]
    loaded = common.collect(prober)[0]
    cpu_s = sum(server.cpu_times()[:2]) - cpu_before  # the idle wait and the probe cost next to nothing
    if spy is not None:
        spy.wait()
    return {"results": results, "probe": loaded, "cpu_s": cpu_s, "clients_s": common.children_cpu() - children_before,
            "upstream_s": time.process_time() - upstream_before,
            "wall_s": max(r["end"] for r in results) - start_at, "added": added(results, llm),
            "in": to_upstream(results, llm), "problems": check(results, calls, tokens)}


async def main() -> None:
    import anyio
    import http_common

    from streamhost.testing import Script

    def extra(parser: Any) -> None:
        parser.add_argument("--calls", type=int, default=200, help="concurrent calls (default 200)")
        parser.add_argument("--clients", type=int, default=1, help="client processes (default 1)")
        parser.add_argument("--ramp", type=float, default=0.0,
                            help="spread the call starts evenly over this many seconds (default 0: a burst)")
        parser.add_argument("--tokens", type=int, default=TOKENS,
                            help=f"tokens per call (default {TOKENS}; 2: what the call set-ups alone cost)")
        parser.add_argument("--profile", help="write py-spy's collapsed stacks of the server's first run here")
        parser.add_argument("--no-store", action="store_true",
                            help="turn the store off (runs and their text unrecorded): what the store costs")

    args = common.parse_args(__doc__, runs=3, extra=extra)
    home = common.Home()
    calls = range(args.calls)
    solo = range(args.calls, args.calls + SOLO_CALLS)
    runs = []
    try:
        with common.llm_server() as llm:
            for call in calls:
                llm.script(f"load{call}", Script(tokens=tokens_of(call, args.tokens), rate=RATE))
            for call in solo:
                llm.script(f"load{call}", Script(tokens=tokens_of(call, SOLO_TOKENS), rate=RATE))
            config = http_common.OPEN + ("[store]\nenabled = false\n" if args.no_store else "")
            env = home.env(config=config, base_url=llm.url)
            async with http_common.serve_http(env) as (url, pid):
                port = int(url.rsplit(":", 1)[1])
                idle = common.collect(spawn("probe", str(port), str(time.monotonic()), "3"))[0]
                solo_results = common.collect(spawn("solo", str(port), *map(str, solo)))  # one at a time: the baseline
                solo_added = added(solo_results, llm)
                problems = check(solo_results, solo, SOLO_TOKENS)
                await anyio.sleep(2)  # the server's warm-up ends and it freezes what start-up built (host/lag.py)
                for run in range(args.runs):
                    runs.append(load_run(port, pid, llm, calls, args.clients, args.ramp, args.tokens,
                                         args.profile if run == 0 else None))
    finally:
        home.cleanup()

    base_probe = common.med(idle)
    solo_ttft = [r["first"] - r["t0"] for r in solo_results if r["first"] is not None]
    print(f"http_load: {common.machine()}; {args.calls} calls of {args.tokens} tokens at {RATE:g} tok/s, "
          + (f"starts spread over {args.ramp:g} s" if args.ramp else "all at once (a burst)")
          + f", {args.clients} client process(es), store {'off' if args.no_store else 'on'}, {args.runs} run(s); "
          "medians over the runs")
    problems += [p for run in runs for p in run["problems"]]
    print("text: " + ("every call of every run got exactly its own text" if not problems
                      else f"{len(problems)} PROBLEM(S): " + "; ".join(problems[:5])))

    def over_runs(values: Any) -> float:
        return common.med([values(run) for run in runs])

    def lag(run: dict[str, Any]) -> list[float]:
        return [max(0.0, s - base_probe) for s in run["probe"]]

    def ttft(run: dict[str, Any]) -> list[float]:
        return [r["first"] - r["t0"] for r in run["results"] if r["first"] is not None]

    added_p99 = over_runs(lambda run: p(run["added"], 0.99))
    lag_p99 = over_runs(lambda run: p(lag(run), 0.99))
    rows = [
        ["added first text (upstream token -> client)", common.ms(common.med(solo_added)),
         common.ms(over_runs(lambda run: common.med(run["added"]))), common.ms(added_p99),
         "met" if added_p99 <= 0.020 else "MISSED (goal p99 <= 20)"],
        ["time to first text (call -> client)", common.ms(common.med(solo_ttft)),
         common.ms(over_runs(lambda run: common.med(ttft(run)))), common.ms(over_runs(lambda run: p(ttft(run), 0.99))),
         ""],
        ["call -> request at the upstream", "-", common.ms(over_runs(lambda run: common.med(run["in"]))),
         common.ms(over_runs(lambda run: p(run["in"], 0.99))), ""],
        ["loop lag (/healthz round trip - idle median)", common.ms(base_probe),
         common.ms(over_runs(lambda run: common.med(lag(run)))), common.ms(lag_p99),
         "met" if lag_p99 <= 0.050 else "MISSED (goal p99 <= 50)"],
    ]
    print(common.table(["figure", "solo/idle median ms", "loaded median ms", "loaded p99 ms", "goal"], rows))
    print("per run (added p99 / lag p99 ms): " + ", ".join(
        f"{p(run['added'], 0.99) * 1000:.1f} / {p(lag(run), 0.99) * 1000:.1f}" for run in runs))
    cpu_s, wall_s = over_runs(lambda run: run["cpu_s"]), over_runs(lambda run: run["wall_s"])
    print(f"server CPU per run: {cpu_s:.1f} s over {wall_s:.1f} s of calls ({cpu_s / wall_s:.0%} of a core; "
          f"{cpu_s / max(1, args.calls * args.tokens) * 1e6:.0f} µs per token); the client processes and the prober "
          f"{over_runs(lambda run: run['clients_s']):.1f} s, the test upstream "
          f"{over_runs(lambda run: run['upstream_s']):.1f} s (all on the same 2 cores)")
    notes = [r["notes"] for run in runs for r in run["results"]]
    print(f"text notifications per call: median {common.med(notes):.0f}, min {min(notes)}, max {max(notes)} "
          f"(fewer under load: the coalescing window widens with loop lag)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "clients":
        asyncio.run(client_main(int(sys.argv[2]), [int(c) for c in sys.argv[5:]], float(sys.argv[3]),
                                float(sys.argv[4]), solo=False))
    elif len(sys.argv) > 1 and sys.argv[1] == "solo":
        asyncio.run(client_main(int(sys.argv[2]), [int(c) for c in sys.argv[3:]], 0.0, 0.0, solo=True))
    elif len(sys.argv) > 1 and sys.argv[1] == "probe":
        prober_main(int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]))
    else:
        import anyio

        anyio.run(main)
